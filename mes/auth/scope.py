"""Customer scoping: a customer user sees the objects of their own customer only, a plant
user (or a named system actor) sees all. Every query a customer user can reach is limited
here, so the rule has one definition; another customer's object is then simply not found.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select

from mes.auth.actor import Actor
from mes.auth.models import User
from mes.auth.permissions import Role


def scope_customer(actor: Actor | None) -> int | None:
    """The id of the customer `actor` is limited to: None for plant users and for system
    actors, which see every customer's objects."""
    if isinstance(actor, User) and actor.role in (Role.CUSTOMER, Role.PARTNER):
        # A partner user is limited to its own organisation, which owns no lots: whatever
        # it reaches through these queries is empty. What grants show it is mes.partners.
        # (A user without a customer, which user management refuses, sees nothing.)
        return actor.customer_id if actor.customer_id is not None else 0
    return None


def scoped(stmt: Select[Any], customer_id_column: ColumnElement[Any] | Any,
           actor: Actor | None) -> Select[Any]:
    """`stmt` limited, for a customer user, to rows whose `customer_id_column` is their
    customer; unchanged for everyone else."""
    customer_id = scope_customer(actor)
    return stmt if customer_id is None else stmt.where(customer_id_column == customer_id)
