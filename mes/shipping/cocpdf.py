"""The certificate of conformance as a PDF (fpdf2): the same `Certificate` the HTML page
shows — customer, purchase order, products and their qualification, the pack units shipped
with their date codes and lots, the lots with their date codes, the test summary per test
step, the statement and a signature block — on A4.

Pure computation: no Flask, no ORM queries (it reads the gathered certificate). The PDF is a
document that travels with the goods, in English as the industry's certificates are; the
core PDF fonts carry Latin-1, so other characters print as ?.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.fonts import FontFace

from mes.shipping.packlabels import latin1

if TYPE_CHECKING:
    from mes.shipping.coc import Certificate, CocStep

SBA_WORDS = {"ok": "within limits", "level1": "level 1 breach (engineering review)",
             "level2": "level 2 breach (MRB)",
             "insufficient_history": "not judged (too little history)"}
STATEMENT = ("We certify that the parts listed above were assembled and tested according to "
             "the routes named, meet the applicable specifications and purchase order "
             "requirements, and were free of open holds when shipped. Records are kept and "
             "available on request.")
TEST_NOTE = ("Per test step, the test insertions of the shipped lots and of the lots they came "
             "from: units tested in the first pass, first-pass yield, good after the retests "
             "of failed units and final yield (good over units tested). PAT names the static "
             "limit set the test program carried, the dynamic re-screens done, the good parts "
             "left outside the limits (escapes) and the parts the tester removed to the PAT "
             "bin. SBA shows the worst verdict among the lots.")
DATE_CODE_NOTE = "Date code: ISO year and week (YYWW), as on the labels."
HEADING = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))


def _at(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(value: float | None) -> str:
    return f"{value:.2f} %" if value is not None else "-"


def pat_words(step: CocStep) -> str:
    """What PAT did at a test step, in the certificate's words (nothing that was not done)."""
    if not step.pat_applied:
        return "not applied"
    sets = sorted(step.pat_limit_sets)
    return "; ".join([
        f"static limit set {', '.join(sets)}" if sets else "no static limits",
        f"dynamic re-screen on {step.pat_dynamic} of {step.lots} lot(s)"
        if step.pat_dynamic else "no dynamic re-screen",
        f"{step.pat_escapes} escape(s)",
        f"{_n(step.pat_removed)} part(s) removed to the PAT bin"])


class _Doc(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text = title
        self.set_auto_page_break(True, margin=18)
        self.set_margins(15, 15, 15)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 5, latin1(f"{self.title_text} - page {self.page_no()}/{{nb}}"),
                  align="C")


def _start(heading: str, number: str, plant: str) -> _Doc:
    """A document's first page: the plant, then `heading` large; "`heading` `number`" is
    its PDF title and every page's footer."""
    title = f"{heading} {number}"
    doc = _Doc(title)
    doc.set_title(latin1(title))
    doc.set_author(latin1(plant))
    doc.add_page()
    doc.set_font("Helvetica", "", 10)
    doc.cell(0, 6, latin1(plant), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "B", 18)
    doc.cell(0, 10, latin1(heading), new_x="LMARGIN", new_y="NEXT")
    return doc


def _heading(doc: _Doc, text: str) -> None:
    doc.ln(4)
    doc.set_font("Helvetica", "B", 12)
    doc.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 9)


def _table(doc: _Doc, header: list[str] | None, rows: list[list[str]],
           widths: tuple[int, ...], right: set[int] | None = None) -> None:
    right = right or set()
    align = tuple("RIGHT" if i in right else "LEFT" for i in range(len(widths)))
    with doc.table(col_widths=widths, text_align=align, headings_style=HEADING,
                   first_row_as_headings=header is not None, line_height=5,
                   padding=1) as table:
        for row in ([header] if header else []) + rows:
            cells = table.row()
            for value in row:
                cells.cell(latin1(value))


