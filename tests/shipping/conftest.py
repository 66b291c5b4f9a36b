"""The shop-floor test plant, with a qualified automotive product and completed lots."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mes.catalog import services as cat
from mes.db import simulated_time
from mes.floor.models import Lot
from mes.testfloor import services as testfloor
from tests.floor.conftest import plant, receive  # noqa: F401  (fixtures used by these tests)
from tests.floor.helpers import advance


@pytest.fixture
def qualified(request, session):
    """P1, the automotive customer's product, with a passed AEC-Q100 qualification."""
    request.getfixturevalue("plant")
    cat.add_qualification(session, "eng", cat.get_product(session, "P1"), {
        "standard": "AEC-Q100", "grade": 1, "report": "QR-1", "tests": [
            {"test": "HTOL", "group": "B", "sample_size": 77, "lots": 3, "fails": 0}]})
    session.commit()


@pytest.fixture
def completed(request, session, qualified):
    """Make a lot and move it through the whole route: completed, free, in its product's
    floor life."""
    make_lot = request.getfixturevalue("receive")

    def make(lot_no: str, product: str = "P1", customer: str = "OEM",
             quantity: int = 100) -> Lot:
        lot = make_lot(quantity, lot_no=lot_no, product=product, customer=customer)
        advance(session, lot, 4)
        assert lot.state == "completed"
        return lot

    return make


# Final test of the lots made by `tested`: Wednesday 4 March 2026, ISO week 10.
FT_AT = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def tested(request, session, qualified):
    """Make a completed lot with a bin summary at the final test step FT, its whole route
    run at `at` (default `FT_AT`: date code 2610): `good` of `quantity` units pass (bin 1), the rest
    fail (bin 7). The lot leaves FT with its full quantity."""
    make_lot = request.getfixturevalue("receive")

    def make(lot_no: str, quantity: int, good: int, product: str = "P1",
             customer: str = "OEM", at: datetime = FT_AT) -> Lot:
        with simulated_time(at):
            lot = make_lot(quantity, lot_no=lot_no, product=product, customer=customer)
            advance(session, lot, 2)
            bins = [{"bin": 1, "count": good, "passed": True}]
            if quantity > good:
                bins.append({"bin": 7, "count": quantity - good, "passed": False})
            testfloor.record_bins(session, "op1", lot, bins=bins)
            session.commit()
            advance(session, lot, 2)
        assert lot.state == "completed"
        return lot

    return make
