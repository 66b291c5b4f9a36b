"""The shop-floor test plant, with a qualified automotive product and completed lots."""

from __future__ import annotations

import pytest

from mes.catalog import services as cat
from mes.floor.models import Lot
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
