"""The certificate of conformance of a shipment: what it carried (lots, quantities, date
codes, routes), the test evidence per test step (tested, good, yield, PAT and SBA), the
qualification of each product at each BOM revision shipped (report, grade, revision) and
the PCNs the lots fall under. Read-only; the page, the portal and the API render the same
`Certificate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.catalog.models import Bom, Product, Qualification
from mes.catalog.services import evidence_for, route_step_infos
from mes.changes import services as changes
from mes.changes.models import Pcn
from mes.db import utcnow
from mes.floor.genealogy import ancestors
from mes.floor.models import Lot
from mes.shipping import packing, services
from mes.shipping.models import PackUnit, Shipment, ShipmentLot
from mes.testfloor import figures
from mes.testfloor.figures import InsertionFigures

# SBA outcomes from best to worst; a step shows its worst.
SBA_ORDER = ("insufficient_history", "ok", "level1", "level2")


@dataclass
class CocLot:
    lot_no: str
    product: str
    quantity: int
    date_code: str
    route: str
    route_version: int
    fab_lot: str


@dataclass
class CocPackUnit:
    """A pack unit the shipment named (a carton, box, bag or reel), with what it holds."""

    id: str
    kind: str
    product: str
    quantity: int
    date_codes: list[str]
    lots: list[str]


@dataclass
class CocStep:
    """The test evidence of one test step over the shipment's lots: their test insertions
    (and those of the lots they came from) summed (mes.testfloor.figures)."""

    step: str
    lots: int = 0
    retests: int = 0
    tested: int = 0
    first_pass_good: int = 0
    good: int = 0
    # PAT: the static limit sets the programs carried, how many insertions had a dynamic
    # re-screen, the escapes left and the parts removed to the PAT bin.
    pat_limit_sets: set[str] = field(default_factory=set)
    pat_screened: int = 0
    pat_dynamic: int = 0
    pat_escapes: int = 0
    pat_removed: int = 0
    # The closing SBA verdict of each insertion, counted by outcome.
    sba: dict[str, int] = field(default_factory=dict)

    @property
    def first_pass_yield(self) -> float | None:
        """First-pass good over units tested, in percent (None when nothing was tested)."""
        return 100.0 * self.first_pass_good / self.tested if self.tested else None

    @property
    def yield_pct(self) -> float | None:
        """Final good over units tested, in percent (None when nothing was tested)."""
        return 100.0 * self.good / self.tested if self.tested else None

    @property
    def pat_applied(self) -> bool:
        """Whether any PAT screen was done: a static limit set in the program, a dynamic
        re-screen, a PAT bin in the step's bin definitions, or parts the tester binned to
        the PAT bin."""
        return bool(self.pat_limit_sets or self.pat_dynamic or self.pat_screened
                    or self.pat_removed)

    @property
    def sba_worst(self) -> str | None:
        judged = [s for s in SBA_ORDER if s in self.sba]
        return judged[-1] if judged else None


@dataclass
class CocProduct:
    """One product of the shipment at one BOM revision (None: lots received without a
    bill of materials), with the qualification that is its evidence there."""

    code: str
    name: str
    package: str
    aec_grade: int | None
    msl: str
    quantity: int
    qualification: Qualification | None
    bom_revision: str | None = None


@dataclass
class Certificate:
    shipment: Shipment
    lots: list[CocLot]
    products: list[CocProduct]
    steps: list[CocStep]
    issued_at: datetime
    # The customer's PCNs of the changes the shipped lots were built under.
    pcns: list[Pcn] = field(default_factory=list)
    pack_units: list[CocPackUnit] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(lot.quantity for lot in self.lots)


def _insertions(session: Session, shipment: Shipment) -> list[InsertionFigures]:
    """The test insertions of the shipped lots and of every lot they came from (a lot split
    after final test carries its parent's results; a lot merged at QA carries the results of
    the lots merged into it)."""
    family = ancestors(session, select(ShipmentLot.lot_id)
                       .where(ShipmentLot.shipment_id == shipment.id))
    return figures.insertion_figures(session, family)


def _step_order(session: Session, lots: list[Lot]) -> dict[str, int]:
    order: dict[str, int] = {}
    for route in {lot.route for lot in lots}:
        for step in route_step_infos(session, route):
            order[step.code] = min(order.get(step.code, step.seq), step.seq)
    return order


def certificate(session: Session, shipment: Shipment) -> Certificate:
    """Gather the certificate of `shipment` (already scoped to the caller: see
    `services.get_shipment`)."""
    codes = services.date_codes(session, shipment)
    lots = [row.lot for row in shipment.lots]
    coc_lots = [CocLot(lot_no=row.lot.lot_no, product=row.lot.product.code,
                       quantity=row.quantity, date_code=codes[row.lot_id],
                       route=row.lot.route.code, route_version=row.lot.route.version,
                       fab_lot=row.lot.fab_lot) for row in shipment.lots]
    products: dict[tuple[str, int | None], CocProduct] = {}
    for row in shipment.lots:
        product: Product = row.lot.product
        key = (product.code, row.lot.bom_id)
        entry = products.get(key)
        if entry is None:
            bom = session.get(Bom, row.lot.bom_id) if row.lot.bom_id is not None else None
            entry = products[key] = CocProduct(
                code=product.code, name=product.name, package=product.package,
                aec_grade=product.aec_grade, msl=product.msl, quantity=0,
                qualification=evidence_for(session, product, bom),
                bom_revision=bom.revision if bom is not None else None)
        entry.quantity += row.quantity
    steps: dict[str, CocStep] = {}
    for ins in _insertions(session, shipment):
        step = steps.setdefault(ins.step, CocStep(step=ins.step))
        step.lots += 1
        step.retests += ins.retests
        step.tested += ins.units
        step.first_pass_good += ins.first_pass_good
        step.good += ins.final_good
        if ins.pat.get("limit_set"):
            step.pat_limit_sets.add(str(ins.pat["limit_set"]))
        step.pat_dynamic += 1 if ins.pat.get("dynamic") else 0
        step.pat_screened += 1 if ins.pat.get("screened") else 0
        step.pat_escapes += int(ins.pat.get("escapes") or 0)
        step.pat_removed += int(ins.pat.get("removed") or 0)
        status = ins.sba.get("status")
        if status:
            step.sba[status] = step.sba.get(status, 0) + 1
    order = _step_order(session, lots)
    return Certificate(
        shipment=shipment, lots=coc_lots,
        products=sorted(products.values(), key=lambda p: (p.code, p.bom_revision or "")),
        steps=sorted(steps.values(), key=lambda s: (order.get(s.step, 999), s.step)),
        issued_at=utcnow(), pcns=changes.lot_pcns(session, lots, shipment.customer),
        pack_units=_pack_units(session, shipment))


def _pack_units(session: Session, shipment: Shipment) -> list[CocPackUnit]:
    """The pack units the shipment carried at their outermost level (a carton, not its
    boxes and reels), each with its lots and date codes."""
    units = list(session.scalars(select(PackUnit).where(PackUnit.shipment_id == shipment.id)
                                 .order_by(PackUnit.id)))
    shipped = {unit.id for unit in units}
    out = []
    for unit in units:
        if unit.parent_id in shipped:
            continue
        shown = packing.present_unit(session, unit)
        out.append(CocPackUnit(id=shown.id, kind=shown.kind, product=shown.product,
                               quantity=shown.quantity, date_codes=list(shown.date_codes),
                               lots=[share.lot_no for share in shown.lots]))
    return out
