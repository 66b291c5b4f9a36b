"""The audit trail: chained per subject, and editing or deleting a record is detected."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import JSON, bindparam, select, text

from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.audit.services import GENESIS, checkpoint, compute_hash, record, verify


def _chain(session, key: str = "L0001", n: int = 3) -> list[AuditEvent]:
    events = [record(session, actor="alice", code="item:move", subject_type="item",
                     subject_key=key, data={"step": f"S{i}", "qty": i * 10})
              for i in range(1, n + 1)]
    session.commit()
    return events


def _tamper(session, sql: str, **params) -> None:
    stmt = text(sql)
    if "data" in params:
        stmt = stmt.bindparams(bindparam("data", type_=JSON))
    session.execute(stmt, params)
    # No expire_all(): the session still remembers the old values, and verify() must read
    # what the database holds now.
    session.commit()


def test_records_of_one_subject_form_a_chain(session):
    events = _chain(session)
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert len({e.hash for e in events}) == 3


def test_each_subject_has_its_own_chain(session):
    first = record(session, actor=None, code="item:create", subject_type="item",
                   subject_key="A")
    other = record(session, actor=None, code="item:create", subject_type="item",
                   subject_key="B")
    second = record(session, actor=None, code="item:hold", subject_type="item", subject_key="A")
    session.commit()
    assert (first.seq, other.seq, second.seq) == (1, 1, 2)
    assert other.prev_hash == GENESIS
    assert second.prev_hash == first.hash


def test_record_keeps_actor_name_and_hash_of_its_content(session, make_user):
    user = make_user("qa")
    event = record(session, actor=user, code="hold:place", subject_type="hold",
                   subject_key="7", data={"reason": "H01"})
    session.commit()
    stored = session.scalars(select(AuditEvent).where(AuditEvent.id == event.id)).one()
    assert stored.actor == user.username
    assert stored.hash == compute_hash(
        seq=stored.seq, at=stored.at, actor=stored.actor, code=stored.code,
        subject_type=stored.subject_type, subject_key=stored.subject_key, data=stored.data,
        prev_hash=stored.prev_hash)


def test_verify_passes_on_intact_records(session):
    _chain(session)
    _chain(session, key="L0002", n=2)
    checkpoint(session, timedelta(0))
    session.commit()
    result = verify(session)
    assert result.ok, result.problem
    assert (result.events, result.checkpoints) == (5, 1)


def test_verify_names_a_record_whose_data_was_edited(session):
    events = _chain(session)
    _tamper(session, "UPDATE audit_event SET data = :data WHERE id = :id",
            data={"step": "S2", "qty": 9999}, id=events[1].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[1].id
    assert f"audit record {events[1].id} " in result.problem


def test_verify_names_a_record_whose_actor_was_edited(session):
    events = _chain(session)
    _tamper(session, "UPDATE audit_event SET actor = 'mallory' WHERE id = :id",
            id=events[0].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[0].id


def test_verify_detects_a_deleted_middle_record(session):
    events = _chain(session)
    _tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[1].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[2].id
    assert "missing" in result.problem


def test_verify_detects_a_rehashed_record(session):
    # Someone who edits a record and recomputes its own hash still breaks the next link.
    events = _chain(session)
    ev = events[1]
    forged = compute_hash(seq=ev.seq, at=ev.at, actor="mallory", code=ev.code,
                          subject_type=ev.subject_type, subject_key=ev.subject_key,
                          data=ev.data, prev_hash=ev.prev_hash)
    _tamper(session, "UPDATE audit_event SET actor = 'mallory', hash = :h WHERE id = :id",
            h=forged, id=ev.id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[2].id


def test_deleting_the_newest_record_after_a_checkpoint_is_detected(session):
    events = _chain(session)
    cp = checkpoint(session, timedelta(0))
    session.commit()
    _tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[-1].id)
    result = verify(session)
    assert not result.ok
    assert f"checkpoint {cp.id} " in result.problem
    assert "no longer matches" in result.problem


def test_records_after_a_checkpoint_keep_it_valid(session):
    _chain(session)
    checkpoint(session, timedelta(0))
    session.commit()
    _chain(session, key="L0009", n=2)
    result = verify(session)
    assert result.ok, result.problem
    assert session.scalar(select(AuditCheckpoint.event_count)) == 3


def test_cli_verify_passes_on_intact_records(app, session):
    _chain(session)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 3 records" in result.output


def test_cli_verify_fails_naming_the_first_bad_record(app, session):
    events = _chain(session)
    _tamper(session, "UPDATE audit_event SET data = :data WHERE id = :id",
            data={"forged": True}, id=events[0].id)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert f"audit record {events[0].id} " in result.output
    assert "Traceback" not in result.output


def test_cli_checkpoint_records_a_digest(app, session):
    _chain(session)
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint", "--margin-minutes", "0"])
    assert result.exit_code == 0, result.output
    assert "3 records" in result.output
    assert session.scalar(select(AuditCheckpoint.event_count)) == 3


def test_a_checkpoint_leaves_out_records_younger_than_its_margin(session):
    # A record that may still belong to an open transaction is not covered, so its later
    # commit (with a lower id on PostgreSQL) cannot break the checkpoint.
    events = _chain(session)
    cp = checkpoint(session, timedelta(minutes=5))
    session.commit()
    assert cp.event_count == 0
    _tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[-1].id)
    result = verify(session)
    assert result.ok, result.problem
