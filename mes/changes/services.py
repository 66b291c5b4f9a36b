"""Change control: an engineer records a change to products (classified against AEC-Q100's
change table, `mes.changes.reference`), the requalification it needs is followed on the BOM
revision it introduces, and automotive customers are sent product change notifications
(PCNs) they approve or reject.

The rules:
- A change's new BOM revision does not take effect (is not current for receiving, see
  `mes.catalog.services.current_bom`) until every stress the change requires has passed
  on it; lots may still be received on it by naming it (qualification and pilot builds).
- A lot built on a revision a change introduced ships to an automotive customer only when
  that customer approved the change's PCN, or did not answer and its notice period has
  run out (`check_pcn`, 409 `pcn_not_accepted`). A rejection stands whatever the date.
- PCNs go to every automotive customer of an affected product: the product's own customer
  and every customer that has or had lots of it (in the plant or shipped).

Every function works in the caller's transaction, audits what it writes, and raises before
changing anything when a rule refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scoped
from mes.catalog import aec
from mes.catalog.models import Bom, Customer, Product
from mes.catalog.services import passed_stresses
from mes.changes import events
from mes.changes.models import Change, ChangeProduct, Pcn
from mes.changes.reference import required_stresses
from mes.config import DEFAULTS
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.floor.services import plant_date
from mes.vocabulary import PcnStatus

MAX_PRODUCTS = 50
MAX_NOTICE_DAYS = 3650


def _invalid(field_name: str, message: Any) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


def notice_days_minimum() -> int:
    """The shortest notice a PCN may give (PCN_NOTICE_DAYS)."""
    if has_app_context():
        return int(current_app.config["PCN_NOTICE_DAYS"])
    return int(DEFAULTS["PCN_NOTICE_DAYS"])


# --- reading ---------------------------------------------------------------------------

def change_query() -> Select[Any]:
    """Changes, newest first, with their products and PCNs."""
    return (select(Change).options(
        selectinload(Change.products).joinedload(ChangeProduct.product),
        selectinload(Change.products).joinedload(ChangeProduct.bom),
        selectinload(Change.pcns).joinedload(Pcn.customer))
        .order_by(Change.id.desc()))


def get_change(session: Session, change_id: int) -> Change:
    change = session.scalar(change_query().where(Change.id == change_id))
    if change is None:
        raise NotFound(_l("No change %(change_id)s.", change_id=change_id))
    return change


@dataclass
class Requalification:
    """Where a product's requalification for a change stands: the stresses required, those
    passed on the change's BOM revision of the product (the current one when the change
    names none) and those still missing."""

    product: str
    bom_revision: str | None
    required: list[str]
    passed: list[str]
    missing: list[str]
    items: list[dict[str, Any]]

    @property
    def done(self) -> bool:
        return not self.missing


@dataclass
class PresentedChange:
    """A change with its requalification status per product and its PCNs."""

    change: Change
    products: list[Requalification]
    pcns: list[Pcn]

    @property
    def requalified(self) -> bool:
        """Every affected product passed every required stress: the change takes effect."""
        return all(p.done for p in self.products)

    @property
    def status(self) -> str:
        return "qualified" if self.requalified else "requalifying"

    @property
    def passed_count(self) -> int:
        return sum(len(p.passed) for p in self.products)

    @property
    def required_count(self) -> int:
        return sum(len(p.required) for p in self.products)


def _revision_of(session: Session, row: ChangeProduct) -> Bom | None:
    if row.bom is not None:
        return row.bom
    return session.scalar(select(Bom).where(Bom.product_id == row.product_id)
                          .order_by(Bom.id.desc()).limit(1))


def present(session: Session, change: Change) -> PresentedChange:
    """The change as its page and the API show it."""
    rows = []
    for row in change.products:
        bom = _revision_of(session, row)
        passed = passed_stresses(session, row.product, bom) if bom is not None else set()
        standard = aec.standard_for(row.product.kind)
        required = list(change.required_stresses)
        rows.append(Requalification(
            product=row.product.code, bom_revision=bom.revision if bom is not None else None,
            required=required,
            passed=[s for s in required if aec.satisfied(standard, passed, s)],
            missing=[s for s in required if not aec.satisfied(standard, passed, s)],
            items=list(row.items)))
    return PresentedChange(change=change, products=rows, pcns=list(change.pcns))


# --- recording a change ----------------------------------------------------------------

def _products(session: Session, codes: Sequence[str]) -> list[Product]:
    if not codes or len(codes) > MAX_PRODUCTS:
        raise _invalid("products", _l("Name 1 to %(max)s products.", max=MAX_PRODUCTS))
    if len(set(codes)) != len(codes):
        raise _invalid("products", _l("Name each product once."))
    found = {p.code: p for p in session.scalars(select(Product).where(Product.code.in_(codes)))}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise _invalid("products", _l("Unknown product %(items)s.", items=", ".join(unknown)))
    return [found[c] for c in codes]


def _revisions(session: Session, product: Product) -> list[Bom]:
    return list(session.scalars(select(Bom).where(Bom.product_id == product.id)
                                .options(selectinload(Bom.items)).order_by(Bom.id)))


def _item_keys(bom: Bom | None) -> dict[tuple[str, str], tuple[str, ...]]:
    if bom is None:
        return {}
    return {(i.step, i.material): tuple(i.part_numbers or ()) for i in bom.items}


def _changed_items(before: Bom | None, after: Bom) -> list[dict[str, str]]:
    """The BOM items (step, material) whose part numbers differ between two revisions, or
    that one of them lacks."""
    old, new = _item_keys(before), _item_keys(after)
    return [{"step": step, "material": material}
            for step, material in sorted(old.keys() | new.keys())
            if old.get((step, material)) != new.get((step, material))]


def _change_row(session: Session, product: Product, revision: str | None,
                items: list[dict[str, str]] | None) -> ChangeProduct:
    """What the change alters of one product: the BOM revision it introduces (an existing
    revision with an earlier one before it, introduced by no other change) and the items."""
    boms = _revisions(session, product)
    new: Bom | None = None
    before: Bom | None = boms[-1] if boms else None
    if revision is not None:
        at = next((i for i, b in enumerate(boms) if b.revision == revision), None)
        if at is None:
            raise _invalid("bom_revision", _l(
                "Product %(code)s has no BOM revision %(revision)s: create it first.",
                code=product.code, revision=revision))
        if at == 0:
            raise _invalid("bom_revision", _l(
                "Revision %(revision)s is the first BOM revision of %(code)s; a change "
                "introduces a revision that replaces an earlier one.",
                code=product.code, revision=revision))
        new, before = boms[at], boms[at - 1]
        taken = session.scalar(select(ChangeProduct.change_id).where(
            ChangeProduct.bom_id == new.id))
        if taken is not None:
            raise Conflict(_l("BOM revision %(revision)s of %(code)s is introduced by change "
                              "%(change)s already.", revision=revision, code=product.code,
                              change=taken), code=ErrorCode.DUPLICATE)
    if items is None:
        found = _changed_items(before, new) if new is not None else []
    else:
        known = _item_keys(new) | _item_keys(before)
        wrong = [f"{i['step']}/{i['material']}" for i in items
                 if (i["step"], i["material"]) not in known]
        if wrong:
            raise _invalid("items", _l("The BOM of %(code)s has no item %(items)s.",
                                       code=product.code, items=", ".join(wrong)))
        found = [{"step": i["step"], "material": i["material"]} for i in items]
    return ChangeProduct(product=product, bom=new, items=found)


def create_change(session: Session, actor: Actor, data: dict[str, Any]) -> Change:
    """Record a change: `title`, `kind` (ChangeKind), `products` (codes), `bom_revision`
    (optional: the revision, of each product, the change introduces), `items` (optional:
    the BOM items `{step, material}` it alters; by default those that differ from the
    revision before) and `description`. The change requires the stresses AEC-Q100's change
    table names for its kind (`required_stresses`).

    Raises InvalidInput (unknown or repeated products, field `products`; a revision a
    product lacks or its first one, field `bom_revision`; an item not on the BOM, field
    `items`) and Conflict `duplicate` (the revision is introduced by another change).
    """
    products = _products(session, list(data["products"]))
    revision = data.get("bom_revision") or None
    items = data.get("items")
    rows = [_change_row(session, product, revision, items) for product in products]
    change = Change(title=data["title"].strip(), kind=data["kind"],
                    description=data.get("description") or "", bom_revision=revision,
                    required_stresses=list(required_stresses(data["kind"])),
                    created_by=actor_name(actor), products=rows)
    session.add(change)
    # Flushed for the id the audit record names.
    session.flush()
    audit.record(session, actor=actor, code="change:create", subject_type="change",
                 subject_key=str(change.id), new_subject=True,
                 data={"title": change.title, "kind": change.kind,
                       "products": [p.code for p in products], "bom_revision": revision,
                       "items": {row.product.code: row.items for row in rows},
                       "required_stresses": change.required_stresses,
                       "description": change.description})
    return change


# --- notifications ---------------------------------------------------------------------

def affected_customers(session: Session, change: Change) -> list[Customer]:
    """The automotive customers of the change's products: each product's own customer and
    every customer that has or had lots of it (in the plant, shipped or closed)."""
    product_ids = [row.product_id for row in change.products]
    return list(session.scalars(
        select(Customer).where(
            Customer.automotive.is_(True),
            or_(Customer.id.in_(select(Product.customer_id).where(Product.id.in_(product_ids))),
                Customer.id.in_(select(Lot.customer_id).where(
                    Lot.product_id.in_(product_ids)).distinct())))
        .order_by(Customer.code)))


def send_pcns(session: Session, actor: Actor, change: Change,
              notice_days: int | None = None) -> list[Pcn]:
    """Send the change's PCN to every affected automotive customer (`affected_customers`)
    that has none yet: sent now, effective `notice_days` (default and minimum the plant's
    PCN_NOTICE_DAYS) after the plant's date.

    Raises InvalidInput (a notice shorter than the minimum or above 3650 days, field
    `notice_days`) and Conflict `already_notified` (no affected automotive customer is
    left without a PCN of this change).
    """
    minimum = notice_days_minimum()
    days = minimum if notice_days is None else notice_days
    if days < minimum or days > MAX_NOTICE_DAYS:
        raise _invalid("notice_days", _l(
            "Give a notice of %(min)s to %(max)s days (the plant's minimum is %(min)s).",
            min=minimum, max=MAX_NOTICE_DAYS))
    notified = {pcn.customer_id for pcn in change.pcns}
    customers = affected_customers(session, change)
    new = [c for c in customers if c.id not in notified]
    if not new:
        raise Conflict(_l("Every automotive customer of the change's products has its PCN "
                          "already.") if customers else
                       _l("No automotive customer has or had lots of the change's "
                          "products: there is no one to notify."),
                       code=ErrorCode.ALREADY_NOTIFIED)
    now = utcnow()
    effective = plant_date(now) + timedelta(days=days)
    pcns = [Pcn(change=change, customer=c, notice_days=days, sent_at=now,
                sent_by=actor_name(actor), effective_date=effective,
                status=PcnStatus.PENDING) for c in new]
    session.add_all(pcns)
    # Flushed for the ids the audit records name.
    session.flush()
    for pcn in pcns:
        audit.record(session, actor=actor, code="pcn:send", subject_type="pcn",
                     subject_key=str(pcn.id), new_subject=True,
                     data={"change": change.id, "customer": pcn.customer.code,
                           "notice_days": days, "effective_date": effective.isoformat()})
        events.pcn_sent.send(pcn, session=session, actor=actor)
    return pcns


def pcn_query(actor: Actor | None = None) -> Select[Any]:
    """PCNs, newest first; a customer user's own only."""
    return scoped(select(Pcn).options(joinedload(Pcn.customer), joinedload(Pcn.change)),
                  Pcn.customer_id, actor).order_by(Pcn.id.desc())


