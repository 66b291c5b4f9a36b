"""Recording a material lot's removal from the freezer or its opening twice at once: exactly
one is recorded, the others answer 409 (on SQLite and PostgreSQL: MES_TEST_DATABASE_URL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog import services as cat
from mes.catalog.models import MaterialLot
from mes.db import session_scope, utcnow
from tests.floor.races import N, audit_chains_intact, codes, fire, read


def material_lot(app, **values) -> None:
    with app.app_context(), session_scope(app) as session:
        cat.create_material_lot(session, "test", {"code": "EPX-1", "material": "epoxy",
                                                  "part_number": "EPX-84", **values})


def records(session, code: str) -> list[str]:
    return list(session.scalars(select(AuditEvent.code).where(
        AuditEvent.subject_type == "material_lot", AuditEvent.subject_key == "EPX-1",
        AuditEvent.code == code)))


def test_simultaneous_thaws_of_one_material_lot_record_one(race_app, race_plant):
    material_lot(race_app, thaw_minutes=30)
    answers = fire(race_app, race_plant["headers"],
                   [("/material-lots/EPX-1/thaw", {}) for _ in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1, answers
    assert all(status == 409 for status, _ in codes(answers)), answers
    ready = next(body["ready_at"] for status, body in answers if status == 200)

    def check(session) -> None:
        lot = session.scalar(select(MaterialLot).where(MaterialLot.code == "EPX-1"))
        assert lot.ready_at == datetime.fromisoformat(ready)
        assert records(session, "material_lot:thaw") == ["material_lot:thaw"]
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_openings_of_one_material_lot_record_one(race_app, race_plant):
    material_lot(race_app, work_life_hours=8, expires_at=utcnow() + timedelta(days=90))
    answers = fire(race_app, race_plant["headers"],
                   [("/material-lots/EPX-1/open", {}) for _ in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1, answers
    assert all(status == 409 for status, _ in codes(answers)), answers
    won = next(body for status, body in answers if status == 200)

    def check(session) -> None:
        lot = session.scalar(select(MaterialLot).where(MaterialLot.code == "EPX-1"))
        assert lot.opened_at is not None
        assert lot.expires_at == lot.opened_at + timedelta(hours=8)
        assert won["expires_at"] is not None
        assert records(session, "material_lot:open") == ["material_lot:open"]
        assert audit_chains_intact(session)
    read(race_app, check)
