"""The match form of the mass hold, future hold and containment pages: what a match may name
(a fab lot, a wafer, a material lot, an equipment time window, lot numbers), the form's
fields turned into the API's match (checked by its schema), and the hold reasons offered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from mes import db
from mes.catalog.models import ReasonCode
from mes.i18n import localized
from mes.quality import schemas as s
from mes.vocabulary import MatchKind, ReasonKind

MATCH_FIELDS = ("kind", "value", "fab_lot", "since", "until")


def plant_zone_name() -> str:
    """The plant's time zone (the PLANT_TIMEZONE setting), in which people type times."""
    return str(current_app.config["PLANT_TIMEZONE"])


def _when(text: str) -> str | None:
    """A time typed in the form, in ISO 8601 with its UTC offset. A datetime-local input
    sends no offset: it is plant time (PLANT_TIMEZONE), converted to UTC. A time that names
    its offset is kept; text that is not a time is left for the schema to refuse."""
    if not text:
        return None
    if re.search(r"(Z|[+-]\d\d:?\d\d)$", text):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return moment.replace(tzinfo=ZoneInfo(plant_zone_name())).astimezone(UTC).isoformat()


def plant_time(value: str | None) -> str:
    """A stored time (ISO 8601 with offset, as a match keeps it) as plant time, for pages:
    "2026-03-09 08:30"; empty for none; text that is not a time as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(plant_zone_name())).strftime("%Y-%m-%d %H:%M")


def window(form: dict[str, str]) -> dict[str, str] | None:
    """An equipment match's window as typed (plant time) and in UTC, for the preview to
    show both; None for other matches or a time that does not read."""
    if form.get("kind") != MatchKind.EQUIPMENT or not form.get("since"):
        return None
    shown: dict[str, str] = {}
    for name in ("since", "until"):
        stored = _when(form.get(name, ""))
        if stored is None:
            continue
        try:
            moment = datetime.fromisoformat(stored)
        except ValueError:
            return None
        shown[name] = plant_time(stored)
        shown[f"{name}_utc"] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return shown


def _match(form: dict[str, str]) -> dict[str, Any]:
    """The form's match in the API's shape (its schema then checks it)."""
    kind, value = form.get("kind", ""), form.get("value", "")
    if kind == MatchKind.LOTS:
        return {"lots": [w for w in re.split(r"[\s,;]+", value) if w]}
    if kind == MatchKind.WAFER:
        return {"wafer": value, **({"fab_lot": form["fab_lot"]} if form.get("fab_lot") else {})}
    if kind == MatchKind.EQUIPMENT:
        return {"equipment": value, "since": _when(form.get("since", "")),
                "until": _when(form.get("until", ""))}
    if kind in (MatchKind.FAB_LOT, MatchKind.MATERIAL_LOT):
        return {kind: value}
    raise ValidationError({"kind": [_("Choose what to match.")]})


def checked_match(form: dict[str, str]) -> dict[str, Any]:
    """The form's match loaded by the API's match schema; ValidationError when the form
    names nothing to match or the schema refuses it."""
    match = {k: v for k, v in _match(form).items() if v not in (None, "", [])}
    loaded = s.MatchIn().load(match)
    if not loaded:
        raise ValidationError({"value": [_("Give the value to match.")]})
    return loaded


def match_dump(match: dict[str, Any]) -> dict[str, Any]:
    """A loaded match back in input form (times as ISO 8601) for the hold's own schema."""
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in match.items()}


def match_options() -> list[tuple[str, str]]:
    """What a match may name, for the form's select."""
    return MatchKind.choices((MatchKind.FAB_LOT, MatchKind.WAFER, MatchKind.MATERIAL_LOT,
                              MatchKind.EQUIPMENT, MatchKind.LOTS))


def hold_reasons() -> list[tuple[str, str]]:
    """The active hold reason codes, for the form's select."""
    return [(r.code, f"{r.code} · {localized(r.description, r.description_zh)}")
            for r in db.session().scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))]