def get_pcn(session: Session, pcn_id: int, actor: Actor | None = None) -> Pcn:
    """The PCN `pcn_id`; another customer's is NotFound, as if it did not exist."""
    pcn = session.scalar(pcn_query(actor).where(Pcn.id == pcn_id))
    if pcn is None:
        raise NotFound(_l("No PCN %(pcn_id)s.", pcn_id=pcn_id))
    return pcn


def decide_pcn(session: Session, actor: Actor, pcn: Pcn, approve: bool | None,
               comment: str = "") -> Pcn:
    """The customer's answer to the PCN (found through `get_pcn` with the customer's
    scope): approved or rejected, with an optional comment. The answer is final.

    Raises InvalidInput (no answer, field `approve`), Conflict `already_decided` when the
    PCN was answered before; two answers at once: one wins, the other is 409 `stale`.
    """
    if approve is None:
        raise _invalid("approve", _l("Approve or reject the change."))
    if pcn.status != PcnStatus.PENDING:
        raise Conflict(_l("PCN %(pcn)s was %(status)s already.", pcn=pcn.id,
                          status=PcnStatus.word(pcn.status)),
                       code=ErrorCode.ALREADY_DECIDED)
    pcn.status = PcnStatus.APPROVED if approve else PcnStatus.REJECTED
    pcn.decided_at = utcnow()
    pcn.decided_by = actor_name(actor)
    pcn.comment = (comment or "").strip()
    audit.record(session, actor=actor, code="pcn:decide", subject_type="pcn",
                 subject_key=str(pcn.id),
                 data={"change": pcn.change_id, "status": pcn.status, "comment": pcn.comment})
    # Written now, so that a simultaneous answer loses on the version counter here.
    session.flush()
    events.pcn_decided.send(pcn, session=session, actor=actor)
    return pcn


