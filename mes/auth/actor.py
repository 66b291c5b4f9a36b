"""Who does something: a signed-in user, or a named actor that is no user.

Every service that changes data takes an `actor`; its name goes into the audit record and
into columns such as created_by, its role decides what it may do.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from mes.auth.models import User

# Actors that are no user: "system" for what the plant's rules do by themselves (automatic
# holds), "cli" for the administrator's `mes` commands, "demo" for the demo plant's master
# data, "test" for the data that tests set up.
SystemActor: TypeAlias = Literal["system", "cli", "demo", "test"]

Actor: TypeAlias = User | SystemActor

SYSTEM: SystemActor = "system"


def actor_name(actor: Actor) -> str:
    """The name kept for `actor`: a user's username, or the system actor's name."""
    return actor if isinstance(actor, str) else actor.username

