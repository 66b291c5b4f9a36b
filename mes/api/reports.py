"""Report endpoints: the rows of mes.reports.services as JSON `{rows, from, to, ...}` or,
with `?format=csv`, as CSV. Plant roles with REPORT_READ see the plant; a customer user
sees their own lots' figures only (equipment states: 403)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, jsonify
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.reports import schemas as s
from mes.reports import services
from mes.reports.services import Report, ReportQuery
from mes.spc import read as spc_read


def _answer(name: str, args: dict[str, Any],
            compute: Callable[[Any, ReportQuery], Report]) -> Response:
    q = services.make_query(current_user, args, zone=args.get("tz") or "UTC")
    report = compute(db.session(), q)
    if args.get("format") == "csv":
        return Response(services.to_csv(report), mimetype="text/csv", headers={
            "Content-Disposition":
                f'attachment; filename="{name}_{q.start.isoformat()}_{q.end.isoformat()}.csv"'})
    return jsonify({"rows": report.rows, "from": q.start.isoformat(),
                    "to": q.end.isoformat(), **report.extra})


_CSV = ("application/json", "text/csv")


@api_route(bp, "/reports/wip", permission=Permission.REPORT_READ, query=s.WipArgs,
           response=s.WipReport, tag="reports", produces=_CSV)
def report_wip(args: dict[str, Any]) -> Response:
    """WIP now per step (or ?by=product / customer).

    Lots, quantity, on hold, running, late against their due date, the oldest arrival at
    the step and the lots by time at the step. A snapshot: from/to do not apply.
    """
    return _answer("wip", args, services.wip)


@api_route(bp, "/reports/wip/late", permission=Permission.REPORT_READ, query=s.LateArgs,
           response=s.LateReport, tag="reports", produces=_CSV)
def report_late_lots(args: dict[str, Any]) -> Response:
    """Lots in WIP past their due date, the most overdue first (at most ?limit)."""
    return _answer("late_lots", args, services.late_lots)


@api_route(bp, "/reports/yield", permission=Permission.REPORT_READ, query=s.ReportArgs,
           response=s.YieldReport, tag="reports", produces=_CSV)
def report_yield(args: dict[str, Any]) -> Response:
    """Yield per step and product over the track-outs in the range.

    At test steps also first-pass and final yield of the test runs imported in the range.
    """
    return _answer("yield", args, services.yield_report)


@api_route(bp, "/reports/yield/trend", permission=Permission.REPORT_READ, query=s.TrendArgs,
           response=s.TrendReport, tag="reports", produces=_CSV)
def report_yield_trend(args: dict[str, Any]) -> Response:
    """Yield per product and ?period (day or ISO week) over the track-outs in the range."""
    return _answer("yield_trend", args, services.yield_trend)


@api_route(bp, "/reports/yield/final-test", permission=Permission.REPORT_READ,
           query=s.TrendArgs, response=s.FinalTestTrendReport, tag="reports", produces=_CSV)
def report_final_test_yield(args: dict[str, Any]) -> Response:
    """Final-test yield per product and ?period: good / in at the last test step of each
    lot's route (with ?step, the yield at that step; `measure` says which)."""
    return _answer("final_test_yield", args, services.final_test_yield_trend)


@api_route(bp, "/reports/rejects", permission=Permission.REPORT_READ, query=s.ReportArgs,
           response=s.RejectReport, tag="reports", produces=_CSV)
def report_rejects(args: dict[str, Any]) -> Response:
    """The reject and scrap Pareto per reason code and step, largest first."""
    return _answer("rejects", args, services.rejects)


@api_route(bp, "/reports/cycle-time", permission=Permission.REPORT_READ, query=s.ReportArgs,
           response=s.CycleReport, tag="reports", produces=_CSV)
def report_cycle_time(args: dict[str, Any]) -> Response:
    """Queue and process time per step (median, 90th percentile, mean; hours)."""
    return _answer("cycle_time", args, services.cycle_time)


@api_route(bp, "/reports/cycle-time/lots", permission=Permission.REPORT_READ,
           query=s.ReportArgs, response=s.LotCycleReport, tag="reports", produces=_CSV)
def report_lot_cycle_time(args: dict[str, Any]) -> Response:
    """Cycle time of the lots that finished their route in the range, per product."""
    return _answer("lot_cycle_time", args, services.lot_cycle_time)


@api_route(bp, "/reports/holds", permission=Permission.REPORT_READ, query=s.ReportArgs,
           response=s.HoldReport, tag="reports", produces=_CSV)
def report_holds(args: dict[str, Any]) -> Response:
    """Open holds now per age bucket, reason and source."""
    return _answer("holds", args, services.holds)


@api_route(bp, "/reports/holds/dispositions", permission=Permission.REPORT_READ,
           query=s.ReportArgs, response=s.DispositionReport, tag="reports", produces=_CSV)
def report_dispositions(args: dict[str, Any]) -> Response:
    """Holds released in the range per ISO week and disposition, with the mean time to
    disposition."""
    return _answer("dispositions", args, services.dispositions)


# Equipment is master data: MASTER_READ, which customer users do not hold, keeps them out.
@api_route(bp, "/reports/equipment", permission=(Permission.REPORT_READ, Permission.MASTER_READ),
           query=s.EquipmentArgs, response=s.EquipmentReport, tag="reports", produces=_CSV)
def report_equipment(args: dict[str, Any]) -> Response:
    """Hours in each E10 state per tool (or ?by=kind), utilisation and lots processed.

    Customer users get 403: equipment states are the plant's.
    """
    return _answer("equipment", args, services.equipment)


@api_route(bp, "/reports/delivery", permission=Permission.REPORT_READ, query=s.ReportArgs,
           response=s.DeliveryReport, tag="reports", produces=_CSV)
def report_delivery(args: dict[str, Any]) -> Response:
    """Shipments per customer and ISO week, and the lots shipped on time."""
    return _answer("delivery", args, services.delivery)


@api_route(bp, "/reports/spc", permission=(Permission.REPORT_READ, Permission.SPC_READ),
           query=s.ReportArgs, response=s.SpcReport, tag="reports", produces=_CSV)
def report_spc(args: dict[str, Any]) -> Response:
    """Per data collection plan (?step narrows): Cpk and Ppk of the subgroups entered in
    the range, the out-of-control events opened in it, those open and closed, and the mean
    and median hours to close."""
    return _answer("spc", args, spc_read.capability_report)
