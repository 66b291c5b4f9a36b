"""Shipping pages: the list with filters and pages, the new-shipment form (refusals shown,
nothing changed), the detail, labels (HTML and ZPL) and the certificate of conformance."""

from __future__ import annotations

import re

from sqlalchemy import select

from mes.shipping.models import Shipment
from tests.floor.helpers import hold
from tests.shipping.test_shipments import ship, ship_state, state_of


def _planner(make_user, login):
    return login(make_user("planner"))


def _rows(html: str, attr: str) -> list[str]:
    return re.findall(rf'data-{attr}="([^"]+)"', html)


# --- list ------------------------------------------------------------------------------

def test_list_shows_shipments_newest_first_filters_and_pages(session, completed, make_user,
                                                             login):
    first = ship(session, [completed("LOT-A").lot_no], vehicle_program="EV-7")
    second = ship(session, [completed("LOT-B").lot_no])
    other = ship(session, [completed("LOT-I", product="P2", customer="IND").lot_no],
                 customer="IND")
    client = _planner(make_user, login)
    html = client.get("/shipments").get_data(as_text=True)
    assert _rows(html, "shipment") == [str(other.id), str(second.id), str(first.id)]
    by_customer = client.get("/shipments?customer=OEM").get_data(as_text=True)
    assert _rows(by_customer, "shipment") == [str(second.id), str(first.id)]
    assert _rows(client.get("/shipments?lot=LOT-A").get_data(as_text=True),
                 "shipment") == [str(first.id)]
    assert _rows(client.get("/shipments?vehicle_program=EV-7").get_data(as_text=True),
                 "shipment") == [str(first.id)]
    assert _rows(client.get("/shipments?po=NOPE").get_data(as_text=True), "shipment") == []
    page = client.get("/shipments?limit=2").get_data(as_text=True)
    assert _rows(page, "shipment") == [str(other.id), str(second.id)]
    next_url = re.search(r'href="([^"]+)" rel="next"', page).group(1).replace("&amp;", "&")
    assert _rows(client.get(next_url).get_data(as_text=True), "shipment") == [str(first.id)]


def test_list_refuses_a_bad_date_filter_with_422(make_user, login, plant):
    resp = _planner(make_user, login).get("/shipments?since=yesterday")
    assert resp.status_code == 422
    assert "Not a valid date." in resp.get_data(as_text=True)


def test_shipping_pages_are_for_plant_roles(session, completed, make_user, login, client):
    shipment = ship(session, [completed("LOT-A").lot_no])
    login(make_user("customer", customer="OEM"))
    for path in ("/shipments", f"/shipments/{shipment.id}", "/shipments/new",
                 f"/shipments/{shipment.id}/coc", f"/shipments/{shipment.id}/labels"):
        assert client.get(path).status_code == 403, path


# --- new shipment ----------------------------------------------------------------------

def test_new_shipment_form_lists_completed_lots_with_why_they_may_not_ship(
        session, completed, receive, make_user, login):
    completed("LOT-A")
    hold(session, completed("LOT-H"))
    receive(10, lot_no="LOT-Q")  # queued: not offered
    completed("LOT-I", product="P2", customer="IND")  # another customer's: not offered
    html = _planner(make_user, login).get("/shipments/new?customer=OEM").get_data(
        as_text=True)
    assert _rows(html, "lot") == ["LOT-A", "LOT-H"]
    assert 'data-code="lot_on_hold"' in html
    assert html.count('data-code="') == 1


def test_new_shipment_form_ships_the_checked_lots(session, completed, make_user, login):
    completed("LOT-A", quantity=70)
    completed("LOT-B")
    client = _planner(make_user, login)
    resp = client.post("/shipments/new", data={"customer": "OEM", "po": "PO-9",
                                               "vehicle_program": "EV-7", "lots": ["LOT-A"]})
    assert resp.status_code == 303
    shipment = session.scalars(select(Shipment)).one()
    assert resp.location.endswith(f"/shipments/{shipment.id}")
    assert (shipment.po, shipment.vehicle_program, [r.quantity for r in shipment.lots]) == (
        "PO-9", "EV-7", [70])
    assert (state_of(session, "LOT-A"), state_of(session, "LOT-B")) == ("shipped", "completed")
    page = client.get(resp.location).get_data(as_text=True)
    assert "created: 1 lot(s)" in page and 'data-lot="LOT-A"' in page


def test_new_shipment_refusal_is_shown_and_nothing_changes(session, completed, make_user,
                                                            login):
    completed("LOT-A")
    hold(session, completed("LOT-H"))
    client = _planner(make_user, login)
    before = ship_state(session)
    resp = client.post("/shipments/new", data={"customer": "OEM", "po": "PO-9",
                                               "lots": ["LOT-A", "LOT-H"]})
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert 'data-refusal="lot_on_hold"' in html and "Nothing was shipped." in html
    assert "Lot LOT-H is on hold" in html
    # The form keeps what was typed and checked.
    assert 'value="PO-9"' in html and re.search(r'value="LOT-A" id="lot-\d+" checked', html)
    assert ship_state(session) == before


