"""A login hashes its password without holding SQLite's write lock: its reads run in a plain
transaction that ends before the hash, and the write lock is taken only for the short
write after it. Both tests use an SQLite file of their own (whatever the suite's database),
with real connections and a thread, since the lock is SQLite's."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest
from sqlalchemy import event, select

from mes import migrate
from mes.audit.models import AuditEvent
from mes.auth import services
from mes.catalog import services as cat
from mes.db import get_db, session_scope
from tests.helpers import PASSWORD, make_app


@pytest.fixture
def file_app(tmp_path) -> Any:
    path = tmp_path / "login.db"
    app = make_app(f"sqlite:///{path}", tmp_path / "instance")
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as session:
        services.create_user(session, "test", username="op", role="operator",
                             password=PASSWORD)
        cat.create_equipment(session, "test", {"code": "SAW-1", "kind": "saw", "name": "Saw",
                                               "state": "productive"})
        tech = services.create_user(session, "test", username="tech", role="operator")
        token = services.create_token(session, "test", tech)
    app.config["DB_FILE"] = str(path)
    app.config["TECH_HEADERS"] = {"Authorization": f"Bearer {token}"}
    yield app
    get_db(app).engine.dispose()


class _GatedHasher:
    """The test hasher; each password check says it started, then waits to be let go."""

    def __init__(self, hasher: Any, log: list[str] | None = None) -> None:
        self.hasher, self.log = hasher, log
        self.hashing, self.go_on = threading.Event(), threading.Event()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        if self.log is not None:
            self.log.append("HASH")
        self.hashing.set()
        assert self.go_on.wait(60), "the test never let the hash finish"
        return self.hasher.verify(stored, password)


def _login_in_thread(app: Any, password: str) -> tuple[threading.Thread, list[Any]]:
    answer: list[Any] = []

    def run() -> None:
        try:
            resp = app.test_client().post("/login", data={"username": "op",
                                                           "password": password})
            answer.append(resp.status_code)
        except Exception as exc:  # reported by the test
            answer.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, answer


@pytest.mark.parametrize("password", [PASSWORD, "Wrong-pass-99"])
def test_a_shop_floor_write_is_not_blocked_while_a_login_hashes(file_app, monkeypatch,
                                                                password):
    gate = _GatedHasher(services._TEST_HASHER)
    monkeypatch.setattr(services, "_hasher", lambda: gate)
    thread, answer = _login_in_thread(file_app, password)
    try:
        assert gate.hashing.wait(60), answer
        # Another writer takes the write lock at once while the login hashes: with no
        # waiting allowed (timeout 0), a held lock would fail here with "database is locked".
        probe = sqlite3.connect(file_app.config["DB_FILE"], timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
        # And a shop-floor write through the application goes through meanwhile.
        resp = file_app.test_client().patch("/api/v1/equipment/SAW-1",
                                            json={"state": "non_scheduled"},
                                            headers=file_app.config["TECH_HEADERS"])
        assert resp.status_code == 200, resp.get_json()
        assert not gate.go_on.is_set() and thread.is_alive()
    finally:
        gate.go_on.set()
        thread.join(60)
    assert answer == [302 if password == PASSWORD else 200]
    with session_scope(file_app) as session:
        codes = session.scalars(select(AuditEvent.code).where(
            AuditEvent.subject_type == "login")).all()
    assert codes == ["login:success" if password == PASSWORD else "login:failure"]


def test_a_login_reads_then_hashes_outside_any_transaction_then_writes(file_app,
                                                                     monkeypatch):
    """The order of a login's statements on its connection: a plain BEGIN for the reads,
    their end, the hash, and only then BEGIN IMMEDIATE for the write."""
    log: list[str] = []
    gate = _GatedHasher(services._TEST_HASHER, log)
    gate.go_on.set()
    monkeypatch.setattr(services, "_hasher", lambda: gate)
    engine = get_db(file_app).engine

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if sql.startswith("BEGIN"):
            log.append(sql)
        elif sql.split(None, 1)[0] in {"INSERT", "UPDATE", "DELETE"}:
            log.append("WRITE")

    def ended(conn: Any) -> None:
        log.append("END")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    try:
        resp = file_app.test_client().post("/login", data={"username": "op",
                                                           "password": PASSWORD})
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", ended)
        event.remove(engine, "rollback", ended)
    assert resp.status_code == 302
    hashed = log.index("HASH")
    assert log[:hashed] == ["BEGIN", "END"], log
    assert log[hashed + 1] == "BEGIN IMMEDIATE", log
    assert "WRITE" in log[hashed + 2:] and log[-1] == "END", log


def test_a_password_change_on_the_profile_hashes_without_the_write_lock(file_app,
                                                                        monkeypatch):
    client = file_app.test_client()
    assert client.post("/login", data={"username": "op",
                                       "password": PASSWORD}).status_code == 302
    gate = _GatedHasher(services._TEST_HASHER)
    monkeypatch.setattr(services, "_hasher", lambda: gate)
    answer: list[Any] = []
    thread = threading.Thread(target=lambda: answer.append(client.post("/profile", data={
        "action": "password", "current_password": PASSWORD,
        "new_password": "Another-pass-456", "new_password2": "Another-pass-456"}
    ).status_code))
    thread.start()
    try:
        assert gate.hashing.wait(60), answer
        probe = sqlite3.connect(file_app.config["DB_FILE"], timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        finally:
            probe.close()
    finally:
        gate.go_on.set()
        thread.join(60)
    assert answer == [303]
