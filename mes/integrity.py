"""`mes check`: invariants over the whole database, read-only.

Each check reads what the database holds (plain rows, never ORM objects a session may
remember) and reports every problem it finds as one readable line naming the lot (or the
record) and what is wrong:

- quantities: every lot's history, replayed in order, accounts for its quantity — the
  receipt (or the split that created it) sets it, a track-out keeps good + rejects =
  what went in, a split hands units to its children, a merge takes units from the merged
  lots, a scrap takes away what it says; step runs and their reject rows agree; the
  genealogy edges carry the quantities the events name; the lot row ends with what the
  history leaves; the closed-lot totals the WIP board reads are the closed lots' counts;
  and over the whole plant, units received = units in lots + rejected +
  scrapped;
- holds: between a hold's `hold` event and its `release` event no event happens that a
  hold forbids (track-in, split, merge, ship); the open holds the history leaves are the
  open hold rows, and the lot row's count of open holds agrees;
- shipping: every `ship` event comes after the lot completed; shipped lots and shipment
  rows agree;
- genealogy: no lot descends from itself (a recursive query over the edges);
- customer: a lot still in the plant (queued, running, completed) belongs to its product's
  customer when the product has one, as receiving and a product's change of customer
  require (the portal and a customer's API show a lot to the lot's customer);
- audit: every chain and checkpoint verifies (`mes audit verify`), and each lot row's
  chain head is its chain's last record;
- users: every user name keeps to the rule for new names (letters, digits, . _ -); a name
  made before the rule is reported with the command that deactivates it.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from mes.audit.models import AuditEvent
from mes.audit.services import verify
from mes.auth.models import User
from mes.auth.services import USERNAME
from mes.catalog.models import Customer, Product
from mes.floor.models import Lot, LotClosedTotal, LotEdge, LotEvent, LotReject, StepRun
from mes.quality.models import Hold
from mes.shipping.models import ShipmentLot
from mes.vocabulary import CLOSED_LOT_STATES, EdgeKind, EventKind, HoldStatus, LotState

# Events a hold forbids while it is open. A lot held while running may still be tracked
# out, and releasing a hold with a rework or scrap disposition acts on the held lot.
FORBIDDEN_ON_HOLD = frozenset({EventKind.TRACK_IN, EventKind.SPLIT, EventKind.MERGE,
                               EventKind.MERGED_INTO, EventKind.SHIP})
CHECKS = ("quantity", "hold", "shipping", "genealogy", "audit", "customer", "users")
# Lots that are still the plant's to hold, move and ship under their customer.
IN_PLANT = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED, LotState.BANKED)


@dataclass
class Problem:
    check: str
    message: str
    lot: str | None = None

    def line(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, check: str, message: str, lot: str | None = None) -> None:
        self.problems.append(Problem(check, message, lot))

    def lines(self, limit: int = 200) -> list[str]:
        c = self.counts
        out = [f"Checked {c.get('lots', 0)} lots, {c.get('events', 0)} history events, "
               f"{c.get('holds', 0)} holds, {c.get('edges', 0)} genealogy edges, "
               f"{c.get('shipped', 0)} shipped lots, {c.get('audit', 0)} audit records."]
        if "received" in c:
            out.append(f"Units: {c['received']} received = {c['in_lots']} in lots + "
                       f"{c['rejected']} rejected + {c['scrapped']} scrapped"
                       + ("." if c["received"] == c["in_lots"] + c["rejected"] + c["scrapped"]
                          else " does NOT hold."))
        for problem in self.problems[:limit]:
            out.append(problem.line())
        if len(self.problems) > limit:
            out.append(f"... and {len(self.problems) - limit} more.")
        out.append("All invariants hold." if self.ok else
                   f"{len(self.problems)} problem(s) found.")
        return out


@dataclass
class _LotRow:
    id: int
    lot_no: str
    quantity: int
    state: str
    open_holds: int
    run_id: int | None
    audit_seq: int
    audit_hash: str
    created_at: datetime
    in_genealogy: bool
    packed_qty: int
    shipped_qty: int


@dataclass
class _Replay:
    qty: int | None = None
    state: str | None = None
    open_holds: set[int] = field(default_factory=set)
    split_out: int = 0
    merged_in: int = 0
    split_from_qty: int | None = None
    merged_into_qty: int | None = None


def _rejects_of(data: dict[str, Any]) -> int:
    return sum(int(r.get("qty") or 0) for r in data.get("rejects") or [])


def _event_where(lot: _LotRow, ev: Any) -> str:
    return f"lot {lot.lot_no}: {ev.kind} event {ev.id} at {ev.at:%Y-%m-%d %H:%M:%S}" \
           f"{' at step ' + ev.step_code if ev.step_code else ''}"


class _Checker:
    def __init__(self, session: Session, report: Report) -> None:
        self.session = session
        self.report = report
        self.units = {"received": 0, "rejected": 0, "scrapped": 0}

    def add(self, check: str, message: str, lot: str | None = None) -> None:
        self.report.add(check, message, lot)

    # --- the lots' histories -----------------------------------------------------------

    def histories(self, lots: dict[int, _LotRow]) -> dict[int, _Replay]:
        replays: dict[int, _Replay] = {}
        stmt = (select(LotEvent.id, LotEvent.lot_id, LotEvent.kind, LotEvent.at,
                       LotEvent.step_code, LotEvent.qty_in, LotEvent.qty_out, LotEvent.data)
                .order_by(LotEvent.lot_id, LotEvent.id).execution_options(yield_per=5000))
        count = 0
        for ev in self.session.execute(stmt):
            count += 1
            lot = lots.get(ev.lot_id)
            if lot is None:  # a foreign key keeps this from happening
                self.add("quantity", f"history event {ev.id} names lot id {ev.lot_id}, which "
                         "does not exist")
                continue
            replay = replays.setdefault(ev.lot_id, _Replay())
            self._quantity(lot, replay, ev)
            self._hold(lot, replay, ev)
        self.report.counts["events"] = count
        return replays

    def _expect_in(self, lot: _LotRow, replay: _Replay, ev: Any) -> None:
        if replay.qty is None:
            self.add("quantity", f"{_event_where(lot, ev)} comes before the lot was received",
                     lot.lot_no)
        elif ev.qty_in != replay.qty:
            self.add("quantity", f"{_event_where(lot, ev)} takes {ev.qty_in} units, but the "
                     f"history before it leaves {replay.qty}", lot.lot_no)

    def _quantity(self, lot: _LotRow, replay: _Replay, ev: Any) -> None:
        kind, data = ev.kind, ev.data or {}
        where = _event_where(lot, ev)
        if kind in (EventKind.RECEIVE, EventKind.SPLIT_FROM):
            if replay.qty is not None:
                self.add("quantity", f"{where}: the lot was created twice", lot.lot_no)
            replay.qty, replay.state = ev.qty_out, (LotState.BANKED if data.get("bank")
                                                    else LotState.QUEUED)
            if kind == EventKind.RECEIVE:
                self.units["received"] += ev.qty_out or 0
            else:
                replay.split_from_qty = ev.qty_out
        elif kind == EventKind.TRACK_IN:
            self._expect_in(lot, replay, ev)
            replay.state = LotState.RUNNING
        elif kind == EventKind.TRACK_OUT:
            self._expect_in(lot, replay, ev)
            rejects = _rejects_of(data)
            if (ev.qty_out or 0) + rejects != (ev.qty_in or 0):
                self.add("quantity", f"{where}: {ev.qty_out} good + {rejects} rejected is "
                         f"not the {ev.qty_in} that went in", lot.lot_no)
            self.units["rejected"] += (ev.qty_in or 0) - (ev.qty_out or 0)
            replay.qty = ev.qty_out
            replay.state = (LotState.SCRAPPED if not ev.qty_out else LotState.COMPLETED
                            if data.get("next_step") is None else LotState.QUEUED)
        elif kind == EventKind.SPLIT:
            self._expect_in(lot, replay, ev)
            children = sum(int(c.get("qty") or 0) for c in data.get("children") or [])
            if (ev.qty_out or 0) + children != (ev.qty_in or 0):
                self.add("quantity", f"{where}: keeps {ev.qty_out} and hands {children} to "
                         f"its children, but held {ev.qty_in}", lot.lot_no)
            replay.split_out += (ev.qty_in or 0) - (ev.qty_out or 0)
            replay.qty = ev.qty_out
        elif kind == EventKind.MERGE:
            self._expect_in(lot, replay, ev)
            replay.merged_in += (ev.qty_out or 0) - (ev.qty_in or 0)
            replay.qty = ev.qty_out
        elif kind == EventKind.MERGED_INTO:
            self._expect_in(lot, replay, ev)
            if ev.qty_out != 0:
                self.add("quantity", f"{where}: a merged lot must end with 0 units, not "
                         f"{ev.qty_out}", lot.lot_no)
            replay.merged_into_qty = ev.qty_in
            replay.qty, replay.state = ev.qty_out, LotState.MERGED
        elif kind == EventKind.SCRAP:
            self._expect_in(lot, replay, ev)
            scrapped = int(data.get("qty") or 0)
            if (ev.qty_in or 0) - scrapped != ev.qty_out:
                self.add("quantity", f"{where}: scraps {scrapped} of {ev.qty_in} units but "
                         f"leaves {ev.qty_out}", lot.lot_no)
            self.units["scrapped"] += (ev.qty_in or 0) - (ev.qty_out or 0)
            replay.qty = ev.qty_out
            if not ev.qty_out:
                replay.state = LotState.SCRAPPED
        elif kind in (EventKind.REWORK, EventKind.BANK_RELEASE):
            replay.state = LotState.QUEUED
        elif kind == EventKind.SHIP:
            if replay.state != LotState.COMPLETED:
                self.add("shipping", f"{where}: shipped while {replay.state or 'not received'}"
                         ", not completed", lot.lot_no)
            # A packed lot ships carrier by carrier: its event names the carriers and how
            # many stay in the plant; it is shipped when none does.
            if ("quantity" in data and "pack_units" not in data
                    and data["quantity"] != replay.qty):
                self.add("quantity", f"{where}: ships {data['quantity']} units, but the "
                         f"history leaves {replay.qty}", lot.lot_no)
            if not data.get("carriers_left"):
                replay.state = LotState.SHIPPED

    def _hold(self, lot: _LotRow, replay: _Replay, ev: Any) -> None:
        data = ev.data or {}
        if ev.kind in FORBIDDEN_ON_HOLD and replay.open_holds:
            holds = ", ".join(str(h) for h in sorted(replay.open_holds))
            self.add("hold", f"{_event_where(lot, ev)} happened while hold {holds} was open",
                     lot.lot_no)
        if ev.kind == EventKind.HOLD and data.get("hold") is not None:
            replay.open_holds.add(int(data["hold"]))
        elif ev.kind == EventKind.RELEASE and data.get("hold") is not None:
            hold_id = int(data["hold"])
            if hold_id not in replay.open_holds:
                self.add("hold", f"{_event_where(lot, ev)} releases hold {hold_id}, which was "
                         "not open on the lot", lot.lot_no)
            replay.open_holds.discard(hold_id)

    def lot_ends(self, lots: dict[int, _LotRow], replays: dict[int, _Replay]) -> None:
        open_rows: dict[int, set[int]] = defaultdict(set)
        holds = 0
        for hold_id, lot_id, status in self.session.execute(
                select(Hold.id, Hold.lot_id, Hold.status)):
            holds += 1
            if status == HoldStatus.OPEN:
                open_rows[lot_id].add(hold_id)
        self.report.counts["holds"] = holds
        in_lots = 0
        for lot in lots.values():
            in_lots += lot.quantity
            replay = replays.get(lot.id) or _Replay()
            if replay.qty is None:
                self.add("quantity", f"lot {lot.lot_no}: its history has no receipt or split "
                         "that created it", lot.lot_no)
            elif replay.qty != lot.quantity:
                self.add("quantity", f"lot {lot.lot_no}: holds {lot.quantity} units, but its "
                         f"history leaves {replay.qty}", lot.lot_no)
            rows = open_rows.get(lot.id, set())
            if replay.open_holds != rows:
                self.add("hold", f"lot {lot.lot_no}: open holds by its history "
                         f"{sorted(replay.open_holds)}, by the hold records {sorted(rows)}",
                         lot.lot_no)
            if lot.open_holds != len(rows):
                self.add("hold", f"lot {lot.lot_no}: counts {lot.open_holds} open hold(s), "
                         f"but {len(rows)} hold record(s) are open", lot.lot_no)
            if (lot.state == LotState.SHIPPED) != (replay.state == LotState.SHIPPED):
                self.add("shipping", f"lot {lot.lot_no}: is {lot.state}, but its history "
                         f"says {replay.state}", lot.lot_no)
        self.units["in_lots"] = in_lots
        self.report.counts.update(self.units)
        total = in_lots + self.units["rejected"] + self.units["scrapped"]
        if total != self.units["received"]:
            self.add("quantity", f"the plant received {self.units['received']} units, but "
                     f"{in_lots} are in lots, {self.units['rejected']} rejected and "
                     f"{self.units['scrapped']} scrapped ({total})")

    # --- step runs, genealogy quantities, shipments -------------------------------------

    def step_runs(self, lots: dict[int, _LotRow]) -> None:
        rejects = dict(self.session.execute(
            select(LotReject.run_id, func.sum(LotReject.qty)).group_by(LotReject.run_id)).all())
        stmt = select(StepRun.id, StepRun.lot_id, StepRun.step_code, StepRun.qty_in,
                      StepRun.good_qty, StepRun.reject_qty, StepRun.finished_at) \
            .execution_options(yield_per=5000)
        for run in self.session.execute(stmt):
            lot = lots[run.lot_id]
            where = f"lot {lot.lot_no}: step run {run.id} at {run.step_code}"
            if run.finished_at is None:
                if lot.run_id != run.id:
                    self.add("quantity", f"{where} was never finished, but the lot is not "
                             "running it", lot.lot_no)
                continue
            if (run.good_qty or 0) + (run.reject_qty or 0) != run.qty_in:
                self.add("quantity", f"{where}: {run.good_qty} good + {run.reject_qty} "
                         f"rejected is not the {run.qty_in} that went in", lot.lot_no)
            if int(rejects.get(run.id) or 0) != (run.reject_qty or 0):
                self.add("quantity", f"{where}: counts {run.reject_qty} rejects, but its "
                         f"reject records add up to {int(rejects.get(run.id) or 0)}",
                         lot.lot_no)

    def edges(self, lots: dict[int, _LotRow], replays: dict[int, _Replay]) -> None:
        split_out: dict[int, int] = defaultdict(int)
        merged_in: dict[int, int] = defaultdict(int)
        count = 0
        for parent_id, child_id, kind, qty in self.session.execute(
                select(LotEdge.parent_id, LotEdge.child_id, LotEdge.kind, LotEdge.qty)):
            count += 1
            parent, child = lots[parent_id], lots[child_id]
            if kind == EdgeKind.SPLIT:
                split_out[parent_id] += qty
                got = replays.get(child_id, _Replay()).split_from_qty
                if got != qty:
                    self.add("quantity", f"lot {child.lot_no}: split from {parent.lot_no} with "
                             f"{qty} units by the genealogy, {got} by its history",
                             child.lot_no)
            elif kind == EdgeKind.MERGE:
                merged_in[child_id] += qty
                gave = replays.get(parent_id, _Replay()).merged_into_qty
                if gave != qty:
                    self.add("quantity", f"lot {parent.lot_no}: merged into {child.lot_no} "
                             f"with {qty} units by the genealogy, {gave} by its history",
                             parent.lot_no)
        self.report.counts["edges"] = count
        for lot_id, replay in replays.items():
            lot = lots[lot_id]
            if replay.split_out != split_out.get(lot_id, 0):
                self.add("quantity", f"lot {lot.lot_no}: its splits handed out "
                         f"{replay.split_out} units, its child lots received "
                         f"{split_out.get(lot_id, 0)}", lot.lot_no)
            if replay.merged_in != merged_in.get(lot_id, 0):
                self.add("quantity", f"lot {lot.lot_no}: its merges took in "
                         f"{replay.merged_in} units, the merged lots gave "
                         f"{merged_in.get(lot_id, 0)}", lot.lot_no)

    def shipments(self, lots: dict[int, _LotRow]) -> None:
        count = 0
        shipped: dict[int, int] = {}
        for lot_id, qty in self.session.execute(
                select(ShipmentLot.lot_id, ShipmentLot.quantity)):
            count += 1
            shipped[lot_id] = shipped.get(lot_id, 0) + qty
        for lot_id, qty in shipped.items():
            lot = lots[lot_id]
            # A packed lot may have left in part (some reels) and still be completed.
            partly = lot.state == LotState.COMPLETED and 0 < qty < lot.packed_qty
            if lot.state != LotState.SHIPPED and not partly:
                self.add("shipping", f"lot {lot.lot_no}: is on a shipment but {lot.state}",
                         lot.lot_no)
            elif qty != lot.shipped_qty:
                self.add("shipping", f"lot {lot.lot_no}: shipments carried {qty} units but "
                         f"it counts {lot.shipped_qty} shipped", lot.lot_no)
            elif lot.state == LotState.SHIPPED and qty != (lot.packed_qty or lot.quantity):
                self.add("shipping", f"lot {lot.lot_no}: shipped {qty} units but holds "
                         f"{lot.packed_qty or lot.quantity}", lot.lot_no)
        self.report.counts["shipped"] = count

    # --- genealogy ----------------------------------------------------------------------

    def closed_totals(self) -> None:
        """The totals of closed lots the WIP board reads (kept by triggers) are the lots'."""
        t = LotClosedTotal
        kept = _closed_groups(self.session, select(
            t.state, t.step_code, t.product_id, t.customer_id, t.held, t.lots, t.quantity))
        held = Lot.open_holds > 0
        counted = _closed_groups(self.session, select(
            Lot.state, Lot.step_code, Lot.product_id, Lot.customer_id, held, func.count(),
            func.sum(Lot.quantity)).where(Lot.state.in_(CLOSED_LOT_STATES)).group_by(
            Lot.state, Lot.step_code, Lot.product_id, Lot.customer_id, held))
        for key in sorted(set(kept) | set(counted), key=str):
            if kept.get(key, (0, 0)) != counted.get(key, (0, 0)):
                state, step, product_id, customer_id, on_hold = key
                self.add("quantity", f"closed-lot totals: {state} lots at step {step} of "
                         f"product {product_id}, customer {customer_id}"
                         f"{', on hold' if on_hold else ''}: kept "
                         f"{kept.get(key, (0, 0))} (lots, units), counted "
                         f"{counted.get(key, (0, 0))}")

    def genealogy(self, lots: dict[int, _LotRow]) -> None:
        # A split child merged back into its parent makes a loop of lot ids, and rightly so:
        # the units went out and came back later. A cycle is units arriving in a lot no later
        # than they left it: walking the edges forward in time (each edge no earlier than
        # the one before), a walk must never return to the lot it started from at the very
        # moment it left. UNION drops repeated rows, so the walk ends even on a cycle; it
        # stops where it returns to its start.
        rows = self.session.execute(text(
            "WITH RECURSIVE walk(start, start_at, node, at) AS ("
            " SELECT parent_id, at, child_id, at FROM lot_edge"
            " UNION"
            " SELECT walk.start, walk.start_at, lot_edge.child_id, lot_edge.at FROM walk"
            " JOIN lot_edge ON lot_edge.parent_id = walk.node AND lot_edge.at >= walk.at"
            " WHERE walk.node <> walk.start)"
            " SELECT DISTINCT start FROM walk WHERE node = start AND at <= start_at"
            " ORDER BY start")).scalars()
        for lot_id in rows:
            name = lots[lot_id].lot_no if lot_id in lots else f"id {lot_id}"
            self.add("genealogy", f"lot {name}: descends from itself (a cycle in the "
                     "genealogy)", name)
        # No edge may name a lot before the lot existed, and a lot with edges is marked
        # (traces skip the genealogy query for unmarked lots).
        unmarked: set[int] = set()
        for edge in self.session.execute(select(LotEdge.id, LotEdge.parent_id,
                                                LotEdge.child_id, LotEdge.kind, LotEdge.at)):
            for lot_id, role in ((edge.parent_id, "parent"), (edge.child_id, "child")):
                lot = lots[lot_id]
                if edge.at < lot.created_at:
                    self.add("genealogy", f"lot {lot.lot_no}: is the {role} of {edge.kind} "
                             f"edge {edge.id} at {edge.at:%Y-%m-%d %H:%M:%S}, before the lot "
                             f"was created ({lot.created_at:%Y-%m-%d %H:%M:%S})", lot.lot_no)
                if not lot.in_genealogy and lot_id not in unmarked:
                    unmarked.add(lot_id)
                    self.add("genealogy", f"lot {lot.lot_no}: has genealogy edges but is not "
                             "marked as in a genealogy (its traces would leave them out)",
                             lot.lot_no)

    # --- customers ----------------------------------------------------------------------

    def customers(self) -> None:
        lot_customer, product_customer = aliased(Customer), aliased(Customer)
        stmt = (select(Lot.lot_no, Lot.state, Product.code, lot_customer.code,
                       product_customer.code)
                .join(Product, Product.id == Lot.product_id)
                .join(lot_customer, lot_customer.id == Lot.customer_id)
                .join(product_customer, product_customer.id == Product.customer_id)
                .where(Lot.customer_id != Product.customer_id, Lot.state.in_(IN_PLANT))
                .order_by(Lot.id))
        for lot_no, state, product, lot_code, product_code in self.session.execute(stmt):
            self.add("customer", f"lot {lot_no}: {state} for customer {lot_code}, but its "
                     f"product {product} is made for {product_code}", lot_no)

    # --- audit --------------------------------------------------------------------------

    def audit(self, lots: dict[int, _LotRow]) -> None:
        result = verify(self.session)
        self.report.counts["audit"] = result.events
        if not result.ok:
            self.add("audit", f"audit trail broken: {result.problem}")
        last = (select(AuditEvent.subject_key, func.max(AuditEvent.seq).label("seq"))
                .where(AuditEvent.subject_type == "lot").group_by(AuditEvent.subject_key)
                .subquery())
        heads = {key: (seq, digest) for key, seq, digest in self.session.execute(
            select(AuditEvent.subject_key, AuditEvent.seq, AuditEvent.hash).join(
                last, (AuditEvent.subject_key == last.c.subject_key)
                & (AuditEvent.seq == last.c.seq)).where(AuditEvent.subject_type == "lot"))}
        for lot in lots.values():
            head = heads.get(lot.lot_no, (0, None))
            if lot.audit_seq != head[0] or (head[1] is not None and lot.audit_hash != head[1]):
                self.add("audit", f"lot {lot.lot_no}: its row names audit record "
                         f"#{lot.audit_seq} as its chain's last, the chain ends at #{head[0]}",
                         lot.lot_no)

    # --- users --------------------------------------------------------------------------

    def users(self) -> None:
        for uid, name, active in self.session.execute(
                select(User.id, User.username, User.active).order_by(User.id)):
            if not USERNAME.fullmatch(name):
                self.add("users", f"user #{uid} {ascii(name)}: name outside letters, digits "
                         "and . _ - (made before the rule; it keeps working)" +
                         (f"; to deactivate it: mes users deactivate {shell_word(name)}"
                          if active else ""))


