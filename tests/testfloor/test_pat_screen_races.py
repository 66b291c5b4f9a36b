"""Static PAT limit set versions raced with real concurrent connections (the floor's race
harness, tests/floor/races.py): simultaneous computations make distinct versions or lose
with 409, never a 500 or two sets of one version."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services as auth
from mes.db import session_scope
from mes.floor import services as floor
from mes.testfloor import services
from mes.testfloor.models import PatLimitSet, PatLimitVersion
from mes.testfloor.stdf_writer import PartSpec, TestSpec
from tests.floor import races
from tests.testfloor.helpers import stdf

CHECK_PAT = [*range(1, 20), 100]


@pytest.fixture
def history_plant(race_app, race_plant) -> dict[str, Any]:
    """The race plant with six lots of P1 at its test step FT, each with one run of 30
    passing parts (the pool of the PRODUCT.md check values), and an engineer's token."""
    pooled = sorted(CHECK_PAT * 9)
    for j in range(6):
        races.receive(race_app, f"H{j}")
    with race_app.app_context(), session_scope(race_app) as session:
        for j in range(6):
            lot = floor.get_lot(session, f"H{j}")
            lot.step_seq, lot.step_code = 2, "FT"
            parts = [PartSpec(hard_bin=1, passed=True, part_id=f"H{j}-{i}",
                              results=[(300, v)]) for i, v in enumerate(pooled[j::6])]
            services.import_stdf(session, "op", lot,
                                 stdf(parts, tests={300: TestSpec("x", "u")}))
        engineer = auth.create_user(session, "test", username="eng", role="engineer",
                                    password="Secret-pass-123")
        token = auth.create_token(session, "test", engineer)
    return {"engineer": {"Authorization": f"Bearer {token}"}}


def test_simultaneous_computations_make_distinct_versions_or_lose(race_app, history_plant):
    answers = races.fire(race_app, history_plant["engineer"], [
        ("/products/P1/pat-limit-sets", {"step": "FT"}) for _ in range(races.N)])
    won = [body for status, body in answers if status == 201]
    assert won, answers
    assert all(status == 409 and body["error"]["code"] in races.LOST_RACE
               for status, body in answers if status != 201), answers
    assert len({body["version"] for body in won}) == len(won)

    def check(session) -> None:
        versions = list(session.scalars(select(PatLimitVersion.version)
                                        .order_by(PatLimitVersion.version)))
        assert versions == list(range(1, len(won) + 1))
        assert session.scalar(select(func.count()).select_from(PatLimitSet)) == len(won)
        assert session.scalar(select(func.count()).select_from(PatLimitSet).where(
            PatLimitSet.active.is_(True))) >= 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "product:pat_limits")) == len(won)
        assert races.audit_chains_intact(session)

    races.read(race_app, check)
