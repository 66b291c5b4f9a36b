"""The track-out's check of a sample due stays off the hot path: no statement at a step
without an every-lot plan, one at a step with one."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from mes.floor import services as floor
from tests.spc.helpers import at_wb, make_plan, sample


@contextmanager
def statements(session):
    seen: list[str] = []
    engine = session.get_bind().engine

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def track_out_statements(session, lot) -> list[str]:
    with statements(session) as seen:
        floor.track_out(session, "op", lot, step="WB", good_qty=lot.quantity)
        session.flush()
    session.commit()
    return [s for s in seen if "spc_" in s]


def test_no_query_at_a_step_without_an_every_lot_plan(session, plant, receive):
    make_plan(session, code="FT-V", step="FT", equipment_kind="tester", frequency="lot")
    make_plan(session, code="WB-HOURS", frequency="hours:8")
    # Its track-out at SAW read (and cached) which steps have every-lot plans: FT.
    lot = at_wb(session, receive)
    assert track_out_statements(session, lot) == []
    assert lot.step_code == "FT"


def test_one_query_at_a_step_with_one(session, plant, receive):
    plan = make_plan(session, frequency="lot")
    lot = at_wb(session, receive)
    sample(session, plan, lot, [8.0] * 5)
    track_out_statements(session, lot)  # fills the cache
    other = at_wb(session, receive)
    sample(session, plan, other, [8.0] * 5)
    assert len(track_out_statements(session, other)) == 1