def shell_word(text: str) -> str:
    """`text` as one shell word a person can type: quoted, and in bash's $'...' with
    \\u escapes when it holds anything but printable ASCII."""
    if text.isascii() and text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in "'\\"
        else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
        for ch in text) + "'"


def _closed_groups(session: Session, stmt: Any) -> dict[tuple[Any, ...], tuple[int, int]]:
    return {(r[0], r[1], r[2], r[3], bool(r[4])): (int(r[5]), int(r[6]))
            for r in session.execute(stmt) if r[5]}


def _lots(session: Session) -> dict[int, _LotRow]:
    stmt = select(Lot.id, Lot.lot_no, Lot.quantity, Lot.state, Lot.open_holds, Lot.run_id,
                  Lot.audit_seq, Lot.audit_hash, Lot.created_at, Lot.in_genealogy,
                  Lot.packed_qty, Lot.shipped_qty) \
        .execution_options(yield_per=5000)
    return {row.id: _LotRow(**row._asdict()) for row in session.execute(stmt)}


def check(session: Session, only: Iterable[str] = CHECKS) -> Report:
    """Run the checks named in `only` (all by default) and return the report."""
    wanted = set(only)
    report = Report()
    checker = _Checker(session, report)
    lots = _lots(session)
    report.counts["lots"] = len(lots)
    if wanted & {"quantity", "hold", "shipping"}:
        replays = checker.histories(lots)
        checker.lot_ends(lots, replays)
        checker.step_runs(lots)
        checker.edges(lots, replays)
        checker.shipments(lots)
        checker.closed_totals()
    if "genealogy" in wanted:
        checker.genealogy(lots)
    if "audit" in wanted:
        checker.audit(lots)
    if "customer" in wanted:
        checker.customers()
    if "users" in wanted:
        checker.users()
    report.problems = [p for p in report.problems if p.check in wanted]
    return report
