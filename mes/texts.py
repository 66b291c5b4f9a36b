"""Texts the system writes and stores (the reason text of a yield hold, of an SBA hold): a
code (`SystemText`) and its parameters, stored beside the English text.

The English (`english`) is what the API answers and what rows written before codes hold;
pages show `render`, the same sentence in the reader's language. A row without a code
shows its stored text as it is. The sentences are marked with `N_` and translated when
rendered, so the stored English never depends on who triggered the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from mes.vocabulary import ActorName, SystemText


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (gettext_noop)."""
    return message


YIELD_BELOW_MIN = N_("Step %(step)s yield %(yield)s %% is below the minimum %(min_yield)s %%.")
SBA_LEVEL1 = N_("SBA level 1 at %(step)s, test run %(test_run)s, against %(history_lots)s "
                "earlier lots: %(breaches)s.")
SBA_LEVEL2 = N_("SBA level 2 (material review board) at %(step)s, test run %(test_run)s, "
                "against %(history_lots)s earlier lots: %(breaches)s.")
SBA_YIELD_BREACH = N_("final yield %(value)s %% is below %(limit_name)s %(limit)s %%")
SBA_BIN_BREACH = N_("bin %(bin)s at %(value)s %% is above %(limit_name)s %(limit)s %%")
LIST_SEPARATOR = N_("; ")
PROGRAM_MISMATCH = N_("Tested at %(step)s with another program than the one released "
                      "(%(job_name)s revision %(job_rev)s), differing in: %(fields)s. The "
                      "file was not stored.")
PAT_ESCAPE_STATIC = N_("PAT escape at %(step)s, test run %(test_run)s: %(escapes)s part(s) "
                       "binned good lie outside the static PAT limits in force (set %(name)s, "
                       "version %(version)s). The lot may not ship until a re-screen bins "
                       "them out or QA dispositions it.")
PAT_ESCAPE_DYNAMIC = N_("PAT escape at %(step)s, test run %(test_run)s: %(escapes)s part(s) "
                        "binned good in the re-screen lie outside the lot's dynamic PAT "
                        "limits. The lot may not ship until a re-screen bins them out or QA "
                        "dispositions it.")
# The fields of a tester file that a program check compares (mes.testfloor.programs).
PROGRAM_FIELDS = {"part_type": N_("part type"), "job_name": N_("job name"),
                  "job_rev": N_("program revision"), "mode_code": N_("test mode"),
                  "temperature": N_("test temperature"), "hard_bins": N_("hard bins"),
                  "soft_bins": N_("soft bins")}
PAT_FALLOUT = N_("PAT fallout at %(step)s: %(removed)s of %(units)s units (%(value)s %%) in the "
                 "PAT bin, above the limit of %(limit)s %%.")

Translate = Callable[[str], str]


def _same(message: str) -> str:
    return message


def _yield(params: Mapping[str, Any], tr: Translate) -> str:
    return tr(YIELD_BELOW_MIN) % {"step": params["step"], "yield": params["yield"],
                                  "min_yield": params["min_yield"]}


def _breach(breach: Mapping[str, Any], tr: Translate) -> str:
    name = ("SYL" if breach["kind"] == "yield" else "SBL") + str(breach["level"])[-1]
    values = {"value": f"{breach['value']:.2f}", "limit": f"{breach['limit']:.2f}",
              "limit_name": name, "bin": breach.get("bin")}
    return tr(SBA_YIELD_BREACH if breach["kind"] == "yield" else SBA_BIN_BREACH) % values


def _sba(params: Mapping[str, Any], tr: Translate) -> str:
    breaches = tr(LIST_SEPARATOR).join(_breach(b, tr) for b in params["breaches"])
    return tr(SBA_LEVEL2 if params["level"] == 2 else SBA_LEVEL1) % {
        "step": params["step"], "test_run": params["test_run"],
        "history_lots": params["history_lots"], "breaches": breaches}


def _program(params: Mapping[str, Any], tr: Translate) -> str:
    return tr(PROGRAM_MISMATCH) % {"step": params["step"], "job_name": params["job_name"],
                                   "job_rev": params["job_rev"],
                                   "fields": tr(LIST_SEPARATOR).join(
                                       tr(PROGRAM_FIELDS[f]) if f in PROGRAM_FIELDS else f
                                       for f in params["fields"])}


def _pat_fallout(params: Mapping[str, Any], tr: Translate) -> str:
    return tr(PAT_FALLOUT) % {key: params[key] for key in ("step", "removed", "units", "value",
                                                          "limit")}


def _pat_escape(params: Mapping[str, Any], tr: Translate) -> str:
    sentence = PAT_ESCAPE_DYNAMIC if params.get("dynamic") else PAT_ESCAPE_STATIC
    return tr(sentence) % {"step": params["step"], "test_run": params["test_run"],
                           "escapes": params["escapes"], "name": params.get("name"),
                           "version": params.get("version")}


