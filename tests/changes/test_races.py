"""PCNs raced with real concurrent connections (the floor's race harness): simultaneous
answers to one PCN leave one answer; simultaneous sends leave one PCN per customer. A lost
race is a 409, never a 500 or a second record."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services as auth
from mes.catalog import services as cat
from mes.changes import services as changes
from mes.changes.models import Pcn
from mes.db import session_scope
from tests.floor import races

LOST = races.LOST_RACE | {"already_decided", "already_notified"}


@pytest.fixture
def change_plant(race_app, race_plant) -> dict[str, Any]:
    """The race plant with two BOM revisions of P1, a lot of OEM, a change introducing
    revision B, an engineer's token and a token of an OEM customer user."""
    with race_app.app_context(), session_scope(race_app) as session:
        product = cat.get_product(session, "P1")
        for revision in ("A", "B"):
            cat.create_bom(session, "test", product, {"revision": revision, "items": [
                {"step": "SAW", "material": "tape", "part_numbers": [f"TAPE-{revision}"]}]})
    races.receive(race_app, "LOT-1")
    with race_app.app_context(), session_scope(race_app) as session:
        change = changes.create_change(session, "test", {
            "title": "Tape", "kind": "material", "products": ["P1"], "bom_revision": "B"})
        session.flush()
        change_id = change.id
        engineer = auth.create_user(session, "test", username="eng", role="engineer",
                                    password="Secret-pass-123")
        customer = auth.create_user(session, "test", username="cust", role="customer",
                                    customer="OEM", password="Secret-pass-123")
        tokens = [auth.create_token(session, "test", user) for user in (engineer, customer)]
    return {"change": change_id,
            "engineer": {"Authorization": f"Bearer {tokens[0]}"},
            "customer": {"Authorization": f"Bearer {tokens[1]}"}}


def _count(session, *where: Any) -> int:
    return session.scalar(select(func.count()).select_from(Pcn).where(*where))


def test_simultaneous_sends_make_one_pcn_per_customer(race_app, change_plant):
    answers = races.fire(race_app, change_plant["engineer"], [
        (f"/changes/{change_plant['change']}/pcns", {}) for _ in range(races.N)])
    assert [status for status, _ in answers].count(201) == 1, answers
    assert all(body["error"]["code"] in LOST for status, body in answers if status != 201)

    def check(session) -> None:
        assert _count(session) == 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "pcn:send")) == 1
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def test_simultaneous_answers_leave_one(race_app, change_plant):
    with race_app.app_context(), session_scope(race_app) as session:
        pcn_id = changes.send_pcns(session, "test", changes.get_change(
            session, change_plant["change"]))[0].id
    answers = races.fire(race_app, change_plant["customer"], [
        (f"/pcns/{pcn_id}/decision", {"approve": i % 2 == 0, "comment": f"answer {i}"})
        for i in range(races.N)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        pcn = session.get(Pcn, pcn_id)
        assert (pcn.status, pcn.comment) == (won[0]["status"], won[0]["comment"])
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "pcn:decide")) == 1
        assert races.audit_chains_intact(session)

    races.read(race_app, check)
