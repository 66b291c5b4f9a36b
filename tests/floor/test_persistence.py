"""The floor's own writes (mes.floor.persistence): a move writes the lot, tool and run rows
by plain statements and leaves nothing for the unit of work to visit at the flush."""

from __future__ import annotations

from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog.models import Equipment
from mes.floor import services
from tests.floor.helpers import lot_row


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
