"""The 8D report as a PDF (fpdf2): a complaint as the customer sees it (`present` for the
customer: no staff names, no internal notes, the customer-facing steps D3, D4, D5, D6 and
D8) — the complaint, the failing units and the lots they resolved to, each step's due time,
completion and text, D4's two root causes and D6's verification evidence.

Pure computation: no Flask, no ORM queries. In English, as the industry's 8D reports are;
the core PDF fonts carry Latin-1, so other characters print as ?.
"""

from __future__ import annotations

from typing import Any

from mes.shipping.cocpdf import _at, _Doc, _heading, _start, _table
from mes.shipping.packlabels import latin1

STEP_TITLES = {"D0": "Preparation and emergency response", "D1": "Team",
               "D2": "Problem description", "D3": "Containment",
               "D4": "Root cause (occurrence and escape)", "D5": "Corrective actions",
               "D6": "Implementation and verification", "D7": "Prevention of recurrence",
               "D8": "Closure"}


def _paragraph(doc: _Doc, label: str, text: str | None) -> None:
    doc.set_font("Helvetica", "B", 9)
    doc.cell(0, 5, latin1(label), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 9)
    doc.multi_cell(0, 5, latin1(text or "-"), new_x="LMARGIN", new_y="NEXT")


def report_pdf(shown: dict[str, Any], *, plant: str, zone: str) -> bytes:
    """The 8D report of the complaint `shown` (as `present` shows it to the customer)."""
    number = f"8D-{shown['id']:06d}"
    doc = _start("8D report", number, plant)
    doc.set_font("Helvetica", "", 9)
    state = "closed " + _at(shown["closed_at"], zone) if shown["state"] == "closed" \
        else "open"
    _table(doc, None, [
        ["Customer", f"{shown['customer']} - {shown.get('customer_name', '')}",
         "Report", number],
        ["Your reference", shown["reference"], "Status", state],
        ["Vehicle program", shown.get("vehicle_program") or "-", "Received",
         f"{_at(shown['received_at'], zone)} ({zone})"],
    ], (30, 60, 30, 60))
    _heading(doc, "Problem")
    doc.multi_cell(0, 5, latin1(shown["description"]), new_x="LMARGIN", new_y="NEXT")
    _heading(doc, "Failing units")
    _table(doc, ["Unit as named", "Identified as", "Failure mode", "Count"],
           [[" ".join(u["scan"].split())[:80], u["kind"].replace("_", " "),
             u["failure_mode"], str(u["count"])] for u in shown["units"]],
           (70, 26, 64, 20), {3})
    _heading(doc, "Lots")
    doc.multi_cell(0, 5, latin1(", ".join(shown["lots"]) or "-"), new_x="LMARGIN",
                   new_y="NEXT")
    _heading(doc, "8D")
    _table(doc, ["Step", "Title", "Due", "Done"],
           [[s["step"], STEP_TITLES.get(s["step"], ""), _at(s["due_at"], zone),
             _at(s["done_at"], zone)] for s in shown["eightd"]], (14, 86, 40, 40))
    for step in shown["eightd"]:
        _heading(doc, f"{step['step']} {STEP_TITLES.get(step['step'], '')}")
        if step["step"] == "D4":
            _paragraph(doc, "Why it occurred", step.get("root_cause_occurrence"))
            _paragraph(doc, "Why it escaped", step.get("root_cause_escape"))
        if step["step"] == "D6":
            _paragraph(doc, "Verification", step.get("verification"))
        _paragraph(doc, "Account", step["text"])
    return bytes(doc.output())
