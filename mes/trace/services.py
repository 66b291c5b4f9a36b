"""Traceability: where a lot came from (backward) and where it went (forward), at any depth
through splits and merges; containment of everything a criterion reaches.

Each direction walks the genealogy with one recursive query (mes.floor.genealogy), and
everything else the trace shows (steps, rejects, materials, wafers, test runs, holds,
qualifications, shipments, the edges of the picture) is read set by set, keyed on the lots
the walk found (the smaller records in one UNION ALL): the number of statements is the same
for a lot with no relatives and for a tree of thousands of lots.

Customer users see their own lots only: every query of a trace made for a customer keeps
the lots of that customer (and their shipments) and nothing else.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVarTuple

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    DateTime,
    Select,
    String,
    any_,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, joinedload, selectinload

from mes import audit
from mes.audit.models import AuditEvent
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scope_customer, scoped
from mes.catalog.models import (
    Customer,
    Equipment,
    MaterialLot,
    Product,
    Qualification,
    ReasonCode,
)
from mes.db import UTCDateTime, utcnow
from mes.errors import Conflict, ErrorCode, NotFound
from mes.events import publishers
from mes.floor.genealogy import ancestors, descendants
from mes.floor.models import Lot, LotEdge, LotReject, LotWafer, MaterialUse, StepRun, Wafer
from mes.portal.visibility import customer_sees
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.shipping.models import Shipment, ShipmentLot
from mes.testfloor.models import TestRun
from mes.vocabulary import HoldSource, HoldStatus

# The audit subject of a containment run.
CONTAINMENT = "containment"


# --- the lots a walk reaches -----------------------------------------------------------

@dataclass
class LotNode:
    """A lot as a trace shows it: a node of the genealogy picture and a row of the tables."""

    id: int
    lot_no: str
    state: str
    step: str
    on_hold: bool
    open_holds: int
    fab_lot: str
    quantity: int
    customer: str
    product: str
    product_id: int
    created_at: datetime
    obj: Lot | None = None


@dataclass
class Edge:
    parent: str
    child: str
    kind: str
    qty: int
    step: str
    at: datetime


@dataclass
class Graph:
    """Lots and genealogy edges between them, the lots the trace started from, and the
    shipments that carried some of them out."""

    lots: dict[int, LotNode] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)

    def by_no(self) -> dict[str, LotNode]:
        return {node.lot_no: node for node in self.lots.values()}


def _scoped(walk: Select[Any], actor: Actor | None) -> Select[Any]:
    """The walk's lot ids; for a customer user only the lots of their customer."""
    if scope_customer(actor) is None:
        return walk
    return scoped(select(Lot.id).where(Lot.id.in_(walk)), Lot.customer_id, actor)


Member = Callable[[Any], Any]


def _keyed(session: Session, walk: Select[Any], lots: Iterable[int]) -> Member:
    """How the queries after the walk select the lots it found. PostgreSQL gets their ids
    as one array parameter: it then knows how few they are and reads each table by its lot
    index (given the walk as a subquery it guesses hundreds of rows and may scan a whole
    table). SQLite's planner probes the index for each row of the subquery either way, and
    the subquery has no limit on the number of lots."""
    if session.get_bind().dialect.name == "postgresql":
        found = literal(list(lots), ARRAY(BigInteger))
        return lambda column: column == any_(found)
    return lambda column: column.in_(walk)


_Ts = TypeVarTuple("_Ts")


def _as_seen(session: Session, lots: dict[int, LotNode], actor: Actor | None
             ) -> dict[int, LotNode]:
    """For a customer user, each lot's holds as the plant's policy lets them see them
    (mes.portal.visibility); the lots unchanged for everyone else."""
    held = [i for i, node in lots.items() if node.open_holds]
    if scope_customer(actor) is None or not held:
        return lots
    seen: dict[int, int] = dict(session.execute(
        select(Hold.lot_id, func.count()).where(Hold.lot_id.in_(held),
                                                Hold.status == HoldStatus.OPEN,
                                                customer_sees())
        .group_by(Hold.lot_id)).all())
    for i in held:
        lots[i].open_holds = int(seen.get(i, 0))
        lots[i].on_hold = lots[i].open_holds > 0
    return lots


