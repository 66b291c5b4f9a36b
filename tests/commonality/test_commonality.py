"""The commonality service: factors, counts, lifts and their ranking."""

from __future__ import annotations

import pytest

from mes.commonality.services import commonality
from mes.errors import InvalidInput
from tests.helpers import refused


def _by(result, kind, value):
    return next(f for f in result.factors if f.kind == kind and f.value == value)


def test_shared_mold_compound_ranks_first(session, history):
    result = commonality(session, history["complained"])
    assert result.lots == ["H-03", "H-08", "H-13"]
    assert result.complained == 3 and result.base == 20
    first = result.factors[0]
    assert (first.kind, first.value) == ("material_lot", "MC-A")
    assert (first.complained_lots, first.base_lots) == (3, 4)
    assert first.lift == pytest.approx((3 / 3) / (4 / 20), abs=1e-3)
    # The three ran WB on WB-1, as half of all lots did (6 of the 20 within the window).
    wb1 = _by(result, "equipment", "WB-1")
    assert wb1.step == "WB" and (wb1.complained_lots, wb1.base_lots) == (3, 6)
    assert wb1.lift == pytest.approx(20 / 6, abs=1e-3)
    assert result.factors[1] == wb1
    # Every lot ran SAW-1: within the window (4 to 14 March), lots 03 to 13.
    saw = _by(result, "equipment", "SAW-1")
    assert (saw.complained_lots, saw.base_lots) == (3, 11)
    # Each fab lot is one complained lot's: listed after every shared factor.
    fab = _by(result, "fab_lot", "FAB-03")
    assert not fab.ranked and fab.complained_lots == 1 and fab.base_lots == 1
    assert all(f.ranked for f in result.factors[:result.factors.index(fab)])
    assert _by(result, "wafer", "FAB-08/W01").complained_lots == 1
    assert _by(result, "date_code", "2610").lift == pytest.approx(1.0)
    assert _by(result, "route_version", "QFN/1").base_lots == 20


def test_equipment_window_counts_only_runs_inside_it(session, history):
    lots = history["lots"]
    result = commonality(session, [lots["H-08"].id, lots["H-11"].id])
    wb1 = _by(result, "equipment", "WB-1")
    # 08, 10 and 11 ran WB-1 between 9 and 12 March (days 8 to 11 of the history).
    assert (wb1.window["since"].day, wb1.window["until"].day) == (9, 12)
    assert (wb1.complained_lots, wb1.base_lots) == (2, 3)


def test_base_period_is_the_shipments_widened(session, history):
    lots = history["lots"]
    result = commonality(session, [lots["H-10"].id], days=2)
    # Shipped 11 March; the base is what shipped 9..13 March: lots 08..12.
    assert result.base == 5
    assert (result.since.day, result.until.day) == (9, 13)


def test_no_lot_is_refused(session, history):
    refused(session, lambda: commonality(session, []), InvalidInput, "invalid")


def test_chance_is_the_hypergeometric_tail():
    from math import comb

    from mes.commonality.services import chance

    assert chance(20, 4, 3, 3) == pytest.approx(comb(4, 3) / comb(20, 3))
    assert chance(20, 2, 3, 2) == pytest.approx(comb(2, 2) * comb(18, 1) / comb(20, 3))
    assert chance(20, 20, 3, 3) == pytest.approx(1.0)
    assert chance(20, 6, 3, 1) == pytest.approx(1 - comb(14, 3) / comb(20, 3))


def test_a_higher_lift_on_fewer_lots_ranks_after(session, history):
    """Two of the three complained lots also consumed an epoxy lot no other lot did: lift
    6.67 against MC-A's 5, but two lots of three are more likely by chance."""
    from sqlalchemy import select

    from mes.catalog.models import MaterialLot
    from mes.floor.models import MaterialUse, StepRun

    epoxy = session.scalar(select(MaterialLot.id).where(MaterialLot.code == "EPX-1"))
    for no in ("H-03", "H-08"):
        lot = history["lots"][no]
        run = session.scalar(select(StepRun).where(StepRun.lot_id == lot.id,
                                                   StepRun.step_code == "WB"))
        session.add(MaterialUse(run_id=run.id, lot_id=lot.id, material_lot_id=epoxy,
                                step_code="WB", at=run.started_at))
    session.commit()
    result = commonality(session, history["complained"])
    mc, epx = _by(result, "material_lot", "MC-A"), _by(result, "material_lot", "EPX-1")
    assert (epx.complained_lots, epx.base_lots) == (2, 2) and epx.lift > mc.lift
    assert epx.p_value > mc.p_value
    assert result.factors[0] == mc
    assert result.factors.index(mc) < result.factors.index(epx)
