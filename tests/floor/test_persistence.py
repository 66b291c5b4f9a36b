"""The floor's own writes (mes.floor.persistence): a move writes the lot, tool and run rows
by plain statements and leaves nothing for the unit of work to visit at the flush."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from mes import audit
from mes.audit.models import AuditCounter, AuditEvent
from mes.audit.services import AuditError
from mes.catalog.models import Equipment
from mes.errors import Conflict
from mes.floor import services
from tests.floor.helpers import lot_row
from tests.helpers import refused


def _last_record(session, lot_no: str) -> tuple[int, str]:
    return tuple(session.execute(
        select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.subject_type == "lot", AuditEvent.subject_key == lot_no)
        .order_by(AuditEvent.seq.desc()).limit(1)).one())


def test_a_move_leaves_no_object_for_the_flush_and_saves_the_chain_head(session, receive):
    lot_no = receive(1000).lot_no
    session.expunge_all()
    move = services.lot_to_move(session, lot_no, tool="SAW-1")
    services.track_in(session, "op1", move, step="SAW", equipment="SAW-1")
    assert not session.dirty
    row = lot_row(session, lot_no)
    assert (row["state"], row["version"]) == ("running", move.lot.version)
    assert (row["audit_seq"], row["audit_hash"]) == _last_record(session, lot_no) \
        == (move.lot.audit_seq, move.lot.audit_hash)
    session.commit()
    session.expunge_all()

    move = services.lot_to_move(session, lot_no)
    services.track_out(session, "op2", move, step="SAW", good_qty=1000)
    assert not session.dirty
    row = lot_row(session, lot_no)
    assert (row["state"], row["step_code"], row["version"]) == ("queued", "WB", move.lot.version)
    assert (row["audit_seq"], row["audit_hash"]) == _last_record(session, lot_no) \
        == (move.lot.audit_seq, move.lot.audit_hash)
    assert session.scalar(select(Equipment.lots_running).where(Equipment.code == "SAW-1")) == 0


def _statements(session):
    """A list that fills with the SQL statements `session`'s connection runs."""
    seen: list[str] = []
    event.listen(session.connection(), "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def _counters(session) -> dict[int, int]:
    return dict(session.execute(select(AuditCounter.series, AuditCounter.value)).all())


def test_a_move_is_one_write_and_its_audit_number_comes_with_the_lot_on_postgresql(
        session, receive):
    lot_no = receive(1000).lot_no
    # A first move: the connection claims its audit series on first use.
    services.track_in(session, "op1", services.lot_to_move(session, lot_no, tool="SAW-1"),
                      step="SAW", equipment="SAW-1")
    session.commit()
    before = _counters(session)
    seen = _statements(session)
    move = services.lot_to_move(session, lot_no)
    services.track_out(session, "op1", move, step="SAW", good_qty=1000)
    session.commit()
    statements = [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT",
                                                                        "RELEASE"))]
    record = session.execute(select(AuditEvent.series, AuditEvent.number).where(
        AuditEvent.subject_key == lot_no, AuditEvent.code == "lot:track_out")).one()
    after = _counters(session)
    # One number of one series was given out, the record's.
    assert {s: after[s] - before[s] for s in after if after[s] != before[s]} \
        == {record.series: 1}
    assert after[record.series] == record.number
    if session.get_bind().dialect.name == "postgresql":
        # The lot with its number taken ahead, then one statement writing the whole move.
        assert len(statements) == 2, statements
        assert "audit_ahead" in statements[0] and "FROM lot" in statements[0]
        assert "new_event" in statements[1] and "audit_counter" not in statements[1]
    assert audit.verify(session).ok


def test_a_refused_move_gives_its_audit_number_back(session, receive):
    lot_no = receive(1000).lot_no
    session.expunge_all()
    before = _counters(session)

    def wrong_step():
        try:
            services.track_in(session, "op1", services.lot_to_move(session, lot_no, tool="SAW-1"),
                              step="WB", equipment="SAW-1")
        except Conflict:
            session.rollback()
            raise

    refused(session, wrong_step, Conflict, code="wrong_step")
    assert _counters(session) == before


def test_a_number_taken_ahead_and_never_used_cannot_commit(session, receive):
    lot_no = receive(1000).lot_no
    services.lot_to_move(session, lot_no, tool="SAW-1")
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("numbers are taken ahead on PostgreSQL only")
    with pytest.raises(AuditError, match="taken and not used"):
        session.commit()
    session.rollback()