def _lots(session: Session, ids: Select[Any], *, objects: bool = False) -> dict[int, LotNode]:
    """The walk's lots in the order they were made. With `objects`, loaded as ORM objects:
    test runs and holds then find their lot in the session instead of loading it one by
    one (the session keeps objects weakly, the nodes keep them alive); else as plain rows,
    which cost less."""
    def walked(stmt: Select[*_Ts]) -> Select[*_Ts]:
        return (stmt.join(Customer, Customer.id == Lot.customer_id)
                .join(Product, Product.id == Lot.product_id)
                .where(Lot.id.in_(ids)).order_by(Lot.created_at, Lot.id))

    if not objects:
        rows = session.execute(walked(select(
            Lot.id, Customer.code, Product.code, Lot.lot_no, Lot.state, Lot.step_code,
            Lot.open_holds, Lot.fab_lot, Lot.quantity, Lot.product_id, Lot.created_at)))
        return {lot_id: LotNode(id=lot_id, lot_no=lot_no, state=state, step=step,
                                on_hold=open_holds > 0, open_holds=open_holds, fab_lot=fab_lot,
                                quantity=quantity, customer=customer, product=product,
                                product_id=product_id, created_at=created_at)
                for (lot_id, customer, product, lot_no, state, step, open_holds, fab_lot,
                     quantity, product_id, created_at) in rows}
    objs = session.execute(walked(select(Lot, Customer.code, Product.code)))
    return {lot.id: LotNode(id=lot.id, lot_no=lot.lot_no, state=lot.state, step=lot.step_code,
                            on_hold=lot.open_holds > 0, open_holds=lot.open_holds,
                            fab_lot=lot.fab_lot, quantity=lot.quantity, customer=customer,
                            product=product, product_id=lot.product_id,
                            created_at=lot.created_at, obj=lot)
            for lot, customer, product in objs}


# The records read after the walk come in one UNION ALL of parts with the same columns:
# kind, lot id, two numbers, three texts, a time. One round trip instead of one per kind.
_NO_INT = cast(null(), BigInteger)
_NO_TEXT = cast(null(), String)


def _part(kind: str, lot: Any, *, n1: Any = _NO_INT, n2: Any = _NO_INT, a: Any = _NO_TEXT,
          b: Any = _NO_TEXT, c: Any = _NO_TEXT, t: Any = None, d: Any = _NO_TEXT
          ) -> Select[Any]:
    # Typed so that the times read back as aware UTC times on every database.
    no_time = type_coerce(cast(null(), DateTime(timezone=True)), UTCDateTime())
    return select(literal_column(f"'{kind}'", String).label("kind"), lot, n1, n2, a, b, c,
                  no_time if t is None else t, d)


def _edge_part(member: Member) -> Select[Any]:
    """Genealogy edges between lots of the walk (both ends inside it). First in a union:
    its columns carry the types the union's rows are read with."""
    return _part("edge", LotEdge.child_id, n1=LotEdge.parent_id, n2=LotEdge.qty,
                 a=LotEdge.kind, b=LotEdge.step_code, t=LotEdge.at) \
        .where(member(LotEdge.child_id), member(LotEdge.parent_id))


def _shipment_part(member: Member, actor: Actor | None) -> Select[Any]:
    """The shipments that carried lots of the walk (a customer user's own only)."""
    stmt = (_part("shipment", ShipmentLot.lot_id, n1=Shipment.id, n2=ShipmentLot.quantity,
                  a=Customer.code, b=Customer.name, c=Shipment.po, t=Shipment.shipped_at,
                  d=Shipment.vehicle_program)
            .select_from(ShipmentLot)
            .join(Shipment, Shipment.id == ShipmentLot.shipment_id)
            .join(Customer, Customer.id == Shipment.customer_id)
            .where(member(ShipmentLot.lot_id)))
    return scoped(stmt, Shipment.customer_id, actor)


