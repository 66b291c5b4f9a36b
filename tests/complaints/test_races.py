"""Complaints raced with real concurrent connections (the floor's race harness): the same
reference recorded at once makes one complaint; one step finished at once is finished
once; D8 closed at once closes once and publishes one eightd.closed. A lost race is a 409,
never a 500 or a second record."""

from __future__ import annotations

import threading
import traceback
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services as auth
from mes.complaints import services
from mes.complaints.models import Complaint, EightDStepRow
from mes.db import session_scope, utcnow
from mes.events.models import Event
from tests.floor import races

LOST = races.LOST_RACE | {"duplicate", "step_done", "complaint_closed"}


def _patch_all(app: Flask, headers: dict[str, str], path: str,
               bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """PATCH every body at once from its own thread and client (races.fire POSTs)."""
    barrier = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def one(i: int, body: dict[str, Any]) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            resp = client.patch(f"/api/v1{path}", json=body, headers=headers)
            answers[i] = (resp.status_code, resp.get_json())
        except Exception:  # reported below
            answers[i] = traceback.format_exc()

    threads = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    escaped = [a for a in answers if not isinstance(a, tuple)]
    assert not escaped, escaped[0]
    assert all(status < 500 for status, _ in answers), answers
    return answers


def _intake(reference: str) -> dict[str, Any]:
    return {"customer": "OEM", "reference": reference,
            "received_at": (utcnow() - timedelta(hours=1)).isoformat(),
            "description": "Open", "units": [{"scan": "LOT-1", "failure_mode": "open",
                                              "count": 1}]}


@pytest.fixture
def complaint_plant(race_app, race_plant) -> dict[str, Any]:
    races.receive(race_app, "LOT-1")
    with race_app.app_context(), session_scope(race_app) as session:
        qa = auth.create_user(session, "test", username="qa", role="qa",
                              password="Secret-pass-123")
        complaint = services.open_complaint(session, qa, {
            **_intake("RACE-1"), "received_at": utcnow() - timedelta(hours=1)})
        for step in ("D0", "D1", "D2", "D3", "D4", "D5", "D6", "D7"):
            row = session.get(EightDStepRow, (complaint.id, step))
            row.root_cause_occurrence = "o" if step == "D4" else None
            row.root_cause_escape = "e" if step == "D4" else None
            row.verification = "v" if step == "D6" else None
            if step != "D7":
                row.done_at, row.done_by = utcnow(), "qa"
        session.flush()
        complaint_id = complaint.id
        token = auth.create_token(session, "test", qa)
    return {"complaint": complaint_id, "headers": {"Authorization": f"Bearer {token}"}}


def test_one_reference_recorded_at_once_makes_one_complaint(race_app, complaint_plant):
    answers = races.fire(race_app, complaint_plant["headers"],
                         [("/complaints", _intake("RACE-2")) for _ in range(races.N)])
    assert [status for status, _ in answers].count(201) == 1, answers
    assert all(body["error"]["code"] in LOST for status, body in answers if status != 201)

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(Complaint)
                              .where(Complaint.reference == "RACE-2")) == 1
        assert session.scalar(select(func.count()).select_from(EightDStepRow)) == 18
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def test_one_step_finished_at_once_is_finished_once(race_app, complaint_plant):
    cid = complaint_plant["complaint"]
    answers = _patch_all(race_app, complaint_plant["headers"], f"/complaints/{cid}/eightd/D7",
                         [{"text": f"prevention {i}", "done": True} for i in range(races.N)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        row = session.get(EightDStepRow, (cid, "D7"))
        assert row.text == won[0]["text"] and row.done_at is not None
        assert session.scalar(select(func.count()).select_from(Event).where(
            Event.type == "eightd.step.completed")) == 1
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def test_d8_closed_at_once_closes_once(race_app, complaint_plant):
    cid = complaint_plant["complaint"]
    with race_app.app_context(), session_scope(race_app) as session:
        row = session.get(EightDStepRow, (cid, "D7"))
        row.done_at, row.done_by = utcnow(), "qa"
    answers = _patch_all(race_app, complaint_plant["headers"], f"/complaints/{cid}/eightd/D8",
                         [{"done": True} for _ in range(races.N)])
    assert [status for status, _ in answers].count(200) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        assert session.get(Complaint, cid).state == "closed"
        assert session.scalar(select(func.count()).select_from(Event).where(
            Event.type == "eightd.closed")) == 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "complaint:8d")) == 1
        assert races.audit_chains_intact(session)

    races.read(race_app, check)