_RENDER: dict[SystemText, Callable[[Mapping[str, Any], Translate], str]] = {
    SystemText.YIELD_BELOW_MIN: _yield, SystemText.SBA_BREACH: _sba,
    SystemText.PROGRAM_MISMATCH: _program, SystemText.PAT_FALLOUT: _pat_fallout,
    SystemText.PAT_ESCAPE: _pat_escape}


def english(code: SystemText, params: Mapping[str, Any]) -> str:
    """The text in English, as it is stored beside its code."""
    return _RENDER[code](params, _same)


def render(code: str | None, params: Mapping[str, Any] | None, stored: str | None) -> str:
    """The text in the current language; the stored text when there is no code (rows
    written before codes, texts people wrote) or the code is not known."""
    if code is None or code not in SystemText.codes():
        return stored or ""
    try:
        return _RENDER[SystemText(code)](params or {}, gettext)
    except (KeyError, TypeError, ValueError):
        return stored or ""  # parameters of another shape: what was stored is still true


def actor(name: str | None) -> str:
    """Who did something, as a page shows it: the word for a system actor ("system",
    "cli" ...), else the username."""
    if name is None:
        return ""
    label = ActorName.labels().get(name)
    return str(label) if label is not None else name


# The words of the fields a form or the API names in its validation messages: a page shows
# "Reason: ..." instead of "reason: ...". The API keeps the names as its keys.
FIELD_LABELS: dict[str, Any] = {
    # Moisture control (J-STD-033).
    "bake": _l("Bake recipe"), "body_thickness_mm": _l("Body thickness (mm)"),
    "hours": _l("Bake time (hours)"), "met_hours": _l("Exposure time (hours)"),
    "moisture_start": _l("Moisture start step"),
    "peak_reflow_c": _l("Peak reflow temperature (°C)"), "rh_pct": _l("Oven humidity (% RH)"),
    "temperature_c": _l("Oven temperature (°C)"),
    # Marking and packing.
    "carrier": _l("Carrier"), "children": _l("Pack units"),
    "customer_part_number": _l("Customer part number"), "date_code": _l("Date code"),
    "mark": _l("Mark"), "mark_template": _l("Mark template"), "marks": _l("Marking step"),
    "pack_units": _l("Pack units"), "packed": _l("Packed"),
    "quantity_per": _l("Quantity per carrier"), "shipped": _l("Shipped"),
    "standard_pack_qty": _l("Standard pack quantity"), "trace_code": _l("Lot trace code"),
    # Bills of materials and time-limited materials.
    "items": _l("Items"), "part_number": _l("Supplier part number"),
    "part_numbers": _l("Part numbers allowed"), "qty_per_unit": _l("Quantity per unit"),
    "revision": _l("Revision"), "thaw_minutes": _l("Thawing time (minutes)"),
    "work_life_hours": _l("Work life after opening (hours)"),
    # Qualifications.
    "bom_revision": _l("BOM revision"), "family": _l("Qualification family"),
    "preconditioned": _l("Preconditioned"), "qual_family": _l("Qualification family"),
    # Batch tools.
    "capacity": _l("Capacity (lots at once)"), "unit_capacity": _l("Unit capacity (units at once)"),
    "lots_running": _l("Lots running"), "batch_equipment": _l("Batch tool"),
    "batch_lots": _l("Lots of the batch"),
    # Product changes and PCNs.
    "approve": _l("Approve"), "change": _l("Change"), "notice_days": _l("Notice (days)"),
    "products": _l("Products"), "title": _l("Title"),
    # Preventive maintenance.
    "every_days": _l("Every (days)"), "every_units": _l("Every (units)"),
    "notes": _l("Notes"), "since_at": _l("Counted from"), "due_at": _l("Due"),
    "units_left": _l("Units left"), "done_at": _l("Done at"), "done_by": _l("Done by"),
    "due_since": _l("Due since"), "units_since": _l("Units since the last PM"),
    # Process control (plans, samples, limits, events).
    "cause": _l("Cause"), "characteristic": _l("Characteristic"),
    "frequency": _l("Frequency"), "from_subgroups": _l("Subgroups for the limits"),
    "lsl": _l("Lower specification limit"), "plan": _l("Plan"), "rules": _l("Rules"),
    "subgroup_size": _l("Subgroup size"), "target": _l("Target"), "unit": _l("Unit"),
    "usl": _l("Upper specification limit"), "values": _l("Values"),
    "action": _l("Action"), "active": _l("Active"), "aec_grade": _l("AEC grade"),
    "at_step": _l("At step"), "automotive": _l("Automotive"), "bin": _l("Bin"),
    "bins": _l("Bins"), "by": _l("By"), "code": _l("Code"), "comment": _l("Comment"),
    "concession": _l("Customer concession"), "count": _l("Count"), "cursor": _l("Page"),
    "customer": _l("Customer"), "customer_category": _l("Customer category"),
    "description": _l("Description"),
    "description_zh": _l("Description (Chinese)"), "die_qty": _l("Die quantity"),
    "direction": _l("Direction"), "display_name": _l("Display name"),
    "disposition": _l("Disposition"), "due_date": _l("Due date"), "equipment": _l("Equipment"),
    "equipment_kind": _l("Equipment kind"), "expires_at": _l("Expires"),
    "fab_lot": _l("Fab lot"), "fails": _l("Fails"), "file": _l("File"), "format": _l("Format"),
    "from": _l("From"), "good_qty": _l("Good quantity"), "grade": _l("Grade"),
    "group": _l("Group by"), "holds": _l("Holds"), "kind": _l("Kind"),
    "label_hours": _l("Floor life on the label (h)"), "limit": _l("Limit"),
    "locale": _l("Language"),
    "lot": _l("Lot"), "lot_no": _l("Lot number"), "lots": _l("Lots"), "match": _l("Match"),
    "material": _l("Material"), "material_lot": _l("Material lot"),
    "materials": _l("Materials"), "min_yield": _l("Minimum yield"),
    "ideal_uph": _l("Ideal units per hour"), "msl": _l("MSL"),
    "touchdowns_per_unit": _l("Touchdowns per unit"), "durable": _l("Durable"),
    "life_limit": _l("Life limit"), "warn_at_pct": _l("Warning level (%)"),
    "used": _l("Used"),
    "name": _l("Name"), "name_zh": _l("Name (Chinese)"), "on_hold": _l("On hold"),
    "override_reason": _l("Override reason"), "package": _l("Package"),
    "pass": _l("Pass"), "password": _l("Password"), "period": _l("Period"), "po": _l("PO"),
    "priority": _l("Priority"), "product": _l("Product"), "qty": _l("Quantity"),
    "quantities": _l("Quantities"), "quantity": _l("Quantity"), "reason": _l("Reason"),
    "rejects": _l("Rejects"), "report": _l("Report"), "rework_step": _l("Back to step"),
    "role": _l("Role"), "route": _l("Route"), "sample_size": _l("Sample size"),
    "scrap_qty": _l("Quantity to scrap"), "scrap_reason": _l("Scrap reason"),
    "since": _l("Since"), "source": _l("Source"), "standard": _l("Standard"),
    "state": _l("State"), "status": _l("Status"), "step": _l("Step"), "steps": _l("Steps"),
    "step_kinds": _l("Step kinds"),
    "test": _l("Test"), "tests": _l("Tests"), "to": _l("To"), "tz": _l("Time zone"),
    "until": _l("Until"),
    "username": _l("User name"), "valid_days": _l("Valid for (days)"),
    "vehicle_program": _l("Vehicle program"), "version": _l("Version"),
    "wafer": _l("Wafer"), "wafer_id": _l("Wafer ID"), "wafers": _l("Wafers"),
    # Complaints and 8D.
    "reference": _l("Reference"), "received_at": _l("Received"), "units": _l("Failing units"),
    "scan": _l("Unit"), "failure_mode": _l("Failure mode"), "owner": _l("Owner"),
    "text": _l("Text for the customer"), "internal_note": _l("Internal note"),
    "root_cause_occurrence": _l("Why it occurred"), "root_cause_escape": _l("Why it escaped"),
    "verification": _l("Verification evidence"), "done": _l("Done"),
    "overdue": _l("Overdue only"),
    # Webhooks.
    "url": _l("URL"), "events": _l("Events"),
    # Commonality, returned units and failure analysis.
    "result": _l("Result"),
    "files": _l("Files"), "factor": _l("Factor"), "complaints": _l("Complaints"),
    "days": _l("Days"), "window": _l("Time window"), "route_version": _l("Route version"),
    "value": _l("Value"),
    # Orders and the die bank.
    "lines": _l("Order lines"), "line": _l("Line"), "need_date": _l("Need date"),
    "commit_date": _l("Commit date"), "ship_to": _l("Ship-to"),
    "bank": _l("Into the die bank"), "planned_start": _l("Planned start"),
    # Partner grants.
    "partner": _l("Partner"),
    # Test programs, bin definitions and the fields a program check compares.
    "job_name": _l("Job name"), "job_rev": _l("Program revision"),
    "part_type": _l("Part type"), "pat": _l("PAT bin"),
    "pat_fallout_limit_pct": _l("PAT fallout limit (%)"), "pat_limit_set": _l("PAT limit set"),
    "pat_limit_set_version": _l("PAT limit set version"),
    "sba": _l("SBA"),
    "temperature_tolerance_c": _l("Tolerance (°C)"), "mode_code": _l("Test mode"),
    "temperature": _l("Test temperature"), "hard_bins": _l("Hard bins"),
    "soft_bins": _l("Soft bins"),
}


def field_label(name: str) -> str:
    """The word of a field name in the current language; the name itself when it has none."""
    word = FIELD_LABELS.get(name)
    return name if word is None else str(word)


def field_words(names: Iterable[str]) -> LazyString:
    """Field names as a message's parameter: their words, listed, in the language of
    whoever reads the message (an API answer, a page)."""
    listed = list(names)
    return LazyString(lambda: gettext(", ").join(field_label(name) for name in listed))
