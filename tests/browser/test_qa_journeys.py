"""QA journeys in a real browser: a QA engineer holds a lot from its page and is shown who
may release it instead of a form, and a second engineer releases it with a rework step
chosen from the steps offered; a mass hold by a tool's time window typed in plant time.
Each checks the database afterwards, not only the page."""

from __future__ import annotations

from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mes.db import session_scope
from mes.floor import services as floor
from mes.floor.models import Lot, StepRun
from mes.quality.models import Hold
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

RELEASE_BUTTON = "form[action$='/view'] button[type=submit]"
PASSWORDS = {"qa": "demo-qa-2026", "qa2": "demo-qa2-2026", "op1": "demo-op1-2026"}


def test_qa_release_is_offered_only_to_who_may(live, open_as):
    app = live["app"]
    with app.app_context(), session_scope(app) as sess:
        lot = next(lot for lot in sess.scalars(
            select(Lot).where(Lot.state == "queued", Lot.open_holds == 0, Lot.step_seq > 2)
            .order_by(Lot.id.desc())))
        lot_no = lot.lot_no
        earlier = [s.code for s in floor.route_steps(lot)[:lot.step_seq - 1]]
    qa = open_as("qa", PASSWORDS["qa"])
    qa.goto(f"{live['url']}/lots/{lot_no}")
    submit(qa, qa.locator(f"a[href$='/lots/{lot_no}/hold']").click)
    qa.select_option("select[name=reason]", "HOLD-ENG")
    qa.fill("textarea[name=comment]", "Voids seen on X-ray of two units")
    submit(qa, qa.get_by_role("button", name="Put the lot on hold").click)
    assert qa.url.endswith(f"/lots/{lot_no}")
    with app.app_context(), session_scope(app) as sess:
        hold = sess.scalars(select(Hold).join(Lot).where(Lot.lot_no == lot_no,
                                                         Hold.status == "open")).one()
        hold_id = hold.id
        assert (hold.placed_by, hold.source, hold.reason.code) == ("qa", "manual", "HOLD-ENG")

    # The person who placed it sees why not and who may, and no form.
    qa.goto(f"{live['url']}/holds/{hold_id}/view")
    shot(qa, "qa-5-own-hold-who-may")
    assert qa.locator(RELEASE_BUTTON).count() == 0
    assert "two-person rule" in qa.locator(".release-refusal").inner_text()
    who = qa.locator(".release-who").inner_text()
    assert "qa2" in who and "admin" in who

    # An operator sees who may, and no form either.
    op = open_as("op1", PASSWORDS["op1"])
    op.goto(f"{live['url']}/holds/{hold_id}/view")
    assert op.locator(RELEASE_BUTTON).count() == 0
    assert op.locator(".release-refusal").count() == 1

    # The second engineer (in Chinese) gets the form; rework offers only earlier steps.
    qa2 = open_as("qa2", PASSWORDS["qa2"])
    qa2.goto(f"{live['url']}/holds/{hold_id}/view")
    assert qa2.locator(RELEASE_BUTTON).count() == 1
    offered = qa2.locator("select[name=rework_step] option").evaluate_all(
        "options => options.map(o => o.value).filter(v => v)")
    assert offered == earlier
    qa2.select_option("select[name=disposition]", "rework")
    qa2.select_option("select[name=rework_step]", earlier[-1])
    qa2.fill("textarea[name=comment]", "Re-run the previous step")
    shot(qa2, "qa-6-second-engineer-rework")
    submit(qa2, qa2.locator(RELEASE_BUTTON).click)
    with app.app_context(), session_scope(app) as sess:
        hold = sess.get(Hold, hold_id)
        assert (hold.status, hold.released_by, hold.disposition, hold.rework_step) == (
            "released", "qa2", "rework", earlier[-1])
        after = sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()
        assert (after.step_code, after.state, after.open_holds) == (earlier[-1], "queued", 0)


def test_mass_hold_by_a_tool_window_typed_in_plant_time(live, open_as):
    app = live["app"]
    zone = ZoneInfo(app.config["PLANT_TIMEZONE"])
    with app.app_context(), session_scope(app) as sess:
        # A finished run started in the UTC evening: its plant date is the next day.
        run = next(run for run in sess.scalars(
            select(StepRun).join(Lot, Lot.id == StepRun.lot_id)
            .where(StepRun.finished_at.is_not(None), StepRun.equipment_id.is_not(None),
                   Lot.state.in_(("queued", "completed")), Lot.open_holds == 0)
            .order_by(StepRun.id.desc()))
            if run.started_at.astimezone(UTC).date()
            != run.started_at.astimezone(zone).date())
        tool, lot_no = run.equipment.code, run.lot.lot_no
        since = run.started_at - timedelta(minutes=1)
        until = run.started_at + timedelta(minutes=1)
    qa = open_as("qa", PASSWORDS["qa"])
    qa.goto(f"{live['url']}/holds/mass")
    qa.select_option("select[name=kind]", "equipment")
    qa.fill("input[name=value]", tool)
    qa.fill("input[name=since]", since.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    qa.fill("input[name=until]", until.astimezone(zone).strftime("%Y-%m-%dT%H:%M"))
    qa.select_option("select[name=reason]", "HOLD-ENG")
    qa.fill("textarea[name=comment]", "Tool alarm during the night shift")
    submit(qa, qa.get_by_role("button", name="Preview").click)
    shot(qa, "qa-7-mass-hold-window-preview")
    row = qa.locator(f"tr[data-lot='{lot_no}']")
    assert row.count() == 1 and row.get_attribute("data-action") == "to_hold"
    assert "plant time" in qa.locator(".window").inner_text()
    to_hold = int(qa.locator("[data-count=to_hold]").inner_text())
    submit(qa, qa.locator("button[name=confirm]").click)
    with app.app_context(), session_scope(app) as sess:
        holds = list(sess.scalars(select(Hold).where(Hold.source == "mass",
                                                     Hold.comment.like("Tool alarm%"))))
        assert len(holds) == to_hold
        assert lot_no in {h.lot.lot_no for h in holds}
        stored = holds[0].data["match"]
        assert stored["equipment"] == tool
        assert stored["since"] == since.astimezone(UTC).replace(
            second=0, microsecond=0).isoformat()