def _records(session: Session, *parts: Select[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(union_all(*parts)):
        found[row[0]].append(row)
    return found


def _edges(rows: list[Any], lots: dict[int, LotNode]) -> list[Edge]:
    return [Edge(lots[row[2]].lot_no, lots[row[1]].lot_no, row[4], row[3], row[5], row[7])
            for row in sorted(rows, key=lambda r: (r[7], r[2], r[1]))
            if row[1] in lots and row[2] in lots]


def _shipments(rows: list[Any], lot_no: Callable[[int], str]) -> list[dict[str, Any]]:
    """The shipments, oldest first, each with the lots of the trace it carried."""
    found: dict[int, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r[7], r[2], lot_no(r[1]))):
        _kind, lot_id, sid, qty, code, name, po, shipped_at, program = row
        entry = found.setdefault(sid, {"id": sid, "customer": code, "customer_name": name,
                                       "po": po, "vehicle_program": program,
                                       "shipped_at": shipped_at, "lots": [],
                                       "quantities": {}})
        entry["lots"].append(lot_no(lot_id))
        entry["quantities"][lot_no(lot_id)] = qty
    return list(found.values())


def _customers(shipments: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({entry["customer"] for entry in shipments})


# --- forward ---------------------------------------------------------------------------

def _brief(node: LotNode) -> dict[str, Any]:
    return {"lot_no": node.lot_no, "state": node.state, "step": node.step,
            "on_hold": node.on_hold, "customer": node.customer, "product": node.product,
            "quantity": node.quantity, "fab_lot": node.fab_lot}


def _seed_set(session: Session, seeds: Select[Any], actor: Actor | None,
              known: Iterable[int] | None) -> set[int]:
    return set(known) if known is not None else set(session.scalars(_scoped(seeds, actor)))


def forward_graph(session: Session, seeds: Select[Any], actor: Actor | None = None,
                  seed_ids: Iterable[int] | None = None) -> Graph:
    """The seed lots (`seeds` selects their ids; `seed_ids` when the caller knows them), every
    lot descended from them, the edges between them and the shipments that carried any of
    them: three statements whatever the size of the tree."""
    ids = _scoped(descendants(session, seeds), actor)
    lots = _as_seen(session, _lots(session, ids), actor)
    member = _keyed(session, ids, lots)
    seed_ids = _seed_set(session, seeds, actor, seed_ids)
    rows = _records(session, _edge_part(member), _shipment_part(member, actor))
    return Graph(lots=lots, edges=_edges(rows["edge"], lots),
                 start=[lots[i].lot_no for i in lots if i in seed_ids],
                 shipments=_shipments(rows["shipment"], lambda i: lots[i].lot_no))


def _forward_answer(graph: Graph) -> dict[str, Any]:
    start = set(graph.start)
    return {"descendants": [_brief(n) for n in graph.lots.values() if n.lot_no not in start],
            "shipments": graph.shipments, "customers": _customers(graph.shipments),
            "graph": graph}


def forward(session: Session, lot: Lot, actor: Actor | None = None) -> dict[str, Any]:
    """Forward trace of one lot: `lot`, `descendants` (every lot it went into, at any depth:
    lot_no, state, step, on_hold), the `shipments` that carried it or them (id, customer,
    po, shipped_at, lots) and their `customers`. A customer user sees only their own lots
    and shipments. The `graph` is for the picture."""
    graph = forward_graph(session, select(Lot.id).where(Lot.id == lot.id), actor, [lot.id])
    return {"lot": _brief(graph.by_no()[lot.lot_no]), **_forward_answer(graph)}


def forward_match(session: Session, match: dict[str, Any]) -> dict[str, Any]:
    """Forward trace of every lot a criterion names (fab lot, wafer, material lot,
    equipment window or lot numbers, as a mass hold's `match`): `lots` (the lots named
    directly), `descendants` (the others reached), `shipments`, `customers`. Plant users
    only. Raises InvalidInput as mes.quality.services.criterion."""
    crit = quality.criterion(session, match)
    graph = forward_graph(session, quality.seed_ids(crit))
    answer = _forward_answer(graph)
    by_no = graph.by_no()
    return {"match": crit.stored, "lots": [_brief(by_no[n]) for n in graph.start], **answer}


# --- backward --------------------------------------------------------------------------

@dataclass
class Backward:
    """What a backward trace gathers; the API and the pages show parts of it."""

    graph: Graph
    steps: list[dict[str, Any]]
    materials: list[dict[str, Any]]
    wafers: list[dict[str, Any]]
    test_runs: list[TestRun]
    holds: list[Hold]
    qualifications: list[Qualification]


def backward_data(session: Session, seeds: Select[Any], actor: Actor | None = None,
                  seed_ids: Iterable[int] | None = None) -> Backward:
    """The seed lots and every ancestor, with their steps (equipment, operator, times,
    quantities, rejects by reason), materials consumed, wafers, test runs, holds and the
    qualifications of their products: seven statements whatever the size of the tree
    (besides the seeds' own query when the caller does not know them). For a customer user
    the steps name no one (`operator` and `finished_by` are None): a customer sees where
    and when, not who."""
    people = scope_customer(actor) is None
    ids = _scoped(ancestors(session, seeds), actor)
    lots = _as_seen(session, _lots(session, ids, objects=True), actor)
    member = _keyed(session, ids, lots)
    seed_set = _seed_set(session, seeds, actor, seed_ids)
    rows = _records(
        session, _edge_part(member),
        # A customer reads a step's rejects by customer category, never by reason code.
        _part("reject", LotReject.lot_id, n1=LotReject.run_id, n2=LotReject.qty,
              a=ReasonCode.code if people else ReasonCode.customer_category)
        .join(ReasonCode, ReasonCode.id == LotReject.reason_id)
        .where(member(LotReject.lot_id)),
        _part("material", MaterialUse.lot_id, n1=MaterialUse.id, a=MaterialLot.code,
              b=MaterialLot.material, c=MaterialUse.step_code, t=MaterialUse.at)
        .join(MaterialLot, MaterialLot.id == MaterialUse.material_lot_id)
        .where(member(MaterialUse.lot_id)),
        _part("wafer", LotWafer.lot_id, n2=Wafer.die_qty, a=Wafer.fab_lot, b=Wafer.wafer_id)
        .join(Wafer, Wafer.id == LotWafer.wafer_pk).where(member(LotWafer.lot_id)))
    graph = Graph(lots=lots, edges=_edges(rows["edge"], lots),
                  start=[lots[i].lot_no for i in lots if i in seed_set])

    rejects: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows["reject"]:
        same = None if people else next(
            (r for r in rejects[row[2]] if r["reason"] == row[4]), None)
        if same is None:
            rejects[row[2]].append({"reason": row[4], "qty": row[3]})
        else:
            same["qty"] += row[3]
    steps = [{"run": row.id, "lot_no": lots[row.lot_id].lot_no, "step": row.step_code,
              "equipment": row.code, "equipment_kind": row.kind,
              "operator": row.operator if people else None,
              "started_at": row.started_at, "finished_at": row.finished_at,
              "qty_in": row.qty_in, "good_qty": row.good_qty,
              "reject_qty": row.reject_qty, "rejects": rejects.get(row.id, []),
              "finished_by": row.finished_by if people else None}
             for row in session.execute(
                 select(StepRun.id, StepRun.lot_id, StepRun.step_code, Equipment.code,
                        Equipment.kind, StepRun.operator, StepRun.started_at,
                        StepRun.finished_at, StepRun.qty_in, StepRun.good_qty,
                        StepRun.reject_qty, StepRun.finished_by)
                 .join(Equipment, Equipment.id == StepRun.equipment_id)
                 .where(member(StepRun.lot_id)).order_by(StepRun.started_at, StepRun.id))
             if row.lot_id in lots]
    materials = [{"material_lot": row[4], "material": row[5], "lot_no": lots[row[1]].lot_no,
                  "step": row[6], "at": row[7]}
                 for row in sorted(rows["material"], key=lambda r: (r[7], r[2]))
                 if row[1] in lots]
    wafers: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows["wafer"], key=lambda r: (r[4], r[5], r[1])):
        entry = wafers.setdefault((row[4], row[5]), {
            "fab_lot": row[4], "wafer_id": row[5], "die_qty": row[3], "lots": []})
        if row[1] in lots:
            entry["lots"].append(lots[row[1]].lot_no)
    test_runs = list(session.scalars(select(TestRun).where(member(TestRun.lot_id))
                                     .order_by(TestRun.id)))
    holds = list(session.scalars(
        select(Hold).where(member(Hold.lot_id), *([] if people else [customer_sees()]))
        .options(joinedload(Hold.reason), joinedload(Hold.scrap_reason)).order_by(Hold.id)))
    quals = list(session.scalars(
        select(Qualification).where(Qualification.product_id.in_(
            sorted({node.product_id for node in lots.values()})))
        .options(selectinload(Qualification.tests), joinedload(Qualification.product),
                 joinedload(Qualification.bom))
        .order_by(Qualification.product_id, Qualification.id)))
    return Backward(graph=graph, steps=steps, materials=materials,
                    wafers=list(wafers.values()), test_runs=test_runs, holds=holds,
                    qualifications=quals)


def _backward_answer(data: Backward) -> dict[str, Any]:
    graph = data.graph
    start = set(graph.start)
    nodes = list(graph.lots.values())
    equipment: dict[str, dict[str, Any]] = {}
    for step in data.steps:
        equipment.setdefault(step["equipment"], {"code": step["equipment"],
                                                 "kind": step["equipment_kind"]})
    material_lots: dict[str, dict[str, Any]] = {}
    for use in data.materials:
        entry = material_lots.setdefault(use["material_lot"], {
            "code": use["material_lot"], "material": use["material"], "lots": []})
        if use["lot_no"] not in entry["lots"]:
            entry["lots"].append(use["lot_no"])
    return {"ancestors": [n.lot_no for n in nodes if n.lot_no not in start],
            "fab_lots": sorted({n.fab_lot for n in nodes}),
            "wafers": data.wafers,
            "material_lots": sorted(material_lots.values(), key=lambda m: m["code"]),
            "equipment": sorted(equipment.values(), key=lambda e: e["code"]),
            "steps": data.steps, "materials": data.materials, "test_runs": data.test_runs,
            "holds": data.holds, "qualifications": data.qualifications, "data": data}


def backward(session: Session, lot: Lot, actor: Actor | None = None) -> dict[str, Any]:
    """Backward trace of one lot: `lot`, its `ancestors` (every lot it came from, at any
    depth), the `fab_lots` and `wafers` of its units, the `material_lots` consumed, the
    `equipment` used, the `steps` run (lot_no, step, equipment, operator, started_at,
    finished_at, good_qty, rejects), `test_runs`, `holds` and its products'
    `qualifications`, over the lot and all its ancestors. A customer user sees only their
    own lots, and no operator's name."""
    data = backward_data(session, select(Lot.id).where(Lot.id == lot.id), actor, [lot.id])
    return {"lot": _brief(data.graph.by_no()[lot.lot_no]), **_backward_answer(data)}


def shipment_backward(session: Session, shipment_id: int,
                      actor: Actor | None = None) -> dict[str, Any]:
    """Backward trace of every lot a shipment carried: `shipment`, `lots` (its lots) and
    the backward trace's lists over them and all their ancestors. Another customer's
    shipment is NotFound, as if it did not exist."""
    # As shipping.get_shipment, with its lots in the same statement.
    stmt = (select(Shipment).where(Shipment.id == shipment_id)
            .options(joinedload(Shipment.customer), joinedload(Shipment.lots)))
    shipment = session.scalars(scoped(stmt, Shipment.customer_id, actor)).unique().first()
    if shipment is None:
        raise NotFound(_l("No shipment %(shipment_id)s.", shipment_id=shipment_id))
    seeds = select(ShipmentLot.lot_id).where(ShipmentLot.shipment_id == shipment.id)
    data = backward_data(session, seeds, actor, [link.lot_id for link in shipment.lots])
    return {"shipment": shipment, "lots": list(data.graph.start), **_backward_answer(data)}


# --- containment -----------------------------------------------------------------------

@dataclass
class Containment:
    id: str
    holds: list[Hold]
    lots_held: list[str]
    shipped: list[dict[str, Any]]
    customers: list[str]
    skipped: list[str]
    match: dict[str, Any]
    reason: str
    comment: str
    by: str
    at: datetime


def _containment_id() -> str:
    # Sortable by time, so the latest containments come first from the audit index.
    return f"C{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def contain(session: Session, actor: Actor, *, reason: str, comment: str,
            match: dict[str, Any]) -> Containment:
    """Containment: hold (source `containment`) every lot the criterion reaches through
    splits and merges that is still in the plant (queued, running or completed), all in
    the caller's transaction, and list what already left: the shipments that carried
    matching lots, by shipment and customer, and the customers to notify.

    A lot on hold already gets a containment hold too (each hold is released on its own).
    When every matching lot has left the plant, nothing is held and the answer still lists
    the shipments and customers. The containment is recorded in the audit trail under its
    id with the whole answer (the per-customer notification list is read from there).

    Raises InvalidInput (reason, comment, a match as mes.quality.services.criterion; code
    `no_match` when the criterion reaches no lot) and Conflict `stale` when a lot changed
    meanwhile; nothing is held then.
    """
    try:
        done = quality.mass_hold(session, actor, reason=reason, comment=comment, match=match,
                                 source=HoldSource.CONTAINMENT)
        holds, held, skipped = done.holds, done.lots, done.skipped
    except Conflict as exc:
        if exc.code != ErrorCode.NOTHING_TO_HOLD:
            raise
        holds, held = [], []
        skipped = quality.match_lots(session, match)["skipped"]
    crit = quality.criterion(session, match)
    walk = descendants(session, quality.seed_ids(crit))
    rows = _records(session, _shipment_part(lambda column: column.in_(walk), None))
    numbers = {lot_id: lot_no for lot_id, lot_no in session.execute(
        select(Lot.id, Lot.lot_no).where(Lot.id.in_({row[1] for row in rows["shipment"]})))}
    shipped = [{"shipment": s["id"], "customer": s["customer"],
                "customer_name": s["customer_name"], "po": s["po"],
                "vehicle_program": s["vehicle_program"],
                "shipped_at": s["shipped_at"].isoformat(), "lots": s["lots"],
                "quantities": s["quantities"]}
               for s in _shipments(rows["shipment"], numbers.__getitem__)]
    who = actor_name(actor)
    now = utcnow()
    result = Containment(id=_containment_id(), holds=holds, lots_held=held,
                         shipped=shipped, customers=_customers(shipped), skipped=skipped,
                         match=crit.stored, reason=reason, comment=comment.strip(), by=who,
                         at=now)
    audit.record(session, actor=actor, code="containment:run", subject_type=CONTAINMENT,
                 subject_key=result.id, new_subject=True, data=_record(result))
    described = session.scalar(select(ReasonCode.description).where(ReasonCode.code == reason))
    publishers.containment_created(session, containment=result.id, reason=reason,
                                   reason_description=described or "", at=now,
                                   holds=holds, shipped=shipped)
    return result