def test_new_shipment_without_po_or_lots_is_422_and_changes_nothing(session, completed,
                                                                     make_user, login):
    completed("LOT-A")
    client = _planner(make_user, login)
    before = ship_state(session)
    resp = client.post("/shipments/new", data={"customer": "OEM", "po": "", "lots": []})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert html.count('class="error-text"') >= 1 and "lots" in html
    resp = client.post("/shipments/new", data={"customer": "NOPE", "po": "P", "lots": ["X"]})
    assert resp.status_code == 422
    assert "Unknown customer NOPE." in resp.get_data(as_text=True)
    assert ship_state(session) == before


def test_malformed_lot_number_is_named_by_its_position(session, completed, make_user,
                                                        login):
    completed("LOT-A")
    client = _planner(make_user, login)
    before = ship_state(session)
    resp = client.post("/shipments/new", data={"customer": "OEM", "po": "P",
                                               "lots": ["LOT-A", "bad lot!"]})
    assert resp.status_code == 422
    assert re.search(r"<code>lots</code>: item 2: \S", resp.get_data(as_text=True))
    assert ship_state(session) == before


def test_another_customers_lot_is_refused_as_wrong_customer(session, completed, make_user,
                                                            login):
    completed("LOT-I", product="P2", customer="IND")
    client = _planner(make_user, login)
    before = ship_state(session)
    resp = client.post(
        "/shipments/new", data={"customer": "OEM", "po": "P", "lots": ["LOT-I"]})
    assert resp.status_code == 409
    assert 'data-refusal="wrong_customer"' in resp.get_data(as_text=True)
    assert ship_state(session) == before


# --- detail, labels -------------------------------------------------------------------

def test_detail_shows_lots_quantities_and_date_codes(session, tested, make_user, login):
    shipment = ship(session, [tested("LOT-A", 100, 96).lot_no, tested("LOT-B", 50, 45).lot_no],
                    vehicle_program="EV-7")
    html = _planner(make_user, login).get(f"/shipments/{shipment.id}").get_data(as_text=True)
    assert _rows(html, "lot") == ["LOT-A", "LOT-B"]
    # Each lot left FT with its good units, as its closed insertion proposed.
    assert '<dd data-total>141</dd>' in html
    assert html.count('<td class="mono">2610</td>') == 2
    assert "EV-7" in html and "PO-1" in html


def test_detail_of_an_unknown_shipment_is_404(make_user, login, plant):
    assert _planner(make_user, login).get("/shipments/999999").status_code == 404


def test_labels_page_has_a_reel_label_per_lot_and_a_carton_label_with_qr_codes(
        session, tested, make_user, login):
    shipment = ship(session, [tested("LOT-A", 100, 96).lot_no, tested("LOT-B", 50, 45).lot_no])
    html = _planner(make_user, login).get(f"/shipments/{shipment.id}/labels").get_data(
        as_text=True)
    assert _rows(html, "kind") == ["reel", "reel", "carton"]
    assert html.count("<svg") == 3
    assert _rows(html, "field") == ["part", "quantity", "lot", "date_code", "msl"] * 3
    reel = html.split('data-kind="reel"')[1]
    for value in ('data-field="part">P1<', 'data-field="quantity">96<',
                  'data-field="lot">LOT-A<', 'data-field="date_code">2610<',
                  'data-field="msl">3<'):
        assert value in reel
    carton = html.split('data-kind="carton"')[1]
    assert 'data-field="quantity">141<' in carton and 'data-field="lot">LOT-A, LOT-B<' in carton
    assert "QR code: [)&gt;␞06␝KPO-1␝1PP1␝Q96␝9D2610␝1TLOT-A␞␄" in html


def test_zpl_download_has_each_label_with_its_fields_and_a_qr(session, tested, make_user,
                                                               login):
    shipment = ship(session, [tested("LOT-A", 100, 96).lot_no])
    resp = _planner(make_user, login).get(f"/shipments/{shipment.id}/labels.zpl")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="shipment-{shipment.id}-labels.zpl"')
    text = resp.get_data(as_text=True)
    jobs = re.findall(r"\^XA.*?\^XZ", text, re.S)
    assert len(jobs) == 2  # the reel and the carton
    for job in jobs:
        for value in ("^FDP1^FS", "^FD96^FS", "^FDLOT-A^FS", "^FD2610^FS", "^FD3^FS"):
            assert value in job
        assert "^BQN,2,5^FH_^FDMA,[)>_1E06_1DKPO-1_1D1PP1_1DQ96_1D9D2610_1D1TLOT-A_1E_04^FS" \
            in job
