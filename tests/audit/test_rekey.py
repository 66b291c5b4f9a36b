"""Records written before the trail was keyed (a prior install, its demo data) are keyed once:
by `mes db upgrade` right after migration 0015, or by `mes audit rekey`."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, bindparam, func, select, text

from mes import migrate
from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.audit.services import AuditError, checkpoint, compute_hash, rekey, verify
from mes.db import get_db
from mes.floor.models import Lot
from mes.integrity import check
from tests.audit.helpers import chain, tamper
from tests.helpers import create_pg_database, make_app


def _unkey(session) -> None:
    """Turn every record into what the code before migration 0015 wrote: no number, the
    public hash chained per subject; and the lots' rows naming those heads."""
    rows = session.execute(select(AuditEvent).order_by(
        AuditEvent.subject_type, AuditEvent.subject_key, AuditEvent.seq)).scalars().all()
    prev: dict[tuple[str, str], str] = {}
    for ev in rows:
        before = prev.get((ev.subject_type, ev.subject_key), "0" * 64)
        ev.series = ev.number = None
        ev.prev_hash = before
        ev.hash = compute_hash(seq=ev.seq, at=ev.at, actor=ev.actor, code=ev.code,
                               subject_type=ev.subject_type, subject_key=ev.subject_key,
                               data=ev.data, prev_hash=before)
        prev[(ev.subject_type, ev.subject_key)] = ev.hash
        if ev.subject_type == "lot":
            session.execute(text("UPDATE lot SET audit_hash = :h WHERE lot_no = :k"),
                            {"h": ev.hash, "k": ev.subject_key})
    session.execute(text("UPDATE audit_counter SET value = 0"))
    session.execute(text("DELETE FROM audit_checkpoint"))
    session.commit()


def test_rekey_keys_records_written_before_the_key(app, session, receive):
    lot = receive(500)
    chain(session, "L0001")
    _unkey(session)
    before = verify(session)
    assert not before.ok and "not keyed" in before.problem
    count = session.scalar(select(func.count()).select_from(AuditEvent))
    assert rekey(session) == count
    session.commit()
    assert verify(session).ok
    numbers = session.scalars(select(AuditEvent.number).where(AuditEvent.series == 0)
                              .order_by(AuditEvent.id)).all()
    assert numbers == list(range(1, count + 1))
    # The lot's row names its chain's new head, and the plant checks clean.
    head = session.scalar(select(AuditEvent.hash).where(
        AuditEvent.subject_type == "lot", AuditEvent.subject_key == lot.lot_no)
        .order_by(AuditEvent.seq.desc()).limit(1))
    assert session.scalar(select(Lot.audit_hash).where(Lot.id == lot.id)) == head
    assert check(session, only=["audit"]).ok
    assert rekey(session) == 0


def test_rekey_keys_records_written_after_the_upgrade_on_their_chains(session):
    chain(session, "L0001", n=2)
    _unkey(session)
    chain(session, "L0001", n=1)  # the application wrote before the records were keyed
    assert rekey(session) == 2
    session.commit()
    assert verify(session).ok


def test_rekey_refuses_a_record_that_does_not_verify_by_its_formula(session):
    events = chain(session, "L0001")
    _unkey(session)
    tamper(session, "UPDATE audit_event SET data = :data WHERE id = :id",
           data={"forged": True}, id=events[1].id)
    with pytest.raises(AuditError, match=f"audit record id {events[1].id} "):
        rekey(session)


def test_rekey_refuses_once_the_trail_is_sealed(session):
    events = chain(session, "L0001")
    checkpoint(session)
    session.commit()
    tamper(session, "UPDATE audit_event SET number = NULL WHERE id = :id", id=events[0].id)
    with pytest.raises(AuditError, match="sealed by checkpoints"):
        rekey(session)
    assert session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 1


def test_cli_rekey_says_what_it_keyed(app, session):
    chain(session, "L0001")
    _unkey(session)
    result = app.test_cli_runner().invoke(args=["audit", "rekey"])
    assert result.exit_code == 0, result.output
    assert "3 audit record(s) written before the audit key are keyed." in result.output
    assert verify(session).ok
    again = app.test_cli_runner().invoke(args=["audit", "rekey"])
    assert again.exit_code == 0 and again.output == ""


def test_cli_rekey_refusal_is_one_line(app, session):
    events = chain(session, "L0001")
    _unkey(session)
    tamper(session, "UPDATE audit_event SET actor = 'mallory' WHERE id = :id",
           id=events[0].id)
    result = app.test_cli_runner().invoke(args=["audit", "rekey"])
    assert result.exit_code == 1
    assert "content does not match its hash; not keyed" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def prior_install(tmp_path):
    """A database as the code before the keyed trail left it (migrated to 0010), with an
    application for it."""
    pg = os.environ.get("MES_TEST_DATABASE_URL")
    url, drop = create_pg_database(pg) if pg else (f"sqlite:///{tmp_path / 'old.db'}", None)
    app = make_app(url, tmp_path / "instance")
    try:
        yield app
    finally:
        get_db(app).engine.dispose()
        if drop is not None:
            drop()


def test_db_upgrade_keys_the_records_of_a_prior_install(prior_install):
    engine = get_db(prior_install).engine
    with engine.begin() as conn:
        migrate.upgrade(conn, "0010")
        prev = "0" * 64
        for seq in (1, 2):
            at = datetime(2026, 11, 30, 8, seq, tzinfo=UTC)
            data = {"step": f"S{seq}"}
            digest = compute_hash(seq=seq, at=at, actor="alice", code="item:move",
                                  subject_type="item", subject_key="A", data=data,
                                  prev_hash=prev)
            conn.execute(text(
                "INSERT INTO audit_event (at, actor, code, subject_type, subject_key, seq, "
                "data, prev_hash, hash) VALUES (:at, 'alice', 'item:move', 'item', 'A', "
                ":seq, :data, :prev, :hash)").bindparams(bindparam("data", type_=JSON)),
                {"at": at if engine.dialect.name != "sqlite" else at.replace(tzinfo=None),
                 "seq": seq, "data": data, "prev": prev, "hash": digest})
            prev = digest
    runner = prior_install.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "2 audit record(s) written before the audit key are keyed." in result.output
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "2 records, 1 checkpoint(s)" in verified.output
    again = runner.invoke(args=["db", "upgrade"])
    assert again.exit_code == 0 and "keyed" not in again.output
