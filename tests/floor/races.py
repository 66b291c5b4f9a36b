"""The race harness: committed lots on a race database (tests/fixtures/races.py), requests
fired together from threads that a barrier starts, and reads of what the races left."""

from __future__ import annotations

import threading
import traceback
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from mes import audit
from mes.db import session_scope
from mes.floor import services
from mes.floor.models import Lot, LotEvent

# Requests fired at once, and the codes a lost race may answer with.
N = 8
LOST_RACE = {"stale", "conflict"}


def receive(app: Flask, lot_no: str, quantity: int = 100, *,
            track_in_on: str | None = None) -> None:
    with app.app_context(), session_scope(app) as session:
        lot = services.receive_lot(session, "planner", {
            "product": "P1", "customer": "OEM", "quantity": quantity, "fab_lot": "FAB1",
            "wafers": [], "lot_no": lot_no, "priority": 3, "due_date": None})
        if track_in_on:
            services.track_in(session, "op", lot, step="SAW", equipment=track_in_on)


def fire(app: Flask, headers: dict[str, str],
         calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """POST every (path, body) at once from its own thread and client; (status, body)
    of each, in the order given. An exception escaping a request fails the test."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def one(i: int, path: str, body: dict[str, Any]) -> None:
        client = app.test_client()
        barrier.wait()
        try:
            resp = client.post(f"/api/v1{path}", json=body, headers=headers)
            answers[i] = (resp.status_code, resp.get_json())
        except Exception:  # the test reports it below
            answers[i] = traceback.format_exc()

    threads = [threading.Thread(target=one, args=(i, path, body))
               for i, (path, body) in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    escaped = [a for a in answers if not isinstance(a, tuple)]
    assert not escaped, escaped[0]
    assert all(status < 500 for status, _ in answers), answers
    return answers


def codes(answers: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, str]]:
    return sorted((status, body["error"]["code"]) for status, body in answers if status >= 400)


def read(app: Flask, fn: Any) -> Any:
    with app.app_context(), session_scope(app) as session:
        return fn(session)


def events(session, lot_no: str, kind: str) -> int:
    return session.scalar(select(func.count()).select_from(LotEvent).join(
        Lot, Lot.id == LotEvent.lot_id).where(Lot.lot_no == lot_no, LotEvent.kind == kind))


def audit_chains_intact(session) -> bool:
    return audit.verify(session).ok
