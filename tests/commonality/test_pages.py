"""The commonality page and its containment action, the returns page with uploads, the
customer's returns page: content, refusals, isolation."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from mes.commonality.models import AnalysisAttachment, ComplaintReturn, FailureAnalysis
from mes.complaints.models import ComplaintContainment
from mes.quality.models import Hold
from tests.commonality.conftest import COMPLAINED
from tests.helpers import refused, row_counts

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _ids(complaints, *lot_nos):
    return ",".join(str(complaints[no].id) for no in lot_nos)


def _holds(session):
    return (session.scalars(select(Hold.id)).all(),
            session.scalars(select(ComplaintContainment.containment_id)).all())


def test_commonality_page_lists_factors_best_first(make_user, login, complaints):
    client = login(make_user("qa"))
    page = client.get(f"/commonality/?complaints={_ids(complaints, *COMPLAINED)}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.index('data-value="MC-A"') < text.index('data-value="WB-1"')
    assert "Contain by this factor" in text


def test_contain_from_the_page(make_user, login, session, complaints, history):
    history["lots"]["H-17"].state = "completed"
    session.commit()
    client = login(make_user("qa"))
    ids = _ids(complaints, *COMPLAINED)
    resp = client.post("/commonality/contain", data={
        "complaints": ids, "kind": "material_lot", "value": "MC-A", "reason": "H-ENG",
        "comment": "Mold compound MC-A common to three complaints"})
    assert resp.status_code == 303
    held = session.scalars(select(Hold).where(Hold.source == "containment")).all()
    assert [hold.lot.lot_no for hold in held] == ["H-17"]
    links = session.scalars(select(ComplaintContainment.complaint_id)).all()
    assert sorted(links) == sorted(c.id for c in complaints.values()
                                   if c.reference != "8D-3")


def test_contain_from_the_page_refused_changes_nothing(make_user, login, session, complaints):
    client = login(make_user("qa"))
    data = {"complaints": _ids(complaints, *COMPLAINED), "kind": "material_lot",
            "value": "MC-A", "reason": "H-ENG", "comment": ""}
    text = refused(session, lambda: client.post("/commonality/contain", data=data), 422,
                   state=_holds)
    assert 'data-value="MC-A"' in text


@pytest.mark.parametrize("role", ["customer", "operator", "engineer", "planner"])
def test_commonality_page_is_qa_only(make_user, login, complaints, role):
    kw = {"customer": "OEM"} if role == "customer" else {}
    client = login(make_user(role, **kw))
    assert client.get(f"/commonality/?complaints={_ids(complaints, 'H-03')}").status_code == 403


def _files_state(session):
    return row_counts(session, ComplaintReturn, FailureAnalysis, AnalysisAttachment)


def test_returns_page_records_and_uploads(make_user, login, session, complaints):
    complaint = complaints["H-03"]
    client = login(make_user("qa"))
    resp = client.post(f"/commonality/complaints/{complaint.id}/returns",
                       data={"units": "4", "received_at": "2026-04-02T09:00"})
    assert resp.status_code == 303
    ret = session.scalar(select(ComplaintReturn))
    resp = client.post(f"/commonality/complaints/{complaint.id}/returns/{ret.id}/analyses",
                       data={"step": "decap", "result": "fail", "notes": "Lifted ball bond",
                             "files": [(io.BytesIO(PNG), "decap.png", "image/png")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    page = client.get(f"/commonality/complaints/{complaint.id}/returns").get_data(as_text=True)
    assert "Lifted ball bond" in page and "decap.png" in page
    # A bad upload: nothing stored, the page says why.
    refused(session, lambda: client.post(
        f"/commonality/complaints/{complaint.id}/returns/{ret.id}/analyses",
        data={"step": "decap", "result": "fail",
              "files": [(io.BytesIO(b"MZ..."), "virus.png", "image/png")]},
        content_type="multipart/form-data"), 422, state=_files_state)


def test_customer_sees_own_returns_only(make_user, login, session, complaints, api):
    complaint = complaints["H-03"]
    qa = api("qa")
    ret = qa.post(f"/complaints/{complaint.id}/returns",
                  json={"units": 2, "received_at": "2026-04-02T08:00:00+00:00"}).get_json()
    body = qa.post(f"/complaints/{complaint.id}/returns/{ret['id']}/analyses",
                   data={"step": "xray", "result": "finding", "notes": "Wire sweep",
                         "files": [(io.BytesIO(PNG), "xray.png", "image/png")]},
                   content_type="multipart/form-data").get_json()
    attachment_id = body["attachments"][0]["id"]
    own = login(make_user("customer", customer="OEM"))
    page = own.get(f"/portal/complaints/{complaint.id}/returns")
    assert page.status_code == 200 and "Wire sweep" in page.get_data(as_text=True)
    assert "xray.png" in page.get_data(as_text=True)
    got = own.get(f"/portal/complaints/{complaint.id}/attachments/{attachment_id}")
    assert got.status_code == 200 and got.data == PNG


def test_another_customer_gets_404(make_user, login, session, complaints, api):
    complaint = complaints["H-03"]
    qa = api("qa")
    ret = qa.post(f"/complaints/{complaint.id}/returns",
                  json={"units": 2, "received_at": "2026-04-02T08:00:00+00:00"}).get_json()
    body = qa.post(f"/complaints/{complaint.id}/returns/{ret['id']}/analyses",
                   data={"step": "xray", "result": "finding",
                         "files": [(io.BytesIO(PNG), "xray.png", "image/png")]},
                   content_type="multipart/form-data").get_json()
    attachment_id = body["attachments"][0]["id"]
    other = login(make_user("customer", customer="IND"))
    assert other.get(f"/portal/complaints/{complaint.id}/returns").status_code == 404
    assert other.get(f"/portal/complaints/{complaint.id}/attachments/"
                     f"{attachment_id}").status_code == 404
    mine = complaints["H-19"].id
    assert other.get(f"/portal/complaints/{mine}/attachments/"
                     f"{attachment_id}").status_code == 404
    # The plant's pages are not theirs.
    assert other.get(f"/commonality/complaints/{complaint.id}/returns").status_code == 403
    assert other.get(f"/commonality/complaints/{mine}/attachments/"
                     f"{attachment_id}").status_code == 403


def test_complaint_pages_show_returns(make_user, login, session, complaints, api):
    complaint = complaints["H-03"]
    qa = api("qa")
    ret = qa.post(f"/complaints/{complaint.id}/returns",
                  json={"units": 3, "received_at": "2026-04-02T08:00:00+00:00"}).get_json()
    qa.post(f"/complaints/{complaint.id}/returns/{ret['id']}/analyses",
            data={"step": "acoustic_microscopy", "result": "finding",
                  "notes": "Delamination at the die paddle",
                  "files": [(io.BytesIO(PNG), "csam.png", "image/png")]},
            content_type="multipart/form-data")
    staff = login(make_user("qa")).get(f"/complaints/{complaint.id}").get_data(as_text=True)
    assert "Delamination at the die paddle" in staff and "csam.png" in staff
    assert f"/commonality/complaints/{complaint.id}/returns/{ret['id']}/analyses" in staff
    login(make_user("customer", customer="OEM"))
    portal = login(make_user("customer", customer="OEM")).get(
        f"/portal/complaints/{complaint.id}")
    text = portal.get_data(as_text=True)
    assert portal.status_code == 200 and "Delamination at the die paddle" in text
    assert "/analyses" not in text and "csam.png" in text


def test_a_complaint_number_beyond_any_id_is_not_found_on_the_page_and_in_the_api(
        make_user, login, api):
    qa = login(make_user("qa"))
    assert qa.get("/commonality/?complaints=99999999999999999999").status_code == 404
    resp = api("qa").get("/complaints/99999999999999999999")
    assert resp.status_code == 404, resp.get_json()
