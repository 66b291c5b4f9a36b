"""The certificate of conformance: its numbers checked by hand, the page, the API's HTML
answer and customer isolation."""

from __future__ import annotations

import re

from mes.catalog import services as cat
from tests.helpers import pdf_streams, sign_in
from tests.shipping.test_shipments import ship


def untested(session, lot):
    """`lot` with its test runs voided: no test data on record."""
    from sqlalchemy import select

    from mes.testfloor import programs
    from mes.testfloor.models import TestRun
    for run in session.scalars(select(TestRun).where(TestRun.lot_id == lot.id,
                                                     TestRun.voided_at.is_(None))):
        programs.void_run(session, "qa", run, reason="not this lot's")
    session.commit()
    return lot


def _cell(html: str, row_attr: str, key: str, col: str) -> str:
    row = re.search(rf'<tr data-{row_attr}="{re.escape(key)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, (row_attr, key)
    cell = re.search(rf'data-{col}>(.*?)</td>', row.group(1), re.S)
    assert cell, (key, col)
    return re.sub(r"\s+", " ", cell.group(1)).strip()


def test_coc_lists_lots_date_codes_routes_tests_and_qualification(session, tested,
                                                                   make_user, login):
    # LOT-A: 100 units at FT, 96 good; LOT-B: 50 units, 45 good. Each leaves FT with its
    # good units, as its closed insertion proposes: 141 units ship.
    shipment = ship(session, [tested("LOT-A", 100, 96).lot_no, tested("LOT-B", 50, 45).lot_no],
                    vehicle_program="EV-7")
    resp = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.startswith("<!doctype html>")
    assert "<td data-total>141</td>" in html
    assert f"COC-{shipment.id:06d}" in html
    for lot, qty in (("LOT-A", "96"), ("LOT-B", "45")):
        assert _cell(html, "lot", lot, "quantity") == qty
        assert _cell(html, "lot", lot, "date-code") == "2610"
        assert _cell(html, "lot", lot, "route") == "QFN v1"
    # FT: 150 tested, 141 good, 141 / 150 = 94.00 %; bin summaries carry no PAT; SBA had
    # too little history to judge.
    assert _cell(html, "step", "FT", "tested") == "150"
    assert _cell(html, "step", "FT", "good") == "141"
    assert _cell(html, "step", "FT", "yield") == "94.00 %"
    assert _cell(html, "step", "FT", "pat") == "not applied"
    assert _cell(html, "step", "FT", "sba") == "not judged (too little history)"
    assert re.findall(r'<tr data-step="([^"]+)">', html) == ["FT"]
    assert _cell(html, "product", "P1", "qualification").startswith(
        "AEC-Q100 grade 1: passed, report <span class=\"mono\">QR-1</span>")
    assert "Quality representative" in html and "Signature" in html


def test_coc_sums_a_lots_insertion_first_pass_and_retest(session, tested, receive,
                                                          make_user, login):
    from mes.floor.services import get_lot
    from mes.testfloor import insertions
    from mes.testfloor import services as testfloor
    from tests.floor.helpers import advance, track_in, track_out_as_proposed

    lot = receive(40, lot_no="LOT-R")
    advance(session, lot, 2)
    # P1: 40 units, 30 good; R1 retests the 10 failures, 8 pass.
    testfloor.record_bins(session, "op1", lot, bins=[{"bin": 1, "count": 30, "passed": True},
                                                     {"bin": 7, "count": 10, "passed": False}])
    testfloor.record_bins(session, "op1", lot, bins=[{"bin": 1, "count": 8, "passed": True},
                                                     {"bin": 7, "count": 2, "passed": False}],
                          pass_="retest")
    session.commit()
    lot = get_lot(session, "LOT-R")
    track_in(session, lot)
    track_out_as_proposed(session, lot, {**insertions.close(session, "op1", lot, "FT").proposal})
    advance(session, lot, 1)
    shipment = ship(session, ["LOT-R"])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    # Units are those of P1 (the retest adds none): 40; first-pass yield 30 / 40 = 75 %;
    # good 30 + 8 = 38, final yield 38 / 40 = 95 %.
    assert (_cell(html, "step", "FT", "lots"), _cell(html, "step", "FT", "retests"),
            _cell(html, "step", "FT", "tested"), _cell(html, "step", "FT", "first-pass-yield"),
            _cell(html, "step", "FT", "good"), _cell(html, "step", "FT", "yield")) == (
        "1", "1", "40", "75.00 %", "38", "95.00 %")


def test_coc_sums_the_insertions_of_the_lots_merged_into_a_shipped_lot(
        session, receive, qualified, make_user, login):
    from mes.floor import services as floor
    from mes.testfloor import insertions
    from mes.testfloor import services as testfloor
    from tests.floor.helpers import advance, track_in, track_out_as_proposed

    first, second = receive(60, lot_no="LOT-M1"), receive(40, lot_no="LOT-M2")
    for lot in (first, second):
        advance(session, lot, 2)
    # LOT-M1: P1 60 units, 54 good, R1 of the 6 failures, 4 pass. LOT-M2: P1 40, 39 good.
    testfloor.record_bins(session, "op1", first, bins=[
        {"bin": 1, "count": 54, "passed": True}, {"bin": 7, "count": 6, "passed": False}])
    testfloor.record_bins(session, "op1", first, bins=[
        {"bin": 1, "count": 4, "passed": True}, {"bin": 7, "count": 2, "passed": False}],
        pass_="retest")
    testfloor.record_bins(session, "op1", second, bins=[
        {"bin": 1, "count": 39, "passed": True}, {"bin": 7, "count": 1, "passed": False}])
    for lot in (first, second):
        track_in(session, lot)
        track_out_as_proposed(session, lot, insertions.close(session, "op1", lot, "FT").proposal)
    merged = floor.merge_lots(session, "op1", [first, second])
    session.commit()
    advance(session, merged, 1)
    # The good parts of both: 58 + 39.
    assert merged.state == "completed" and merged.quantity == 97
    shipment = ship(session, ["LOT-M1"])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    # Both insertions: 100 units; first pass 54 + 39 = 93; good 93 + 4 = 97.
    assert (_cell(html, "step", "FT", "lots"), _cell(html, "step", "FT", "tested"),
            _cell(html, "step", "FT", "first-pass-yield"), _cell(html, "step", "FT", "good"),
            _cell(html, "step", "FT", "yield")) == ("2", "100", "93.00 %", "97", "97.00 %")
    assert _cell(html, "lot", "LOT-M1", "quantity") == "97"


def test_coc_says_what_pat_did_parts_removed_to_the_pat_bin(session, receive, qualified,
                                                            make_user, login, plant):
    from mes.catalog.services import get_product
    from mes.floor.services import get_lot
    from mes.testfloor import programs
    from mes.testfloor import services as testfloor
    from tests.floor.helpers import advance

    programs.set_bins(session, "engineer", get_product(session, "P1"), step="FT", bins=[
        {"bin": 1, "kind": "hard", "passed": True, "name": "Good", "sba": False, "pat": False},
        {"bin": 7, "kind": "hard", "passed": False, "name": "Open", "sba": True, "pat": False},
        {"bin": 9, "kind": "hard", "passed": False, "name": "PAT", "sba": False, "pat": True}],
        pat_fallout_limit_pct=10)  # 3 of 50 units (6 %) is within it: no PAT hold
    lot = receive(50, lot_no="LOT-P")
    advance(session, lot, 2)
    testfloor.record_bins(session, "op1", lot, bins=[{"bin": 1, "count": 46, "passed": True},
                                                     {"bin": 7, "count": 1, "passed": False},
                                                     {"bin": 9, "count": 3, "passed": False}])
    session.commit()
    advance(session, get_lot(session, "LOT-P"), 2)
    shipment = ship(session, ["LOT-P"])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    # No limit set in a program, no re-screen: only the 3 parts in the PAT bin were done.
    assert _cell(html, "step", "FT", "pat") == (
        "no static limits; no dynamic re-screen; 0 escape(s); 3 part(s) removed to the PAT bin")


def test_coc_of_an_unqualified_product_without_tests_says_so(session, completed, make_user,
                                                              login):
    shipment = ship(session, [untested(session, completed("LOT-I", product="P2",
                                                          customer="IND")).lot_no],
                    customer="IND")
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    assert "No test data on record for these lots." in html
    assert _cell(html, "product", "P2", "qualification") == "none on record"


def test_coc_api_answers_html_and_customers_get_their_own_only(api, session, tested,
                                                               completed):
    own = ship(session, [tested("LOT-A", 100, 96).lot_no])
    other = ship(session, [completed("LOT-I", product="P2", customer="IND").lot_no],
                 customer="IND")
    resp = api("qa").get(f"/shipments/{own.id}/coc")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert 'data-lot="LOT-A"' in resp.get_data(as_text=True)
    oem = api("customer", customer="OEM")
    assert oem.get(f"/shipments/{own.id}/coc").status_code == 200
    resp = oem.get(f"/shipments/{other.id}/coc")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")
    assert api("operator").get(f"/shipments/{own.id}/coc").status_code == 403
    assert api("planner").get("/shipments/999999/coc").status_code == 404


def test_coc_shows_the_latest_qualification_even_when_failed(session, tested, make_user,
                                                             login):
    shipment = ship(session, [tested("LOT-A", 10, 10).lot_no])
    cat.add_qualification(session, "eng", cat.get_product(session, "P1"), {
        "standard": "AEC-Q100", "grade": 1, "report": "QR-2", "tests": [
            {"test": "HTOL", "group": "B", "sample_size": 77, "lots": 3, "fails": 1}]})
    session.commit()
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    assert "failed, report <span class=\"mono\">QR-2</span>" in _cell(
        html, "product", "P1", "qualification")


def test_openapi_describes_the_coc_answer_as_200(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    responses = doc["paths"]["/api/v1/shipments/{shipment_id}/coc"]["get"]["responses"]
    assert "200" in responses and "204" not in responses and "404" in responses


def test_coc_download_is_a_file_with_its_style_inside(session, tested, make_user, login):
    shipment = ship(session, [tested("LOT-A", 100, 96).lot_no])
    client = login(make_user("planner"))
    assert f"/shipments/{shipment.id}/coc?download=1" in client.get(
        f"/shipments/{shipment.id}").get_data(as_text=True)
    resp = client.get(f"/shipments/{shipment.id}/coc?download=1")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="coc-{shipment.id}.html"')
    html = resp.get_data(as_text=True)
    assert "<style>" in html and ".coc > .actions" in html and "stylesheet" not in html
    assert _cell(html, "step", "FT", "yield") == "96.00 %"
    assert "data-print" not in html  # no buttons in the kept file


def test_coc_and_portal_group_the_digits_of_large_quantities(session, tested, make_user,
                                                             login, app):
    from tests.helpers import as_user

    shipment = ship(session, [tested("LOT-BIG", 12_000, 11_880).lot_no])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    assert "<td data-total>11,880</td>" in html
    assert _cell(html, "lot", "LOT-BIG", "quantity") == "11,880"
    assert _cell(html, "step", "FT", "tested") == "12,000"
    assert _cell(html, "step", "FT", "good") == "11,880"
    portal = as_user(app, make_user("customer", customer="OEM")).get(
        f"/portal/shipments/{shipment.id}").get_data(as_text=True)
    assert "11,880" in portal and "11880" not in portal


def _at_evil(app, user):
    """A client of `user` whose requests say `Host: evil.example` (its session cookie is
    set for that host, so the requests carry it)."""
    client = app.test_client()
    sign_in(app, client, user, base_url="http://evil.example")
    return client


def test_coc_links_do_not_come_from_the_host_header(session, tested, make_user, app,
                                                    token_for, client):
    """`Host: evil.example` must not put evil.example into the certificate's style sheet
    and script links: on the shipping page, the portal and the API, the links are relative
    to whichever server answered."""
    shipment = ship(session, [tested("LOT-HOST", 100, 96).lot_no])
    evil = "http://evil.example"
    answers = {
        "page": _at_evil(app, make_user("planner")).get(f"/shipments/{shipment.id}/coc",
                                                        base_url=evil),
        "portal": _at_evil(app, make_user("customer", customer="OEM")).get(
            f"/portal/shipments/{shipment.id}/coc", base_url=evil),
        "api": client.get(f"/api/v1/shipments/{shipment.id}/coc", base_url=evil,
                          headers=token_for(make_user("qa"))),
    }
    for where, resp in answers.items():
        assert resp.status_code == 200, where
        assert resp.request.host == "evil.example", where
        html = resp.get_data(as_text=True)
        assert "evil.example" not in html, where
        links = re.findall(r'(?:href|src)="([^"]+)"', html)
        assert "/static/css/shipping.css" in links and "/static/js/shipping.js" in links, where
        assert not [link for link in links if "//" in link], where


def pdf_text(body: bytes) -> str:
    """The text drawn by a PDF of fpdf2's core fonts: the strings of every content stream's
    text operators, joined."""
    out = [m.decode("latin-1") for data in pdf_streams(body)
           for m in re.findall(rb"\((.*?)(?<!\\)\) ?Tj", data, re.S)]
    return "\n".join(out).replace("\\(", "(").replace("\\)", ")")


def test_coc_pdf_lists_lots_date_codes_tests_and_isolation(api, session, tested, completed,
                                                           make_user, login):
    own = ship(session, [tested("LOT-A", 100, 96).lot_no, tested("LOT-B", 50, 45).lot_no],
               vehicle_program="EV-7")
    other = ship(session, [completed("LOT-I", product="P2", customer="IND").lot_no],
                 customer="IND")
    resp = api("qa").get(f"/shipments/{own.id}/coc?format=pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    body = resp.get_data()
    assert body.startswith(b"%PDF-")
    text = pdf_text(body)
    for word in ("Certificate of conformance", f"COC-{own.id:06d}", "LOT-A", "LOT-B", "2610",
                 "QFN v1", "150", "94.00 %", "AEC-Q100", "QR-1", "EV-7",
                 "Quality representative"):
        assert word in text, word
    # Asking for a PDF in Accept gets one too; the HTML stays the default.
    assert api("qa").get(f"/shipments/{own.id}/coc", headers={
        "Accept": "application/pdf"}).mimetype == "application/pdf"
    assert api("qa").get(f"/shipments/{own.id}/coc").mimetype == "text/html"
    resp = api("qa").get(f"/shipments/{own.id}/coc?format=doc")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (422, "invalid")
    # Customers: their own only.
    oem = api("customer", customer="OEM")
    assert oem.get(f"/shipments/{own.id}/coc?format=pdf").mimetype == "application/pdf"
    resp = oem.get(f"/shipments/{other.id}/coc?format=pdf")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")
    # The shipment page and the portal link it and answer the same.
    planner = login(make_user("planner"))
    assert f"/shipments/{own.id}/coc?format=pdf" in planner.get(
        f"/shipments/{own.id}").get_data(as_text=True)
    resp = planner.get(f"/shipments/{own.id}/coc?format=pdf")
    assert resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"] == f'inline; filename="coc-{own.id}.pdf"'
    customer = login(make_user("customer", customer="OEM", username="oem1"))
    assert customer.get(f"/portal/shipments/{own.id}/coc?format=pdf").mimetype == (
        "application/pdf")
    assert customer.get(f"/portal/shipments/{other.id}/coc?format=pdf").status_code == 404


def test_coc_pdf_without_tests_and_with_letters_beyond_latin1(session, completed, make_user,
                                                               login):
    from mes.catalog.models import Customer

    shipment = ship(session, [untested(session, completed("LOT-I", product="P2",
                                                          customer="IND")).lot_no],
                    customer="IND")
    session.get(Customer, shipment.customer_id).name = "工业客户"
    session.commit()
    body = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc?format=pdf").data
    text = pdf_text(body)
    assert "No test data on record for these lots." in text
    assert "none on record" in text and "IND - ????" in text


def test_coc_leaves_a_voided_run_out(session, tested, receive, make_user, login):
    from mes.floor.services import get_lot
    from mes.testfloor import programs
    from mes.testfloor import services as testfloor
    from tests.floor.helpers import advance

    lot = receive(40, lot_no="LOT-V")
    advance(session, lot, 2)
    testfloor.record_bins(session, "op1", lot, bins=[{"bin": 1, "count": 30, "passed": True},
                                                     {"bin": 7, "count": 10, "passed": False}])
    wrong = testfloor.record_bins(session, "op1", lot, pass_="resume", bins=[
        {"bin": 1, "count": 38, "passed": True}, {"bin": 7, "count": 2, "passed": False}])
    # The later run was another lot's: voided, the certificate takes the run before it.
    programs.void_run(session, "qa", wrong, reason="another lot's summary")
    session.commit()
    advance(session, get_lot(session, "LOT-V"), 2)
    shipment = ship(session, ["LOT-V"])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    assert (_cell(html, "step", "FT", "tested"), _cell(html, "step", "FT", "good"),
            _cell(html, "step", "FT", "yield")) == ("40", "30", "75.00 %")
