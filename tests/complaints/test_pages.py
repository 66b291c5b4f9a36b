"""The complaint pages: QA records a complaint and works its 8D from the pages (refusals
shown on the page, nothing changed); the customer records one in the portal; the QA home
page lists overdue 8D steps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mes.complaints.models import Complaint, EightDStepRow
from mes.db import utcnow
from tests.complaints.conftest import body
from tests.helpers import as_user, refused


def _form(**kw):
    data = {"reference": "WEB-1", "vehicle_program": "EV-7",
            "received_at": (utcnow() - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M"),
            "description": "Leakage after reflow", "scan-0": "2649 00RS4",
            "failure_mode-0": "leakage", "count-0": "3"}
    data.update(kw)
    return data


def test_qa_records_and_works_a_complaint_on_the_pages(app, session, qa, packed):
    client = as_user(app, qa.user)
    assert client.get("/complaints/new").status_code == 200
    resp = client.post("/complaints/new", data=_form(customer="OEM"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    complaint = session.scalars(select(Complaint)).one()
    assert [link.lot.lot_no for link in complaint.lots] == ["LOT-A"]
    page = client.get(f"/complaints/{complaint.id}").get_data(as_text=True)
    assert "LOT-A" in page and "D5 Corrective actions" in page
    listed = client.get("/complaints/?state=open").get_data(as_text=True)
    assert "WEB-1" in listed
    # D3 was due 24 h after receipt: overdue, on the home page and the overdue list.
    home = client.get("/").get_data(as_text=True)
    assert f'data-overdue="{complaint.id}-D3"' in home
    assert f'data-overdue="{complaint.id}-D5"' not in home
    assert "WEB-1" in client.get("/complaints/?overdue=1").get_data(as_text=True)
    resp = client.post(f"/complaints/{complaint.id}/eightd/D3",
                       data={"text": "3 reels sorted", "done": "1"})
    assert resp.status_code == 303
    assert session.get(EightDStepRow, (complaint.id, "D3")).done_at is not None
    home = client.get("/").get_data(as_text=True)
    assert f'data-overdue="{complaint.id}-D3"' not in home
    # A refusal is shown on the page, nothing changed.
    text = refused(session, lambda: client.post(f"/complaints/{complaint.id}/eightd/D4",
                                                data={"done": "1"}), 409)
    assert "why the failure occurred" in text


def test_an_unresolved_unit_is_named_on_the_form(app, session, qa, packed):
    client = as_user(app, qa.user)
    text = refused(session, lambda: client.post("/complaints/new", data=_form(
        customer="OEM", **{"scan-1": "NOPE-42", "failure_mode-1": "open"})), 422)
    assert "NOPE-42" in text


def test_the_customer_records_a_complaint_in_the_portal(app, session, api, packed):
    customer = api("customer", customer="OEM")
    client = as_user(app, customer.user)
    page = client.get("/portal/complaints/new").get_data(as_text=True)
    assert 'name="customer"' not in page
    text = refused(session, lambda: client.post("/portal/complaints/new", data=_form(
        **{"scan-0": "LOT-I"})), 422)
    assert "LOT-I" in text
    resp = client.post("/portal/complaints/new", data=_form())
    assert resp.status_code == 303
    complaint = session.scalars(select(Complaint)).one()
    assert complaint.customer.code == "OEM"
    page = client.get(f"/portal/complaints/{complaint.id}").get_data(as_text=True)
    assert "D3 Containment" in page and "D1 Team" not in page
    assert "WEB-1" in client.get("/portal/complaints").get_data(as_text=True)


def test_operators_have_no_complaint_pages(app, api, qa, packed):
    operator = api("operator")
    client = as_user(app, operator.user)
    cid = qa.post("/complaints", json=body()).get_json()["id"]
    for path in ("/complaints/", "/complaints/new", f"/complaints/{cid}"):
        assert client.get(path).status_code == 403, path
    assert "Overdue 8D steps" not in client.get("/").get_data(as_text=True)
