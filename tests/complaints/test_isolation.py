"""Customers and complaints: each customer's users see their own complaints only (another
customer's is a 404 on every complaint endpoint and page, derived from the URL map so that
later endpoints are covered too), never the plant's side (staff names, internal notes, the
steps they do not see), and never another customer's lots held by a containment run for
their complaint."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from mes.complaints import services
from mes.complaints.models import Complaint
from mes.trace import services as trace
from tests.complaints.conftest import body
from tests.helpers import as_user, database_state, pdf_streams

_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
SECRETS = ("SECRET-NOTE-7", "INTERNAL-NOTES-9", "quinn-qa", "olga-qa")


def _complaints(session, api, qa):
    """A complaint of OEM's (on LOT-A) and one of IND's (on LOT-I), steps written with
    internal notes and owners; OEM's has a containment that also held IND's lot."""
    oem = qa.post("/complaints", json=body()).get_json()
    ind = qa.post("/complaints", json=body(customer="IND", reference="IND-SECRET-REF",
                                           vehicle_program="IND-PROGRAM",
                                           units=[{"scan": "LOT-I", "failure_mode": "short",
                                                   "count": 1}])).get_json()
    other = api("qa", username="olga-qa")
    for cid in (oem["id"], ind["id"]):
        for step in ("D3", "D4", "D1"):
            resp = qa.patch(f"/complaints/{cid}/eightd/{step}", json={
                "owner": other.user.username, "text": f"{step} for the customer",
                "internal_note": "SECRET-NOTE-7"})
            assert resp.status_code == 200, resp.get_json()
        session.get(Complaint, cid).internal_notes = "INTERNAL-NOTES-9"
    done = trace.contain(session, "quinn-qa", reason="H-ENG", comment="both",
                         match={"lots": ["LOT-A", "LOT-I"]})
    services.link_containment(session, "quinn-qa", session.get(Complaint, oem["id"]),
                              done.id)
    session.commit()
    return oem["id"], ind["id"]


def _rules(app: Flask):
    return [rule for rule in app.url_map.iter_rules() if "complaint_id" in rule.arguments]


def test_another_customers_complaint_is_404_everywhere(app, session, api, qa, packed):
    own, foreign = _complaints(session, api, qa)
    customer = api("customer", customer="OEM")
    client = as_user(app, customer.user)
    before = database_state(session)
    rules = _rules(app)
    assert len(rules) >= 7
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = _ARG.sub(lambda m: str(foreign) if m.group(2) == "complaint_id" else "D3",
                            rule.rule)
            kw = {"json": {}} if path.startswith("/api/") and method != "GET" else {}
            if path.startswith("/api/"):
                resp = client.open(path, method=method, headers=customer.headers, **kw)
            else:
                resp = client.open(path, method=method, data={})
            assert resp.status_code in (403, 404), (method, path, resp.status_code)
            text = resp.get_data(as_text=True)
            assert "IND-SECRET-REF" not in text and "LOT-I" not in text, (method, path)
    assert database_state(session) == before
    # Their own answers (the test above is not vacuous).
    for path in (f"/portal/complaints/{own}", f"/portal/complaints/{own}/8d.pdf",
                 "/portal/complaints"):
        assert client.get(path).status_code == 200, path
    assert customer.get(f"/complaints/{own}").status_code == 200


def test_the_customer_sees_no_staff_no_notes_and_only_their_lots(app, session, api, qa,
                                                                 packed):
    own, _foreign = _complaints(session, api, qa)
    customer = api("customer", customer="OEM")
    shown = customer.get(f"/complaints/{own}").get_json()
    assert [s["step"] for s in shown["eightd"]] == ["D3", "D4", "D5", "D6", "D8"]
    assert shown["eightd"][0]["text"] == "D3 for the customer"
    assert shown["containments"][0]["lots_held"] == ["LOT-A"]
    listed = customer.get("/complaints").get_json()["items"]
    assert [c["id"] for c in listed] == [own]
    client = as_user(app, customer.user)
    answers = [customer.get(f"/complaints/{own}"), customer.get("/complaints"),
               client.get(f"/portal/complaints/{own}"), client.get("/portal/complaints")]
    for resp in answers:
        text = resp.get_data(as_text=True)
        for secret in (*SECRETS, "LOT-I", "IND-SECRET-REF", "D1 for the customer"):
            assert secret not in text, (resp.request.path, secret)
    pdf = client.get(f"/portal/complaints/{own}/8d.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    # The plant reads it all.
    staff = qa.get(f"/complaints/{own}").get_json()
    assert staff["containments"][0]["lots_held"] == ["LOT-A", "LOT-I"]
    assert staff["internal_notes"] == "INTERNAL-NOTES-9"
    assert staff["eightd"][1]["owner"] == "olga-qa"


def test_the_report_pdf_holds_no_internal_text(session, api, qa, packed):
    """Whoever prints it, the 8D report is what the customer sees."""
    own, _foreign = _complaints(session, api, qa)
    from mes.complaints.pdf import report_pdf
    from mes.complaints.present import present

    shown = present(session, session.get(Complaint, own), None, customer_view=True)
    data = report_pdf(shown, plant="Plant", zone="UTC")
    text = b"".join(pdf_streams(data))
    assert b"D3 for the customer" in text
    for secret in (*SECRETS, "LOT-I", "D1 for the customer"):
        assert secret.encode() not in text, secret


def test_staff_pages_are_not_the_customers(app, session, api, packed):
    customer = api("customer", customer="OEM")
    client = as_user(app, customer.user)
    for path in ("/complaints/", "/complaints/new"):
        assert client.get(path).status_code == 403, path
    assert session.scalars(select(Complaint)).all() == []
