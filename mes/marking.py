"""The package top mark: the date code, the lot trace code and the mark text a product's
mark template makes of them.

Pure computation: no Flask, no ORM.

- The **date code** is YYWW: the ISO year's last two digits and the ISO week of the
  marking, in plant time (`date_code`).
- The **lot trace code** is the marked lot's number in the plant, its database id, written
  in base 36 (digits and capital letters) and padded to 5 characters: 00RS4. It is short
  enough for the smallest package top, unique to the marked lot, and never reused; split
  children carry their parent's (their units were marked together). Scanning a date code
  and trace code finds the lot, and through the genealogy what became of its units.
- A **mark template** is lines of text with fields in braces: `{device}` (the product
  code), `{date_code}`, `{trace_code}`, `{lot}` (the lot number), `{customer_part}` (the
  customer's part number, or the product code when it has none).
"""

from __future__ import annotations

import string
from datetime import date, datetime

MARK_FIELDS = ("device", "date_code", "trace_code", "lot", "customer_part")
DEFAULT_TEMPLATE = "{device}\n{date_code} {trace_code}"
TEMPLATE_LENGTH = 400
_DIGITS = string.digits + string.ascii_uppercase


def date_code(moment: date | datetime) -> str:
    """YYWW of `moment` (already in plant time): 29 December 2025 is in ISO week 1 of
    2026, `2601`."""
    year, week, _day = moment.isocalendar()
    return f"{year % 100:02d}{week:02d}"


def trace_code(lot_id: int) -> str:
    """The lot trace code of the lot with id `lot_id`: base 36, at least 5 characters."""
    digits = ""
    number = lot_id
    while number:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
    return digits.rjust(5, "0")


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order. Raises ValueError for a malformed one
    (an unclosed brace, a format spec)."""
    names = []
    for _text, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion or not name:
            raise ValueError(name or "{}")
        names.append(name)
    return names


def unknown_fields(template: str) -> list[str]:
    """The fields of `template` that are not MARK_FIELDS (a malformed template: ['{'])."""
    try:
        names = template_fields(template)
    except ValueError:
        return ["{"]
    return [name for name in names if name not in MARK_FIELDS]


def render(template: str | None, *, device: str, date_code: str, trace_code: str, lot: str,
           customer_part: str | None = None) -> str:
    """The mark text: `template` (DEFAULT_TEMPLATE when None) with its fields filled in."""
    values = {"device": device, "date_code": date_code, "trace_code": trace_code, "lot": lot,
              "customer_part": customer_part or device}
    return (template or DEFAULT_TEMPLATE).format_map(values)
