"""Checkpoints are made automatically as records are written, and exported to a witness file
outside the database, against which the database is verified."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from mes.audit import services
from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.audit.services import checkpoint, read_witness, record, verify
from mes.db import get_db, simulated_time, utcnow
from tests.audit.helpers import chain, tamper


@pytest.fixture
def policy(app, monkeypatch):
    """The application's checkpoint policy, changed for one test."""
    settings = get_db(app).info["audit"]

    def set_policy(records: int = 1000, minutes: int = 60) -> None:
        monkeypatch.setattr(settings, "checkpoint_records", records)
        monkeypatch.setattr(settings, "checkpoint_minutes", minutes)
        # This process asks the database at its next write.
        monkeypatch.setattr(settings, "_asked", time.monotonic() - 3600)

    return set_policy


def _checkpoints(session) -> list[tuple[int, int]]:
    return [tuple(row) for row in session.execute(
        select(AuditCheckpoint.number, AuditCheckpoint.event_count)
        .order_by(AuditCheckpoint.number))]


def test_a_checkpoint_is_made_when_a_write_brings_enough_records(session, policy):
    policy(records=3)
    chain(session, "L0001", n=2)
    assert _checkpoints(session) == []
    chain(session, "L0002", n=1)
    assert _checkpoints(session) == [(1, 3)]
    chain(session, "L0003", n=1)
    assert _checkpoints(session) == [(1, 3)]
    assert verify(session).ok


def test_a_checkpoint_is_made_when_its_minutes_have_passed(session, policy):
    policy(records=1000, minutes=5)
    with simulated_time(utcnow() - timedelta(minutes=6)):
        record(session, actor=None, code="item:create", subject_type="item", subject_key="A")
    session.commit()
    assert _checkpoints(session) == [(1, 1)]
    chain(session, "L0002", n=1)  # the last one is a minute old: not yet
    assert _checkpoints(session) == [(1, 1)]


def test_a_savepoint_released_inside_a_transaction_makes_no_checkpoint(session, policy):
    # Nothing has committed yet (and on SQLite a second connection would wait for this
    # transaction's write lock).
    policy(records=1)
    nested = session.begin_nested()
    record(session, actor=None, code="item:create", subject_type="item", subject_key="A")
    nested.commit()
    assert _checkpoints(session) == []
    session.commit()
    assert _checkpoints(session) == [(1, 1)]


def test_a_request_that_writes_records_makes_the_due_checkpoint(session, api, policy):
    admin = api("admin")
    policy(records=1)
    resp = admin.post("/customers", json={"code": "ACME", "name": "Acme",
                                          "automotive": False})
    assert resp.status_code == 201, resp.get_json()
    counted = session.scalar(select(func.count()).select_from(AuditEvent))
    assert _checkpoints(session)[-1][1] == counted


def test_a_failed_checkpoint_never_undoes_the_write(session, api, policy, monkeypatch):
    admin = api("admin")
    policy(records=1)

    def broken(*_args, **_kw):
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(services, "checkpoint", broken)
    resp = admin.post("/customers", json={"code": "ACME", "name": "Acme",
                                          "automotive": False})
    assert resp.status_code == 201
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.subject_key == "ACME")) == 1
    assert _checkpoints(session) == []


def test_checkpoint_export_appends_a_line_per_checkpoint(app, session, tmp_path):
    witness = tmp_path / "witness.log"
    chain(session, "L0001")
    first = app.test_cli_runner().invoke(args=["audit", "checkpoint", "--export",
                                               str(witness)])
    assert first.exit_code == 0, first.output
    assert f"Appended to {witness}" in first.output
    chain(session, "L0002", n=2)
    app.test_cli_runner().invoke(args=["audit", "checkpoint", "--export", str(witness)])
    lines = witness.read_text().splitlines()
    assert [json.loads(line)["checkpoint"] for line in lines] == [1, 2]
    assert [json.loads(line)["records"] for line in lines] == [3, 5]
    seals = read_witness(lines)
    assert all(seal.valid(app.config["AUDIT_KEY"].encode()) for seal in seals)
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--witness", str(witness)])
    assert result.exit_code == 0, result.output
    assert "5 records, 2 checkpoint(s), 2 witness line(s)" in result.output


