"""A plant with a packed, marked and shipped lot of OEM's (LOT-A: reels, bags, box, carton,
date code 2649, trace code 00RS4), a completed lot of IND's packed too (LOT-I), and helpers
to record complaints and work their 8D."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mes.db import utcnow
from tests.shipping.packed import pack


@pytest.fixture
def packed(session, api, completed):
    own = pack(session, api, completed, "LOT-A", date_code="2649", trace_code="00RS4")
    other = pack(session, api, completed, "LOT-I", customer="IND", product="P2",
                 date_code="2649", trace_code="00ZZ9", customer_part=None)
    return own, other


def body(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": "OEM", "reference": "8D-OEM-1", "vehicle_program": "EV-7 inverter",
        "received_at": (utcnow() - timedelta(hours=1)).isoformat(),
        "description": "Open circuit at the customer's ICT",
        "units": [{"scan": "LOT-A", "failure_mode": "open", "count": 2}]}
    data.update(kw)
    return data


@pytest.fixture
def qa(api):
    return api("qa", username="quinn-qa")
