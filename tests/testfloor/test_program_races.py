"""Test programs and voids raced with real concurrent connections (the floor's race
harness, tests/floor/races.py): simultaneous releases leave one released program per
step, simultaneous voids one void, simultaneous files of another program one hold and no
run. A lost race is a 409, never a 500 or a second record."""

from __future__ import annotations

import threading
import traceback
from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services as auth
from mes.catalog import services as cat
from mes.db import session_scope
from mes.floor import services as floor
from mes.quality.models import Hold
from mes.testfloor import programs
from mes.testfloor.models import TestParam, TestProgram, TestRun
from tests.floor import races
from tests.testfloor.helpers import MIR, lot_file

LOST = races.LOST_RACE | {"duplicate", "already_voided"}


@pytest.fixture
def program_plant(race_app, race_plant) -> dict[str, Any]:
    """The race plant with lot LOT-1 queued at its test step FT, and an engineer's token."""
    races.receive(race_app, "LOT-1")
    with race_app.app_context(), session_scope(race_app) as session:
        lot = floor.get_lot(session, "LOT-1")
        lot.step_seq, lot.step_code = 2, "FT"
        engineer = auth.create_user(session, "test", username="eng", role="engineer",
                                    password="Secret-pass-123")
        token = auth.create_token(session, "test", engineer)
    return {"engineer": {"Authorization": f"Bearer {token}"},
            "operator": race_plant["headers"]}


def test_simultaneous_releases_leave_one_released_program(race_app, program_plant):
    answers = races.fire(race_app, program_plant["engineer"], [
        ("/products/P1/test-programs", {"step": "FT", "job_name": "p1_ft", "job_rev": str(i),
                                        "temperature_c": 25}) for i in range(races.N)])
    won = [body for status, body in answers if status == 201]
    assert won, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 201), answers

    def check(session) -> None:
        rows = list(session.scalars(select(TestProgram).order_by(TestProgram.id)))
        assert len(rows) == len(won)
        assert [p.released for p in rows].count(True) == 1
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "product:test_program")) == len(won)
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def _upload_all(app, headers: dict[str, str], files: list[bytes]) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(len(files))
    answers: list[Any] = [None] * len(files)

    def one(i: int, data: bytes) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            resp = client.post("/api/v1/lots/LOT-1/stdf", data=data, headers={
                **headers, "Content-Type": "application/octet-stream"})
            answers[i] = (resp.status_code, resp.get_json())
        except Exception:
            answers[i] = traceback.format_exc()

    threads = [threading.Thread(target=one, args=(i, data)) for i, data in enumerate(files)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(a, tuple) for a in answers), answers
    assert all(status < 500 for status, _ in answers), answers
    return answers


def test_simultaneous_files_of_another_program_store_nothing(race_app, program_plant):
    with race_app.app_context(), session_scope(race_app) as session:
        programs.release_program(session, "eng", cat.get_product(session, "P1"), step="FT",
                                 job_name="p1_ft", job_rev="3", temperature_c=125)
    files = [lot_file(30, salt=str(i), mir={**MIR, "JOB_NAM": "other"}) for i in range(4)]
    answers = _upload_all(race_app, program_plant["operator"], files)
    assert all(status == 409 and body["error"]["code"] in LOST | {"program_mismatch"}
               for status, body in answers), answers
    assert any(body["error"]["code"] == "program_mismatch" for _s, body in answers)

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(TestRun)) == 0
        assert session.scalar(select(func.count()).select_from(TestParam)) == 0
        holds = list(session.scalars(select(Hold).where(Hold.source == "test_program")))
        assert holds and all(h.status == "open" for h in holds)
        lot = floor.get_lot(session, "LOT-1")
        assert lot.open_holds == len(holds)
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def test_simultaneous_voids_leave_one(race_app, program_plant):
    answers = _upload_all(race_app, program_plant["operator"], [lot_file(30)])
    run_id = answers[0][1]["id"]
    answers = races.fire(race_app, program_plant["engineer"], [
        (f"/test-runs/{run_id}/void", {"reason": f"reason {i}"}) for i in range(races.N)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        run = session.get(TestRun, run_id)
        assert run.void_reason == won[0]["voided"]["reason"]
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "test_run:void")) == 1

    races.read(race_app, check)
