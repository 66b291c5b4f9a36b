"""One customer's side of the portal tests' world (tests/portal/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.shipping.models import Shipment
from mes.testfloor.models import TestRun


@dataclass
class Side:
    customer: str
    user: Any
    shipped: Lot
    wip: Lot
    completed: Lot
    shipment: Shipment
    open_hold: Hold
    released_hold: Hold
    run: TestRun

    @property
    def lot_nos(self) -> list[str]:
        return [self.shipped.lot_no, self.wip.lot_no, self.completed.lot_no]
