"""A lot is shown through its read model: the lot schema refuses a bare lot."""

from __future__ import annotations

import pytest

from mes.floor import services
from mes.floor.schemas import LotOut, SplitOut


def test_the_lot_schema_shows_a_presented_lot_and_refuses_a_bare_one(session, receive):
    lot = receive(lot_no="L-SHOWN")
    children = services.split_lot(session, "op", lot, [600, 400])
    session.commit()
    with pytest.raises(TypeError, match="PresentedLot"):
        LotOut().dump(lot)
    with pytest.raises(TypeError, match="PresentedLot"):
        SplitOut().dump({"parent": lot, "children": children})
    parent, child = services.present(session, [lot, *children])
    shown = LotOut().dump(parent)
    assert (shown["lot_no"], shown["steps_total"], shown["holds"], shown["parents"],
            shown["children"]) == ("L-SHOWN", 4, [], [], [children[0].lot_no])
    assert LotOut().dump(child)["parents"] == ["L-SHOWN"]