def _export(app, path) -> None:
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint", "--export", str(path)])
    assert result.exit_code == 0, result.output


def test_the_witness_catches_records_deleted_with_their_counters_and_checkpoints(
        app, session, tmp_path):
    # The thorough attacker deletes the newest records, sets the counters back and deletes
    # every checkpoint: nothing left in the database shows it; the witness does.
    witness = tmp_path / "witness.log"
    chain(session, "L0001")
    newest = chain(session, "L0002", n=2)
    _export(app, witness)
    for event in newest:
        tamper(session, "DELETE FROM audit_event WHERE id = :id", id=event.id)
        tamper(session, "UPDATE audit_counter SET value = value - 1 WHERE series = :s",
               s=event.series)
    tamper(session, "DELETE FROM audit_checkpoint")
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--witness", str(witness)])
    assert result.exit_code == 1
    first = min(newest, key=lambda e: (e.series, e.number))
    assert f"audit trail broken: audit record {first.series}:{first.number}" in result.output
    assert "missing" in result.output
    outcome = verify(session, read_witness(witness.read_text().splitlines()))
    assert "checkpoint 1 of" in " ".join(outcome.problems)


def test_a_replaced_checkpoint_differs_from_the_witness(app, session, tmp_path):
    witness = tmp_path / "witness.log"
    chain(session, "L0001")
    _export(app, witness)
    tamper(session, "DELETE FROM audit_checkpoint")
    chain(session, "L0002", n=1)
    checkpoint(session)
    session.commit()
    result = verify(session, read_witness(witness.read_text().splitlines()))
    assert not result.ok
    assert result.problem == "checkpoint 1 differs from the witness (replaced)"


def test_a_witness_line_not_made_with_the_key_is_named(app, session, tmp_path):
    witness = tmp_path / "witness.log"
    chain(session, "L0001")
    _export(app, witness)
    line = json.loads(witness.read_text())
    line["records"] = 2
    witness.write_text(json.dumps(line) + "\n")
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--witness", str(witness)])
    assert result.exit_code == 1
    assert "witness checkpoint 1: not made with this audit key" in result.output


def test_a_witness_file_that_is_not_one_is_refused_naming_the_line(app, session, tmp_path):
    witness = tmp_path / "witness.log"
    witness.write_text("\n{\"checkpoint\": 1}\n")
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--witness", str(witness)])
    assert result.exit_code == 1
    assert f"{witness} line 2: not an audit checkpoint line" in result.output
    assert "Traceback" not in result.output


def test_verify_with_another_key_finds_every_record_unkeyed(app, session):
    chain(session, "L0001", n=1)
    other = services.AuditSettings(key=b"another plant's key, 32 bytes or more")
    saved = session.info["audit"]
    session.info["audit"] = other
    try:
        result = verify(session)
    finally:
        session.info["audit"] = saved
    assert not result.ok
    assert "does not match its keyed hash" in result.problem


def test_writers_in_open_transactions_never_wait_for_a_number(race_app):
    # PostgreSQL: each open transaction holds a series of its own. (SQLite runs one writing
    # transaction at a time: there is nothing to wait for beyond its write lock.)
    engine = get_db(race_app).engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers by its write lock")
    maker = get_db(race_app).sessionmaker
    first = maker()
    held = record(first, actor=None, code="item:create", subject_type="item",
                  subject_key="A")
    first.flush()
    done: list[object] = []

    def other() -> None:
        second = maker()
        try:
            second.connection().exec_driver_sql("SET lock_timeout = '5s'")
            done.append(record(second, actor=None, code="item:create",
                               subject_type="item", subject_key="B").series)
            second.commit()
        except Exception as exc:  # the assertion below shows it
            done.append(exc)
        finally:
            second.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=30)
    first.commit()
    first.close()
    assert len(done) == 1 and isinstance(done[0], int), done
    assert done[0] != held.series
    check = maker()
    try:
        assert verify(check).ok
    finally:
        check.close()


