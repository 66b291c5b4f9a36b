"""Recording the PM of one plan twice at once: exactly one is recorded, the others answer
409 (on SQLite and PostgreSQL: MES_TEST_DATABASE_URL)."""

from __future__ import annotations

from sqlalchemy import func, select

from mes.auth import services as auth
from mes.catalog import maintenance
from mes.catalog import services as cat
from mes.catalog.models import PmRecord
from mes.db import session_scope
from tests.floor.races import N, audit_chains_intact, codes, fire, read
from tests.helpers import PASSWORD


def test_simultaneous_records_of_one_pm_record_it_once(race_app, race_plant):
    with race_app.app_context(), session_scope(race_app) as session:
        saw = cat.get_equipment(session, "SAW-1")
        maintenance.create_plan(session, "test", saw, {"name": "Monthly", "every_days": 30})
        cat.create_reason_code(session, "test", {"code": "D-PM", "kind": "downtime",
                                                 "description": "PM", "description_zh": ""})
        cat.update_equipment(session, "test", saw, {"state": "scheduled_down",
                                                    "reason": "D-PM"})
        engineer = auth.create_user(session, "test", username="eng", role="engineer",
                                    password=PASSWORD)
        token = auth.create_token(session, "test", engineer)
    answers = fire(race_app, {"Authorization": f"Bearer {token}"},
                   [("/equipment/SAW-1/pm", {"plan": "Monthly"}) for _ in range(N)])
    assert sum(status == 201 for status, _ in answers) == 1, answers
    assert all(status == 409 for status, _ in codes(answers)), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(PmRecord)) == 1
        assert audit_chains_intact(session)
    read(race_app, check)
