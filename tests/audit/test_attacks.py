"""Someone who can write the database, but does not hold the audit key, deletes or rewrites
audit records: every such change is named by `mes audit verify`, the first missing or
altered record first (not a checkpoint)."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select

from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.audit.services import checkpoint, compute_hash, record, record_mac, verify
from tests.audit.helpers import chain, tamper


def _place(event: AuditEvent) -> str:
    return f"{event.series}:{event.number}"


def _cli_verify(app, *args: str):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def _assert_names_missing(app, session, event: AuditEvent) -> None:
    result = verify(session)
    assert not result.ok
    assert result.problem.startswith(f"audit record {_place(event)}"), result.problem
    assert "missing" in result.problem
    answer = _cli_verify(app)
    assert answer.exit_code == 1, answer.output
    assert f"audit record {_place(event)}" in answer.output


def test_deleting_the_last_record_of_a_chain_is_detected(app, session):
    events = chain(session, "L0001")
    chain(session, "L0002")  # the plant goes on writing
    tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[-1].id)
    _assert_names_missing(app, session, events[-1])


def test_deleting_a_whole_users_chain_is_detected(app, session):
    chain(session, "L0001")
    gone = chain(session, "mallory", n=4, subject_type="user")
    chain(session, "L0002")
    tamper(session, "DELETE FROM audit_event WHERE subject_type = 'user' "
                    "AND subject_key = 'mallory'")
    _assert_names_missing(app, session, gone[0])


def test_deleting_the_newest_records_is_detected(app, session):
    chain(session, "L0001")
    newest = chain(session, "L0002", n=2) + chain(session, "L0003", n=2)
    ids = [e.id for e in newest]
    tamper(session, f"DELETE FROM audit_event WHERE id IN ({', '.join(map(str, ids))})")
    first = min(newest, key=lambda e: (e.series, e.number))
    _assert_names_missing(app, session, first)


def test_deleting_the_newest_records_and_every_checkpoint_is_detected(app, session):
    chain(session, "L0001")
    checkpoint(session)
    session.commit()
    newest = chain(session, "L0002", n=2)
    checkpoint(session)
    session.commit()
    tamper(session, "DELETE FROM audit_checkpoint")
    tamper(session, f"DELETE FROM audit_event WHERE id IN ({newest[0].id}, {newest[1].id})")
    _assert_names_missing(app, session, newest[0])


def _hold_and_release(session) -> tuple[AuditEvent, AuditEvent]:
    placed = record(session, actor="qa.wang", code="hold:place", subject_type="hold",
                    subject_key="7", data={"reason": "H01", "lots": ["L0001"]})
    released = record(session, actor="qa.li", code="hold:release", subject_type="hold",
                      subject_key="7", data={"disposition": "use_as_is"})
    session.commit()
    return placed, released


def _rehash_chain(session, edited: AuditEvent, new_hash) -> None:
    """Recompute the hash of the edited record and of every later one of its chain from
    their content, as the attacker can, and every checkpoint's digest by the published
    formula."""
    rows = session.execute(select(AuditEvent).where(
        AuditEvent.subject_type == edited.subject_type,
        AuditEvent.subject_key == edited.subject_key, AuditEvent.seq >= edited.seq)
        .order_by(AuditEvent.seq)).scalars().all()
    prev = edited.prev_hash
    for ev in rows:
        session.refresh(ev)
        digest = new_hash(ev, prev)
        tamper(session, "UPDATE audit_event SET prev_hash = :p, hash = :h WHERE id = :id",
               p=prev, h=digest, id=ev.id)
        prev = digest
    for cp in session.scalars(select(AuditCheckpoint)).all():
        hashes = session.scalars(select(AuditEvent.hash).order_by(
            AuditEvent.series, AuditEvent.number)).all()
        tamper(session, "UPDATE audit_checkpoint SET digest = :d WHERE id = :id",
               d=hashlib.sha256("".join(hashes).encode()).hexdigest(), id=cp.id)


def test_rehashing_a_chain_by_the_public_formula_is_detected(app, session):
    # The release is made to look like the work of the one who placed the hold (a breach of
    # the two-person rule), and the chain and the checkpoint are recomputed to match.
    chain(session, "L0001")
    _placed, released = _hold_and_release(session)
    checkpoint(session)
    session.commit()
    tamper(session, "UPDATE audit_event SET actor = 'qa.wang' WHERE id = :id", id=released.id)
    _rehash_chain(session, released, lambda ev, prev: compute_hash(
        seq=ev.seq, at=ev.at, actor=ev.actor, code=ev.code, subject_type=ev.subject_type,
        subject_key=ev.subject_key, data=ev.data, prev_hash=prev))
    result = verify(session)
    assert not result.ok
    assert result.problem.startswith(f"audit record {_place(released)} "), result.problem
    assert result.bad_event_id == released.id
    answer = _cli_verify(app)
    assert answer.exit_code == 1
    assert f"audit record {_place(released)} " in answer.output


def test_rehashing_with_a_key_of_ones_own_is_detected(app, session):
    chain(session, "L0001")
    _placed, released = _hold_and_release(session)
    tamper(session, "UPDATE audit_event SET actor = 'qa.wang' WHERE id = :id", id=released.id)
    guessed = b"not-the-plant's-key-but-32-bytes-long"
    _rehash_chain(session, released, lambda ev, prev: record_mac(
        guessed, series=ev.series, number=ev.number, seq=ev.seq, at=ev.at, actor=ev.actor,
        code=ev.code, subject_type=ev.subject_type, subject_key=ev.subject_key,
        data=ev.data, prev_hash=prev))
    result = verify(session)
    assert not result.ok
    assert result.problem.startswith(f"audit record {_place(released)} ")


def test_renumbering_records_to_close_a_gap_is_detected(session):
    events = chain(session, "L0001", n=4)
    tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[1].id)
    tamper(session, "UPDATE audit_event SET number = number - 1 WHERE number > :n "
                    "AND series = :s", n=events[1].number, s=events[1].series)
    tamper(session, "UPDATE audit_counter SET value = value - 1 WHERE series = :s",
           s=events[1].series)
    result = verify(session)
    assert not result.ok
    # The record that took the deleted one's number no longer matches its keyed hash.
    assert result.bad_event_id == events[2].id


def test_a_record_made_unkeyed_is_named(session):
    events = chain(session, "L0001")
    tamper(session, "UPDATE audit_event SET number = NULL, series = NULL, hash = :h "
                    "WHERE id = :id", h="0" * 64, id=events[2].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[2].id
    assert "not keyed" in result.problem


def test_an_edited_checkpoint_is_detected(session):
    chain(session)
    checkpoint(session)
    session.commit()
    tamper(session, "UPDATE audit_checkpoint SET event_count = 2")
    result = verify(session)
    assert not result.ok
    assert result.problem.startswith("checkpoint 1: does not match its keyed hash")


def test_a_deleted_checkpoint_between_others_is_detected(session):
    for key in ("L0001", "L0002", "L0003"):
        chain(session, key, n=1)
        checkpoint(session)
        session.commit()
    tamper(session, "DELETE FROM audit_checkpoint WHERE number = 2")
    result = verify(session)
    assert not result.ok
    assert result.problem == "checkpoint 2 is missing (deleted)"


def test_a_checkpoint_with_a_mac_made_without_the_key_is_detected(session):
    chain(session)
    checkpoint(session)
    session.commit()
    cp = session.scalars(select(AuditCheckpoint)).one()
    forged = hmac.new(b"guess", cp.digest.encode(), hashlib.sha256).hexdigest()
    tamper(session, "UPDATE audit_checkpoint SET mac = :m", m=forged)
    assert not verify(session).ok
