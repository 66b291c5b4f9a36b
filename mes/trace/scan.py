"""Scan anything to the lot: what a person holds — a lot number, a pack unit's id, a whole
2D label (its ISO/IEC 15434 message), or a package's top mark (date code and lot trace
code) — resolved to the lots and pack units it means.

Read-only. A customer user resolves their own customer's lots and pack units only: another
customer's is not found, as if it did not exist (the portal's isolation).

What is tried, in order (the first that finds something answers):

1. a 15434 message (`label`): its package id (3S) and its lots (1T);
2. a lot number (`lot`): the lot and its carriers;
3. a pack unit id, R-000123 ... (`pack_unit`): the unit and the lots in it;
4. a mark (`mark`): any lot trace code in the text, narrowed by a date code (YYWW) when
   the text has one — the whole mark as read off the package (device code, date code,
   trace code on their lines) works too. Split children share their parent's trace code:
   a mark answers every lot its units may be in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from mes.auth.actor import Actor
from mes.auth.scope import scoped
from mes.errors import NotFound
from mes.floor.models import Lot
from mes.shipping import iso15434
from mes.shipping.models import PackUnit, parse_pack_code
from mes.shipping.packing import carriers_within
from mes.vocabulary import ScanKind

MAX_CODE = 2000
# A date code YYWW (weeks 01 to 53) and a lot trace code (base 36, 5 to 12 characters).
_DATE_CODE = re.compile(r"\d\d(0[1-9]|[1-4]\d|5[0-3])")
_TRACE_CODE = re.compile(r"[0-9A-Z]{5,12}")
# Blanks and line breaks between the mark's fields (not the 15434 separators).
_BLANKS = re.compile(r"[ \t\r\n]+")


@dataclass
class Scan:
    """What a scanned code means: `kind` is lot, pack_unit, label or mark."""

    code: str
    kind: str
    lots: list[str] = field(default_factory=list)
    pack_units: list[str] = field(default_factory=list)


def _lots(session: Session, actor: Actor | None, where: ColumnElement[bool]) -> list[Lot]:
    stmt = scoped(select(Lot), Lot.customer_id, actor).where(where).order_by(Lot.lot_no)
    return list(session.scalars(stmt))


def _units_of_lots(session: Session, lots: list[Lot]) -> list[str]:
    """The carriers the lots were packed into, in packing order."""
    if not lots:
        return []
    return [unit.code for unit in session.scalars(select(PackUnit).where(
        PackUnit.lot_id.in_([lot.id for lot in lots])).order_by(PackUnit.id))]


def _unit(session: Session, actor: Actor | None, code: str) -> PackUnit | None:
    parsed = parse_pack_code(code)
    if parsed is None:
        return None
    return session.scalar(scoped(select(PackUnit), PackUnit.customer_id, actor).where(
        PackUnit.id == parsed[1], PackUnit.kind == parsed[0]))


def _lots_in(session: Session, unit: PackUnit) -> list[str]:
    return sorted({carrier.lot.lot_no for carrier in carriers_within(session, [unit])
                   if carrier.lot is not None})


def _label(session: Session, actor: Actor | None, text: str) -> Scan | None:
    try:
        message = iso15434.parse(text)
    except iso15434.MessageError:
        return None
    scan = Scan(code=text, kind=ScanKind.LABEL)
    lots: set[str] = set()
    for package_id in message.values(iso15434.PACKAGE_ID):
        unit = _unit(session, actor, package_id)
        if unit is not None:
            scan.pack_units.append(unit.code)
            lots.update(_lots_in(session, unit))
    numbers = message.values(iso15434.LOT)
    if numbers:
        lots.update(lot.lot_no for lot in _lots(session, actor, Lot.lot_no.in_(numbers)))
    scan.lots = sorted(lots)
    return scan if scan.lots or scan.pack_units else None


def _mark(session: Session, actor: Actor | None, text: str) -> Scan | None:
    words = [w for w in _BLANKS.split(text.upper()) if w]
    traces = [w for w in words if _TRACE_CODE.fullmatch(w)]
    if not traces:
        return None
    dates = [w for w in words if _DATE_CODE.fullmatch(w)]
    where = (Lot.trace_code.in_(traces) & Lot.date_code.in_(dates) if dates
             else Lot.trace_code.in_(traces))
    lots = _lots(session, actor, where)
    if not lots:
        return None
    return Scan(code=text, kind=ScanKind.MARK, lots=[lot.lot_no for lot in lots],
                pack_units=_units_of_lots(session, lots))


def scan(session: Session, code: str, actor: Actor | None = None) -> Scan:
    """Resolve `code` (see the module's docstring). Raises NotFound naming what was tried
    when nothing matches (or only another customer's objects do)."""
    text = code.strip(" \t\r\n")
    # A NUL is in no code (and PostgreSQL cannot compare text holding one).
    if text and len(text) <= MAX_CODE and "\x00" not in text:
        if iso15434.looks_like_message(text):
            found = _label(session, actor, text)
            if found is not None:
                return found
        else:
            lots = _lots(session, actor, Lot.lot_no == text)
            if lots:
                return Scan(code=text, kind=ScanKind.LOT, lots=[lots[0].lot_no],
                            pack_units=_units_of_lots(session, lots))
            unit = _unit(session, actor, text)
            if unit is not None:
                return Scan(code=text, kind=ScanKind.PACK_UNIT, lots=_lots_in(session, unit),
                            pack_units=[unit.code])
            found = _mark(session, actor, text)
            if found is not None:
                return found
    raise NotFound(_l("Nothing matches %(code)s: tried a lot number, a pack unit id "
                      "(R-000123), a 2D label (ISO/IEC 15434) and a mark (date code and lot "
                      "trace code).", code=iso15434.human(text[:80]) or "''"))
