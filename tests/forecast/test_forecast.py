"""Lot forecasts from a known history: P50/P90 times, the expected quantity, lots waiting
long at a step, held lots, banked lots, the defaults without history, and the incremental
refresh (a move makes a forecast stale; the worker's call recomputes only those)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from mes.db import utcnow
from mes.floor.models import Lot
from mes.forecast import services
from mes.forecast.models import ForecastDistribution, LotForecast
from mes.quality.services import holds as holding
from mes.quality.services import release as releasing
from tests.floor.helpers import advance
from tests.forecast.helpers import hold_history, step_history

MINUTE = timedelta(minutes=1)


@pytest.fixture
def history(session, tested):
    """A completed lot of March 2026 whose runs hold the known history."""
    host = tested("L-HOST", 100, 100)
    now = utcnow()
    step_history(session, host, now, good={"WB": 0.9})
    return host


def _row(session, lot) -> LotForecast:
    session.expire_all()
    return session.get(LotForecast, lot.id)


def _near(at, expected) -> bool:
    return abs(at - expected) < MINUTE


def test_a_new_lot_is_forecast_from_its_steps_durations_and_yields(session, history, receive):
    lot = receive(1000, lot_no="L-NEW")
    now = utcnow()
    assert services.refresh_stale_forecasts(session, now) == 1
    row = _row(session, lot)
    # 2 + 3 + 5 + 1 hours; the wire bond's 90 % yield.
    assert _near(row.p50_at, now + timedelta(hours=11))
    assert _near(row.p90_at, now + timedelta(hours=11))
    assert row.expected_quantity == 900
    assert row.remaining_steps == 4 and row.on_hold is False
    assert row.lot_version == lot.version


def test_a_lot_queued_for_days_is_not_due_now(session, history, receive):
    lot = receive(1000, lot_no="L-OLD")
    now = utcnow()
    session.execute(update(Lot).where(Lot.id == lot.id).values(
        arrived_at=now - timedelta(days=3)))
    session.commit()
    services.refresh_stale_forecasts(session, now)
    row = _row(session, lot)
    # Three days at a 2-hour step: one more typical saw, then the other 9 hours.
    assert _near(row.p50_at, now + timedelta(hours=11))
    assert row.p50_at > now


def test_a_held_lot_waits_out_the_rest_of_a_hold_of_its_reason(session, history, receive):
    hold_history(session, history, utcnow(), [24.0])
    services.refresh_distributions(session)
    lot = receive(1000, lot_no="L-HELD")
    hold = holding.hold_lot(session, "qa", lot, reason="H-ENG", comment="look")
    session.commit()
    row = _row(session, lot)  # recomputed by the hold itself, not by a refresh
    assert row is not None and row.on_hold is True and row.lot_version == lot.version
    assert _near(row.p50_at, row.computed_at + timedelta(hours=24 + 11))
    releasing.release_hold(session, "qa2", hold, {"disposition": "release", "comment": "ok"})
    session.commit()
    row = _row(session, lot)
    assert row.on_hold is False
    assert _near(row.p50_at, row.computed_at + timedelta(hours=11))


def test_a_hold_is_conditioned_on_its_age(session, history, receive):
    hold_history(session, history, utcnow(), [24.0, 48.0, 72.0], runs=12)
    lot = receive(1000, lot_no="L-AGED")
    hold = holding.hold_lot(session, "qa", lot, reason="H-ENG", comment="look")
    session.commit()
    now = hold.placed_at + timedelta(hours=30)
    session.execute(update(Lot).where(Lot.id == lot.id).values(arrived_at=now))
    session.commit()
    services.refresh_distributions(session, now)
    services.refresh_stale_forecasts(session, now)
    row = _row(session, lot)
    # 18 or 42 hours of hold left (equally likely), then 11 hours of route.
    assert _near(row.p50_at, now + timedelta(hours=18 + 11))
    assert _near(row.p90_at, now + timedelta(hours=42 + 11))


def test_a_move_makes_the_forecast_stale_and_the_refresh_recomputes_only_it(
        session, history, receive):
    lot = receive(1000, lot_no="L-MOVE")
    other = receive(500, lot_no="L-STILL")
    services.refresh_stale_forecasts(session)
    session.commit()
    assert services.refresh_stale_forecasts(session) == 0
    before = _row(session, lot)
    old_version = before.lot_version
    advance(session, lot, 1)
    # The move itself does not touch the forecast: it is stale by the lot's version.
    assert _row(session, lot).lot_version == old_version != lot.version
    now = utcnow()
    assert services.refresh_stale_forecasts(session, now) == 1
    row = _row(session, lot)
    assert row.lot_version == lot.version and row.remaining_steps == 3
    assert _near(row.p50_at, now + timedelta(hours=9))
    assert _row(session, other).lot_version == other.version


def test_an_old_forecast_is_recomputed(session, history, receive, app):
    lot = receive(1000, lot_no="L-AGE")
    services.refresh_stale_forecasts(session)
    later = utcnow() + timedelta(minutes=app.config["FORECAST_MAX_AGE_MINUTES"] + 1)
    with app.app_context():
        assert services.refresh_stale_forecasts(session, later) == 1
    assert _row(session, lot).computed_at == later


def test_a_lot_out_of_wip_loses_its_forecast(session, history, receive):
    lot = receive(1000, lot_no="L-DONE")
    services.refresh_stale_forecasts(session)
    advance(session, lot, 4)
    services.refresh_stale_forecasts(session)
    assert _row(session, lot) is None


def test_a_banked_lot_is_forecast_from_its_planned_start_only(session, history, receive):
    planned = receive(1000, lot_no="L-BANK")
    unplanned = receive(1000, lot_no="L-BANK2")
    now = utcnow()
    start = now + timedelta(days=2)
    session.execute(update(Lot).where(Lot.id == planned.id).values(
        state="banked", planned_start=start))
    session.execute(update(Lot).where(Lot.id == unplanned.id).values(state="banked"))
    session.commit()
    services.refresh_stale_forecasts(session, now)
    row = _row(session, planned)
    assert _near(row.p50_at, start + timedelta(hours=11))
    none = _row(session, unplanned)
    assert none.p50_at is None and none.p90_at is None and none.expected_quantity is None


def test_steps_without_history_take_the_configured_default(session, receive, app):
    lot = receive(1000, lot_no="L-NOHIST")
    now = utcnow()
    services.refresh_stale_forecasts(session, now)
    hours = app.config["FORECAST_DEFAULT_STEP_HOURS"] * 4
    assert _near(_row(session, lot).p50_at, now + timedelta(hours=hours))
    sources = set(session.scalars(select(ForecastDistribution.source).where(
        ForecastDistribution.kind == "step")))
    assert sources == {"default"}


def test_too_few_runs_of_a_route_step_borrow_the_step_on_every_route(session, history):
    # Nine runs of a 7-hour WB on another route: too few on their own.
    from mes.catalog import services as cat
    cat.create_route(session, "eng", {"code": "SOIC", "name": "SOIC", "steps": [
        {"code": "WB", "name": "Wire bond", "kind": "assembly",
         "equipment_kind": "wire_bonder", "min_yield": None, "materials": []}]})
    session.commit()
    services.refresh_distributions(session)
    row = session.get(ForecastDistribution, ("step", "SOIC/WB"))
    assert row.source == "pooled" and row.points == [3.0] * 10
    assert session.get(ForecastDistribution, ("step", "QFN/WB")).source == "own"


def test_recompute_all_writes_every_open_lot(session, history, receive):
    for i in range(3):
        receive(100, lot_no=f"L-ALL{i}")
    assert services.recompute_all(session) == 3
    assert session.scalar(select(func.count()).select_from(LotForecast)) == 3


def test_the_worker_refreshes_stale_forecasts_as_a_periodic_job(session, history, receive):
    from mes.events.jobs import PERIODIC_JOBS

    lot = receive(1000, lot_no="L-JOB")
    assert PERIODIC_JOBS["forecasts"].run(session) == 1
    assert _row(session, lot).lot_version == lot.version


def test_mes_forecast_recompute_recomputes_every_open_lot(app, connection, session, history,
                                                          receive):
    receive(1000, lot_no="L-CLI1")
    receive(1000, lot_no="L-CLI2")
    result = app.test_cli_runner().invoke(args=["forecast", "recompute"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 forecast(s) recomputed")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(LotForecast)) == 2