# --- shipping --------------------------------------------------------------------------

def accepted(pcn: Pcn | None) -> bool:
    """Whether lots under the PCN's change ship to its customer: approved, or not answered
    and effective (its notice period has run out)."""
    if pcn is None or pcn.status == PcnStatus.REJECTED:
        return False
    return pcn.status == PcnStatus.APPROVED or pcn.effective_date <= plant_date()


def check_pcn(session: Session, lot: Lot, customer: Customer) -> None:
    """Rule: a lot built on a BOM revision a change introduced ships to an automotive
    customer only when the customer accepted the change's PCN (`accepted`). Raises
    Conflict `pcn_not_accepted` otherwise (no PCN sent to the customer, not answered within
    its notice period, or rejected)."""
    if not customer.automotive or lot.bom_id is None:
        return
    change_id = session.scalar(select(ChangeProduct.change_id).where(
        ChangeProduct.bom_id == lot.bom_id))
    if change_id is None:
        return
    pcn = session.scalar(select(Pcn).where(Pcn.change_id == change_id,
                                           Pcn.customer_id == customer.id))
    if accepted(pcn):
        return
    if pcn is None:
        message = _l("Lot %(lot)s is built under change %(change)s; %(customer)s was sent no "
                     "PCN of it.", lot=lot.lot_no, change=change_id, customer=customer.code)
    elif pcn.status == PcnStatus.REJECTED:
        message = _l("Lot %(lot)s is built under change %(change)s, whose PCN %(pcn)s "
                     "%(customer)s rejected.", lot=lot.lot_no, change=change_id, pcn=pcn.id,
                     customer=customer.code)
    else:
        message = _l("Lot %(lot)s is built under change %(change)s; %(customer)s has not "
                     "approved PCN %(pcn)s, whose notice runs until %(date)s.",
                     lot=lot.lot_no, change=change_id, customer=customer.code, pcn=pcn.id,
                     date=pcn.effective_date.isoformat())
    raise Conflict(message, code=ErrorCode.PCN_NOT_ACCEPTED)


def lot_pcns(session: Session, lots: Sequence[Lot], customer: Customer) -> list[Pcn]:
    """The customer's PCNs of the changes the lots fall under (built on a revision a change
    introduced), for the certificate of conformance."""
    bom_ids = {lot.bom_id for lot in lots if lot.bom_id is not None}
    if not bom_ids:
        return []
    return list(session.scalars(
        select(Pcn).join(ChangeProduct, ChangeProduct.change_id == Pcn.change_id)
        .where(ChangeProduct.bom_id.in_(bom_ids), Pcn.customer_id == customer.id)
        .options(joinedload(Pcn.change)).order_by(Pcn.id).distinct()))
