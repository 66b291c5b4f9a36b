"""Quality subscribes to the floor's lot lifecycle (mes.floor.lifecycle): connected once in
every app, and run inside the track-out's transaction."""

from __future__ import annotations

import pytest
from blinker import ANY

from mes.errors import Conflict
from mes.floor import lifecycle
from mes.floor import services as floor
from mes.quality import services
from mes.quality.services import moisture
from tests.floor.helpers import advance, floor_state, track_in
from tests.helpers import make_app


def test_the_quality_rules_are_connected_once_in_every_app(app, tmp_path):
    make_app(str(app.config["DATABASE_URL"]), tmp_path)
    assert list(lifecycle.lot_tracked_out.receivers_for(ANY)) == [
        moisture.after_track_out, services.after_track_out]
    assert moisture.before_track_out in list(lifecycle.lot_tracking_out.receivers_for(ANY))


def test_a_receiver_that_refuses_refuses_the_track_out_in_the_same_transaction(session,
                                                                              receive):
    lot = track_in(session, advance(session, receive(100)))
    before = floor_state(session)

    def refuse(sender, **kwargs):
        # The move is written when the receivers run: a refusal must undo it with them.
        assert (sender.state, sender.step_code) == ("queued", "FT")
        raise Conflict("refused by a subscriber")

    with lifecycle.lot_tracked_out.connected_to(refuse), pytest.raises(Conflict):
        floor.track_out(session, "op2", lot, step="WB", good_qty=100)
    session.rollback()
    assert floor_state(session) == before
