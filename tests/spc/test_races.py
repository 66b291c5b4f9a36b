"""Subgroups of one plan judged at once, with real concurrent connections: one
out-of-control event, one stop of the tool, one hold per lot."""

from __future__ import annotations

from sqlalchemy import func, select

from mes.catalog.models import Equipment, EquipmentStateChange
from mes.db import session_scope
from mes.quality.models import Hold
from mes.spc import services as spc
from mes.spc.models import SpcEvent, SpcSubgroup
from tests.floor.races import LOST_RACE, audit_chains_intact, fire, read, receive


def test_simultaneous_violations_open_one_event_and_hold_once(race_app, race_plant):
    receive(race_app, "LOT-A", track_in_on="SAW-1")
    with race_app.app_context(), session_scope(race_app) as session:
        plan = spc.create_plan(session, "eng", {
            "code": "SAW-W", "step": "SAW", "characteristic": "Kerf width", "unit": "um",
            "subgroup_size": 2, "frequency": "hours:8", "equipment_kind": "saw"})
        for i in range(25):
            spc.add_sample(session, "op", plan, lot="LOT-A", equipment="SAW-1",
                           values=[30.0, 31.0 + (i % 2)])
        spc.freeze_limits(session, "eng", plan)
    answers = fire(race_app, race_plant["headers"], [
        ("/spc/plans/SAW-W/samples", {"lot": "LOT-A", "equipment": "SAW-1",
                                      "values": [60.0, 60.0 + i]}) for i in range(4)])
    won = [body for status, body in answers if status == 201]
    assert won, answers
    assert all(status == 409 and body["error"]["code"] in LOST_RACE
               for status, body in answers if status != 201), answers
    assert len({body["event"] for body in won}) == 1

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(SpcEvent)) == 1
        assert session.scalar(select(func.count()).select_from(SpcSubgroup)) == 25 + len(won)
        assert session.scalar(select(func.count()).select_from(Hold)) == 1
        assert session.scalar(select(func.count()).select_from(EquipmentStateChange).where(
            EquipmentStateChange.to_state == "engineering")) == 1
        assert session.scalar(select(Equipment.state).where(Equipment.code == "SAW-1")) == \
            "engineering"
        assert audit_chains_intact(session)

    read(race_app, check)
