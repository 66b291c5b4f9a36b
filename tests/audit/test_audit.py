"""The audit trail: keyed, chained per subject, numbered without gaps, and editing or
deleting a record is detected."""

from __future__ import annotations

from sqlalchemy import select

from mes.audit.models import AuditCheckpoint, AuditCounter, AuditEvent
from mes.audit.services import GENESIS, checkpoint, record, record_mac, record_many, verify
from tests.audit.helpers import chain, tamper


def test_records_of_one_subject_form_a_chain(session):
    events = chain(session)
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


def test_records_are_numbered_without_gaps_in_their_series(session):
    # One transaction holds one series: its records take its next numbers in order.
    events = [record(session, actor=None, code="item:create", subject_type="item",
                     subject_key=key) for key in "ABC"]
    record_many(session, [{"actor": None, "code": "item:hold", "subject_type": "item",
                           "subject_key": key} for key in "AB"])
    session.commit()
    series = events[0].series
    rows = session.execute(select(AuditEvent.series, AuditEvent.number)
                           .order_by(AuditEvent.number)).all()
    assert {s for s, _ in rows} == {series}
    assert [n for _, n in rows] == [1, 2, 3, 4, 5]
    assert session.scalar(select(AuditCounter.value).where(AuditCounter.series == series)) == 5


def test_a_rolled_back_write_gives_its_numbers_back(session):
    record(session, actor=None, code="item:create", subject_type="item", subject_key="A")
    session.rollback()
    event = record(session, actor=None, code="item:create", subject_type="item",
                   subject_key="B")
    session.commit()
    assert event.number == 1
    assert verify(session).ok


def test_record_keeps_actor_name_and_its_keyed_hash(app, session, make_user):
    user = make_user("qa")
    event = record(session, actor=user, code="hold:place", subject_type="hold",
                   subject_key="7", data={"reason": "H01"})
    session.commit()
    stored = session.scalars(select(AuditEvent).where(AuditEvent.id == event.id)).one()
    assert stored.actor == user.username
    assert stored.hash == record_mac(
        app.config["AUDIT_KEY"].encode(), series=stored.series, number=stored.number,
        seq=stored.seq, at=stored.at, actor=stored.actor, code=stored.code,
        subject_type=stored.subject_type, subject_key=stored.subject_key, data=stored.data,
        prev_hash=stored.prev_hash)


def test_verify_passes_on_intact_records(session):
    chain(session)
    chain(session, key="L0002", n=2)
    checkpoint(session)
    session.commit()
    result = verify(session)
    assert result.ok, result.problem
    assert (result.events, result.checkpoints) == (5, 1)


def test_verify_names_a_record_whose_data_was_edited(session):
    events = chain(session)
    tamper(session, "UPDATE audit_event SET data = :data WHERE id = :id",
           data={"step": "S2", "qty": 9999}, id=events[1].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[1].id
    assert f"audit record {events[1].series}:{events[1].number} (id {events[1].id}," \
        in result.problem
    assert "edited" in result.problem


def test_verify_names_a_record_whose_actor_was_edited(session):
    events = chain(session)
    tamper(session, "UPDATE audit_event SET actor = 'mallory' WHERE id = :id",
           id=events[0].id)
    result = verify(session)
    assert not result.ok
    assert result.bad_event_id == events[0].id


def test_verify_names_a_deleted_middle_record(session):
    events = chain(session)
    tamper(session, "DELETE FROM audit_event WHERE id = :id", id=events[1].id)
    result = verify(session)
    assert not result.ok
    assert result.problem.startswith(
        f"audit record {events[1].series}:{events[1].number} is missing")


def test_records_after_a_checkpoint_keep_it_valid(session):
    chain(session)
    checkpoint(session)
    session.commit()
    chain(session, key="L0009", n=2)
    result = verify(session)
    assert result.ok, result.problem
    assert session.scalar(select(AuditCheckpoint.event_count)) == 3


def test_a_checkpoint_is_made_only_when_records_were_written_since_the_last(session):
    chain(session)
    first, new = checkpoint(session)
    session.commit()
    again, again_new = checkpoint(session)
    assert new and not again_new
    assert again == first
    assert session.scalar(select(AuditCheckpoint.number)) == 1


def test_cli_verify_passes_on_intact_records(app, session):
    chain(session)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 3 records" in result.output


def test_cli_verify_fails_naming_the_first_bad_record(app, session):
    events = chain(session)
    tamper(session, "UPDATE audit_event SET data = :data WHERE id = :id",
           data={"forged": True}, id=events[0].id)
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code != 0
    assert f"audit record {events[0].series}:{events[0].number} " in result.output
    assert "Traceback" not in result.output


def test_cli_checkpoint_seals_every_record(app, session):
    chain(session)
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    assert "Checkpoint 1 over 3 records." in result.output
    assert session.scalar(select(AuditCheckpoint.event_count)) == 3


def test_cli_checkpoint_without_records_says_so(app, session):
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 1
    assert "no audit records" in result.output
