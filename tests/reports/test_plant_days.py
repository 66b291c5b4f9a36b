"""The days people pick on the report and shipment pages are the plant's (PLANT_TIMEZONE),
while the API keeps UTC days unless asked for a zone (`tz`): tested with a track-out and a
shipment at 20:00 UTC on 9 March, which is 04:00 on 10 March in Shanghai."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from mes.db import simulated_time
from mes.reports import services
from mes.shipping import services as shipping
from tests.floor.helpers import advance

EVENING_UTC = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
PLANT_DAY = "from=2026-03-10&to=2026-03-10"


@pytest.fixture
def evening(session, completed):
    """A lot completed and shipped at 20:00 UTC on 9 March (10 March at the plant)."""
    with simulated_time(EVENING_UTC):
        completed("LOT-E", quantity=100)
        shipping.create_shipment(session, "planner1", {"customer": "OEM", "po": "PO-E",
                                                       "lots": ["LOT-E"]})
        session.commit()


def test_a_query_in_the_plants_zone_counts_its_days(app, session, evening):
    with app.app_context():
        utc = services.make_query("planner", {"from": date(2026, 3, 10),
                                              "to": date(2026, 3, 10)})
        plant = services.make_query("planner", {"from": date(2026, 3, 10),
                                                "to": date(2026, 3, 10)},
                                    zone="Asia/Shanghai")
    assert (plant.lo, plant.hi) == (datetime(2026, 3, 9, 16, tzinfo=UTC),
                                    datetime(2026, 3, 10, 16, tzinfo=UTC))
    assert (utc.offset, plant.offset) == (0, 8 * 3600)
    assert services.yield_report(session, utc).rows == []
    assert {r["step"] for r in services.yield_report(session, plant).rows} == {
        "SAW", "WB", "FT", "PACK"}
    day_trend = services.yield_trend(session, services.ReportQuery(
        start=date(2026, 3, 10), end=date(2026, 3, 10), period="day", zone="Asia/Shanghai"))
    assert {r["period"] for r in day_trend.rows} == {"2026-03-10"}


def test_the_report_page_is_in_plant_days_and_its_csv_too(make_user, login, evening):
    client = login(make_user("qa"))
    html = client.get(f"/reports/yield?{PLANT_DAY}").get_data(as_text=True)
    assert "No track-outs in the range." not in html
    assert "Whole days of the plant (Asia/Shanghai)" in html
    link = re.search(r'href="([^"]*/api/v1/reports/yield\?[^"]*)"', html)
    assert link and "tz=Asia/Shanghai" in link.group(1)
    csv = client.get(link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200 and "FT" in csv.get_data(as_text=True)


def test_the_api_keeps_utc_days_unless_given_a_zone(api, evening):
    caller = api("qa")
    assert caller.get(f"/reports/yield?{PLANT_DAY}").get_json()["rows"] == []
    rows = caller.get(f"/reports/yield?{PLANT_DAY}&tz=Asia/Shanghai").get_json()["rows"]
    assert {r["step"] for r in rows} == {"SAW", "WB", "FT", "PACK"}
    bad = caller.get(f"/reports/yield?{PLANT_DAY}&tz=Mars/Olympus")
    assert bad.status_code == 422 and "tz" in bad.get_json()["error"]["fields"]


def test_the_shipment_list_filters_plant_days_and_the_api_utc_days(
        make_user, login, api, evening):
    client = login(make_user("planner"))

    def listed(query: str) -> bool:
        return "PO-E" in client.get(f"/shipments?{query}").get_data(as_text=True)

    assert listed("since=2026-03-10&until=2026-03-10")
    assert not listed("until=2026-03-09")
    assert listed("since=0001-01-01")
    caller = api("planner", username="planner-api")
    assert caller.get("/shipments?since=2026-03-10").get_json()["items"] == []
    assert len(caller.get("/shipments?until=2026-03-09").get_json()["items"]) == 1


def test_lots_advanced_in_the_evening_are_on_the_plants_next_day(session, receive):
    with simulated_time(EVENING_UTC):
        lot = advance(session, receive(10, lot_no="LOT-D"), 1)
    q = services.ReportQuery(start=date(2026, 3, 10), end=date(2026, 3, 10),
                             zone="Asia/Shanghai")
    assert lot.step_code == "WB"
    assert [r["step"] for r in services.yield_report(session, q).rows] == ["SAW"]
