"""The ISO/IEC 15434 message of a 2D shipping label (format 06: ANSI MH10.8.2 data
identifiers), as the ECIA EIGP 114 label carries it.

    [)> RS 06 GS 1P... GS Q... GS 9D... RS EOT

Pure computation: no Flask, no ORM. `encode` writes a message from (data identifier, value)
pairs; `parse` reads one back, also as receiving scanners and keyboards hand it over: the
control characters may arrive as the Unicode control pictures (␞ ␝ ␄) or as the text
forms <RS> <GS> <EOT> / {RS} {GS} {EOT}, and the trailing EOT may be missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RS = "\x1e"
GS = "\x1d"
EOT = "\x04"
HEADER = "[)>" + RS
FORMAT = "06"

# The data identifiers the labels carry (ANSI MH10.8.2), with what each holds.
PO = "K"                  # customer purchase order
CUSTOMER_PART = "P"       # customer's part number
SUPPLIER_PART = "1P"      # our part number
QUANTITY = "Q"            # quantity
DATE_CODE = "9D"          # date code YYWW (one per date code on a mixed carton)
LOT = "1T"                # lot number (one per lot)
COUNTRY = "4L"            # country of origin (ISO 3166-1 alpha-2)
PACKAGE_ID = "3S"         # the pack unit's id

DATA_IDENTIFIERS = {
    PO: "customer purchase order",
    CUSTOMER_PART: "customer part number",
    SUPPLIER_PART: "supplier part number",
    QUANTITY: "quantity",
    DATE_CODE: "date code (YYWW)",
    LOT: "lot number",
    COUNTRY: "country of origin",
    PACKAGE_ID: "package id",
}

# A data identifier: up to three digits and one upper-case letter.
_DI = re.compile(r"([0-9]{0,3}[A-Z])(.*)", re.DOTALL)
# What scanners and keyboards make of the separators, mapped back to them.
_SUBSTITUTES = {"\u241e": RS, "\u241d": GS, "\u2404": EOT,
                "<RS>": RS, "<GS>": GS, "<EOT>": EOT,
                "{RS}": RS, "{GS}": GS, "{EOT}": EOT}
_SUBSTITUTE = re.compile("|".join(re.escape(key) for key in _SUBSTITUTES), re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MessageError(ValueError):
    """The text is not a format 06 message, or a value cannot be carried in one."""


@dataclass(frozen=True)
class Message:
    """A parsed format 06 message: its fields in order, as (data identifier, value)."""

    fields: tuple[tuple[str, str], ...]

    def values(self, identifier: str) -> list[str]:
        """Every value of `identifier`, in order (several 9D or 1T on a mixed carton)."""
        return [value for di, value in self.fields if di == identifier]

    def first(self, identifier: str) -> str | None:
        """The first value of `identifier`, or None when the message has none."""
        found = self.values(identifier)
        return found[0] if found else None

    def as_dict(self) -> dict[str, list[str]]:
        """The values grouped by data identifier, in the order they first appear."""
        out: dict[str, list[str]] = {}
        for di, value in self.fields:
            out.setdefault(di, []).append(value)
        return out


def encode(fields: Iterable[tuple[str, str]]) -> str:
    """The format 06 message of `fields` ((data identifier, value) pairs, in order; pairs
    with an empty value are left out). Raises MessageError for a malformed data identifier
    or a value holding a control character (a separator inside a value would end the
    field)."""
    parts = []
    for identifier, value in fields:
        if not re.fullmatch(r"[0-9]{0,3}[A-Z]", identifier):
            raise MessageError(f"Not a data identifier: {identifier!r}.")
        if value == "":
            continue
        if _CONTROL.search(value):
            raise MessageError(f"The value of {identifier} holds a control character.")
        parts.append(identifier + value)
    if not parts:
        raise MessageError("A message needs at least one field.")
    return HEADER + FORMAT + GS + GS.join(parts) + RS + EOT


def normalize(text: str) -> str:
    """`text` with the separators' stand-ins (control pictures, <GS> and {GS} forms)
    turned back into the control characters."""
    return _SUBSTITUTE.sub(lambda m: _SUBSTITUTES[m.group(0).upper()], text)


def looks_like_message(text: str) -> bool:
    """Whether `text` starts like a 15434 message (`[)>` then a record separator), in any
    of the forms `parse` accepts."""
    return normalize(text.lstrip()).startswith(HEADER)


def parse(text: str) -> Message:
    """The fields of a format 06 message. Accepts the forms described in the module's
    docstring; other formats (05, 12 ...) and messages with several format envelopes are
    refused. Raises MessageError saying what is wrong."""
    message = normalize(text.strip(" \t\r\n"))
    if not message.startswith(HEADER):
        raise MessageError("A 15434 message starts with [)> and a record separator.")
    body = message[len(HEADER):]
    if body.endswith(EOT):
        body = body[:-1]
    if body.endswith(RS):
        body = body[:-1]
    if RS in body:
        raise MessageError("Only one format envelope (06) is read.")
    if not body.startswith(FORMAT + GS):
        raise MessageError("Only format 06 (data identifiers) is read.")
    fields = []
    for raw in body[len(FORMAT) + 1:].split(GS):
        if raw == "":
            continue
        match = _DI.fullmatch(raw)
        if match is None:
            raise MessageError(f"A field does not start with a data identifier: {raw!r}.")
        value = match.group(2)
        if _CONTROL.search(value):
            raise MessageError(f"The value of {match.group(1)} holds a control character.")
        fields.append((match.group(1), value))
    if not fields:
        raise MessageError("The message has no fields.")
    return Message(tuple(fields))


def clean(value: str) -> str:
    """`value` without control characters, which a field cannot carry (a purchase order
    typed with a tab, say)."""
    return _CONTROL.sub("", value)


def label_fields(*, po: str | None, customer_part: str | None, part: str, quantity: int,
                 date_codes: Sequence[str], lots: Sequence[str], country: str,
                 package_id: str) -> list[tuple[str, str]]:
    """The fields of a pack unit's label in the EIGP 114 order: K, P, 1P, Q, 9D (each date
    code), 1T (each lot), 4L, 3S. A field without a value (no PO before shipping, no
    customer part number) is left out."""
    fields = [(PO, po or ""), (CUSTOMER_PART, customer_part or ""), (SUPPLIER_PART, part),
              (QUANTITY, str(quantity))]
    fields += [(DATE_CODE, code) for code in date_codes]
    fields += [(LOT, lot) for lot in lots]
    fields += [(COUNTRY, country), (PACKAGE_ID, package_id)]
    return [(di, clean(value)) for di, value in fields]


def human(text: str) -> str:
    """A message with its separators made visible (␞ ␝ ␄), for showing on a page."""
    return text.replace(RS, "\u241e").replace(GS, "\u241d").replace(EOT, "\u2404")
