""""Late" is one rule (mes.floor.services.is_late / late_clause): a lot still in work whose
due date is before the plant's local date. The lot page, the WIP board and the reports
agree, also in the hours when the plant's date is already the next day in UTC terms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mes.db import simulated_time

PLANT = ZoneInfo("Asia/Shanghai")  # UTC+8
# 02:00 at the plant on 10 March is 18:00 UTC on 9 March.
AT_TWO = datetime(2026, 3, 10, 2, 0, tzinfo=PLANT).astimezone(UTC)
# 23:00 at the plant on 9 March, still 9 March in UTC too.
AT_ELEVEN = datetime(2026, 3, 9, 23, 0, tzinfo=PLANT).astimezone(UTC)


@pytest.fixture
def plant_zone(app):
    zone = app.config["PLANT_TIMEZONE"]
    app.config["PLANT_TIMEZONE"] = "Asia/Shanghai"
    yield
    app.config["PLANT_TIMEZONE"] = zone


def what_each_view_says(client, api_caller) -> dict[str, set[str]]:
    lot_page = {lot_no for lot_no in ("LOT-DUE-9", "LOT-DUE-10")
                if "badge-late" in client.get(f"/lots/{lot_no}").get_data(as_text=True)}
    board = client.get("/wip").get_data(as_text=True)
    wip_board = {lot_no for lot_no in ("LOT-DUE-9", "LOT-DUE-10")
                 if f'class="late" data-lot="{lot_no}"' in board}
    late_report = api_caller.get("/reports/wip/late")
    assert late_report.status_code == 200, late_report.get_json()
    wip_report = api_caller.get("/reports/wip").get_json()
    return {"lot page": lot_page, "WIP board": wip_board,
            "late report": {row["lot_no"] for row in late_report.get_json()["rows"]},
            "WIP report count": {f"{sum(row['late'] for row in wip_report['rows'])} late"}}


@pytest.mark.usefixtures("plant_zone")
def test_lot_page_wip_board_and_reports_agree_at_two_in_the_morning(
        client, session, receive, make_user, login, api):
    # Received before their due dates (a due date already past is refused).
    with simulated_time(AT_ELEVEN - timedelta(days=2)):
        receive(100, lot_no="LOT-DUE-9", due_date=date(2026, 3, 9))
        receive(100, lot_no="LOT-DUE-10", due_date=date(2026, 3, 10))
    login(make_user("planner"))
    caller = api("planner", username="planner-api")

    with simulated_time(AT_TWO):
        assert what_each_view_says(client, caller) == {
            "lot page": {"LOT-DUE-9"}, "WIP board": {"LOT-DUE-9"},
            "late report": {"LOT-DUE-9"}, "WIP report count": {"1 late"}}
    with simulated_time(AT_ELEVEN):
        assert what_each_view_says(client, caller) == {
            "lot page": set(), "WIP board": set(), "late report": set(),
            "WIP report count": {"0 late"}}