def _record(result: Containment) -> dict[str, Any]:
    return {"reason": result.reason, "comment": result.comment, "match": result.match,
            "holds": [hold.id for hold in result.holds], "lots_held": result.lots_held,
            "skipped": result.skipped, "customers": result.customers,
            "shipped": result.shipped}


def get_containment(session: Session, containment_id: str) -> dict[str, Any]:
    """A recorded containment as its audit record keeps it: id, by, at and the answer
    (reason, comment, match, holds, lots_held, skipped, shipped, customers). NotFound
    otherwise."""
    event = session.scalar(select(AuditEvent).where(
        AuditEvent.subject_type == CONTAINMENT, AuditEvent.subject_key == containment_id,
        AuditEvent.code == "containment:run"))
    if event is None:
        raise NotFound(_l("No containment %(containment_id)s.", containment_id=containment_id))
    return _recorded(event)


def _recorded(event: AuditEvent) -> dict[str, Any]:
    return {"id": event.subject_key, "by": event.actor, "at": event.at, **event.data}


def recent_containments(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The latest containments, newest first."""
    return [_recorded(event) for event in session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == CONTAINMENT,
                                 AuditEvent.code == "containment:run")
        .order_by(AuditEvent.subject_key.desc()).limit(limit))]


NOTIFY_COLUMNS = ("customer", "customer_name", "shipment", "po", "vehicle_program",
                  "shipped_at", "lot_no", "quantity", "containment", "reason")


def notification_rows(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-customer notification list of a recorded containment: one row per shipped
    lot, by customer, then shipment."""
    rows = []
    for entry in sorted(recorded["shipped"], key=lambda s: (s["customer"], s["shipment"])):
        for lot_no in entry["lots"]:
            rows.append({"customer": entry["customer"],
                         "customer_name": entry.get("customer_name", ""),
                         "shipment": entry["shipment"], "po": entry["po"],
                         "vehicle_program": entry.get("vehicle_program"),
                         "shipped_at": entry["shipped_at"], "lot_no": lot_no,
                         "quantity": entry.get("quantities", {}).get(lot_no),
                         "containment": recorded["id"], "reason": recorded["reason"]})
    return rows
