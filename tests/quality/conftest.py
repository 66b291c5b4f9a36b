"""The shop-floor test plant, with people to place and release holds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.floor.conftest import plant, receive  # noqa: F401  (fixtures used by these tests)
from tests.floor.test_races import race_app, race_plant  # noqa: F401  (the races' fixtures)


@dataclass(frozen=True)
class Person:
    """An actor as the services see one: a username and a role."""

    username: str
    role: str


QA = Person("qa1", "qa")
QA2 = Person("qa2", "qa")
ADMIN = Person("admin1", "admin")


@pytest.fixture
def hold_codes(request, session):
    """More hold reason codes, one retired, beside the plant's H-ENG."""
    from mes.catalog import services as cat

    request.getfixturevalue("plant")
    for code, active in [("H-MAT", True), ("H-OLD", False)]:
        cat.create_reason_code(session, "test", {"code": code, "kind": "hold",
                                                 "description": code, "active": active})
    session.commit()