def coc_pdf(cert: Certificate, *, plant: str, zone: str) -> bytes:
    """The certificate `cert` as a PDF; times in the plant's time zone `zone`."""
    sh = cert.shipment
    number = f"COC-{sh.id:06d}"
    doc = _start("Certificate of conformance", number, plant)
    doc.set_font("Helvetica", "", 10)
    doc.cell(0, 6, latin1(f"Certificate {number} - issued {_at(cert.issued_at, zone)} "
                          f"({zone})"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(2)
    doc.set_font("Helvetica", "", 9)
    _table(doc, None, [
        ["Customer", f"{sh.customer.code} - {sh.customer.name}", "Shipment", str(sh.id)],
        ["Purchase order", sh.po, "Shipped", f"{_at(sh.shipped_at, zone)} ({zone})"],
        ["Vehicle program", sh.vehicle_program or "-", "Total quantity", _n(cert.quantity)],
    ], (30, 60, 30, 60))

    _heading(doc, "Products and qualification")
    rows = []
    for p in cert.products:
        q = p.qualification
        if q is None:
            qual = "none on record"
        else:
            qual = (f"{q.standard} grade {q.grade}: "
                    f"{'passed' if q.status == 'passed' else 'failed'}"
                    + (f", report {q.report}" if q.report else "")
                    + (f", BOM revision {p.bom_revision}" if p.bom_revision else "")
                    + f" ({q.created_at:%Y-%m-%d})")
        rows.append([p.code, p.name, p.package,
                     str(p.aec_grade) if p.aec_grade is not None else "-", p.msl,
                     _n(p.quantity), qual])
    _table(doc, ["Part number", "Description", "Package", "AEC grade", "MSL", "Quantity",
                 "Qualification"], rows, (24, 34, 20, 14, 10, 20, 58), {5})

    if cert.pcns:
        _heading(doc, "Product change notifications")
        _table(doc, ["PCN", "Change", "BOM revision", "Sent", "Effective", "Status"],
               [[f"PCN {pcn.id}", pcn.change.title, pcn.change.bom_revision or "-",
                 f"{pcn.sent_at:%Y-%m-%d}", pcn.effective_date.isoformat(),
                 pcn.status + (f" ({pcn.decided_at:%Y-%m-%d})" if pcn.decided_at else "")]
                for pcn in cert.pcns], (20, 60, 24, 24, 24, 28))

    if cert.pack_units:
        _heading(doc, "Pack units")
        _table(doc, ["Pack unit", "Kind", "Part number", "Quantity", "Date codes", "Lots"],
               [[u.id, u.kind, u.product, _n(u.quantity), " ".join(u.date_codes),
                 ", ".join(u.lots)] for u in cert.pack_units],
               (26, 16, 26, 20, 26, 66), {3})

    _heading(doc, "Lots")
    _table(doc, ["Lot", "Part number", "Fab lot", "Route", "Date code", "Quantity"],
           [[lot.lot_no, lot.product, lot.fab_lot, f"{lot.route} v{lot.route_version}",
             lot.date_code, _n(lot.quantity)] for lot in cert.lots],
           (36, 26, 30, 30, 22, 36), {5})
    doc.set_font("Helvetica", "I", 8)
    doc.multi_cell(0, 4, DATE_CODE_NOTE, new_x="LMARGIN", new_y="NEXT")

    _heading(doc, "Test summary")
    if cert.steps:
        _table(doc, ["Test step", "Lots", "Retests", "Tested", "First-pass yield", "Good",
                     "Final yield", "PAT", "SBA"],
               [[st.step, str(st.lots), str(st.retests), _n(st.tested), _pct(st.first_pass_yield),
                 _n(st.good), _pct(st.yield_pct), pat_words(st),
                 SBA_WORDS.get(st.sba_worst, st.sba_worst) if st.sba_worst else "-"]
                for st in cert.steps],
               (16, 10, 13, 18, 17, 18, 17, 41, 30), {1, 2, 3, 4, 5, 6})
        doc.set_font("Helvetica", "I", 8)
        doc.multi_cell(0, 4, TEST_NOTE, new_x="LMARGIN", new_y="NEXT")
    else:
        doc.cell(0, 6, "No test data on record for these lots.", new_x="LMARGIN",
                 new_y="NEXT")

    doc.ln(6)
    doc.set_font("Helvetica", "", 9)
    doc.multi_cell(0, 5, STATEMENT, new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    for caption in ("Quality representative", "Signature", "Date"):
        doc.cell(50, 10, caption)
        doc.cell(0, 10, "_" * 50, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())