def test_with_every_series_claimed_a_writer_takes_one_no_transaction_holds(race_app):
    engine = get_db(race_app).engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers by its write lock")
    holder = engine.connect()
    holder.exec_driver_sql("SELECT pg_advisory_lock(7320, s) FROM generate_series(0, 63) s")
    sess = get_db(race_app).sessionmaker()
    try:
        event = record(sess, actor=None, code="item:create", subject_type="item",
                       subject_key="A")
        sess.commit()
        assert event.number == 1
    finally:
        sess.close()
        holder.close()


def test_a_writer_waits_for_a_series_when_every_one_is_held(race_app):
    engine = get_db(race_app).engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers by its write lock")
    maker = get_db(race_app).sessionmaker
    holder = engine.connect()
    holder.exec_driver_sql("BEGIN")
    # Every series claimed by another connection, and every counter row locked.
    holder.exec_driver_sql("SELECT pg_advisory_lock(7320, s) FROM generate_series(0, 63) s")
    holder.exec_driver_sql("SELECT series FROM audit_counter FOR UPDATE")
    done: list[object] = []

    def writer() -> None:
        sess = maker()
        try:
            done.append(record(sess, actor=None, code="item:create", subject_type="item",
                               subject_key="A").number)
            sess.commit()
        except Exception as exc:  # the assertion below shows it
            done.append(exc)
        finally:
            sess.close()

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive() and done == []  # waiting for the holder, not failing
    holder.exec_driver_sql("COMMIT")
    holder.close()
    thread.join(timeout=30)
    assert done == [1]


def test_an_automatic_checkpoint_another_process_is_making_is_left_to_it(
        race_app, caplog, monkeypatch):
    engine = get_db(race_app).engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    settings = get_db(race_app).info["audit"]
    maker = get_db(race_app).sessionmaker
    writer = maker()
    try:
        record(writer, actor=None, code="item:create", subject_type="item", subject_key="A")
        writer.commit()  # no checkpoint due yet
        monkeypatch.setattr(settings, "checkpoint_records", 1)
        monkeypatch.setattr(settings, "_asked", time.monotonic() - 3600)
        with engine.connect() as other:
            # Another process holds the checkpoint lock: this one neither waits nor warns.
            assert other.execute(services._CHECKPOINT_LOCK).scalar()
            assert services.auto_checkpoint(engine, settings) is None
            other.rollback()
        assert _checkpoints(writer) == []
        assert not [r for r in caplog.records if "checkpoint" in r.getMessage()]
        # Once it is free, the due checkpoint is made.
        assert services.auto_checkpoint(engine, settings) is not None
        assert len(_checkpoints(writer)) == 1
    finally:
        writer.close()


def test_a_committed_write_leaves_its_due_checkpoint_to_a_thread_of_the_process(
        race_app, monkeypatch):
    # The request whose commit made a checkpoint due answers without waiting for it.
    if get_db(race_app).engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: the committing request makes the checkpoint")
    settings = get_db(race_app).info["audit"]
    monkeypatch.setattr(settings, "checkpoint_records", 1)
    monkeypatch.setattr(settings, "_asked", time.monotonic() - 3600)
    made_on: list[str] = []
    real = services.auto_checkpoint

    def spy(bind, policy):
        made_on.append(threading.current_thread().name)
        return real(bind, policy)

    monkeypatch.setattr(services, "auto_checkpoint", spy)
    writer = get_db(race_app).sessionmaker()
    try:
        record(writer, actor=None, code="item:create", subject_type="item", subject_key="A")
        writer.commit()
        services.wait_for_checkpoints()
        assert made_on and made_on[0].startswith("audit-checkpoint")
        assert made_on[0] != threading.current_thread().name
        assert _checkpoints(writer) == [(1, 1)]
    finally:
        writer.close()
