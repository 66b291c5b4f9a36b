"""Returned units and failure analysis: recording, files, limits, isolation."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from mes.commonality.models import AnalysisAttachment, ComplaintReturn, FailureAnalysis
from tests.helpers import refused, row_counts

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%fake report\n"


def _state(session):
    return row_counts(session, ComplaintReturn, FailureAnalysis, AnalysisAttachment)


@pytest.fixture
def returned(api, complaints):
    complaint = complaints["H-03"]
    qa = api("qa")
    resp = qa.post(f"/complaints/{complaint.id}/returns",
                   json={"units": 5, "received_at": "2026-04-02T08:00:00+00:00"})
    assert resp.status_code == 201, resp.get_json()
    return {"complaint": complaint, "return": resp.get_json(), "qa": qa}


def _multipart(fields, files):
    """The body as bytes: the test client spools a large form to a temporary file."""
    boundary = "xXxBOUNDARYxXx"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f'{value}\r\n'.encode())
    for filename, kind, content in files:
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                  f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode())
        out.write(content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _analysis(caller, complaint_id, return_id, files=(), **fields):
    data = {"step": "xray", "result": "finding", "notes": "Wire sweep on 3 of 5", **fields}
    body, content_type = _multipart(data, files)
    return caller.post(f"/complaints/{complaint_id}/returns/{return_id}/analyses", data=body,
                       content_type=content_type)


def test_return_and_analysis_with_files(api, session, returned):
    complaint, ret = returned["complaint"], returned["return"]
    assert ret["units"] == 5 and ret["created_by"]
    resp = _analysis(returned["qa"], complaint.id, ret["id"],
                     files=[("xray.png", "image/png", PNG), ("report.pdf", "application/pdf",
                                                              PDF)])
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["step"] == "xray" and body["result"] == "finding"
    assert [a["filename"] for a in body["attachments"]] == ["xray.png", "report.pdf"]
    got = returned["qa"].get(body["attachments"][0]["url"].removeprefix("/api/v1"))
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    # The customer reads them on their complaint, without who entered them.
    customer = api("customer", customer="OEM")
    listed = customer.get(f"/complaints/{complaint.id}/returns").get_json()["items"]
    assert listed[0]["analyses"][0]["notes"] == "Wire sweep on 3 of 5"
    assert "created_by" not in listed[0] and "created_by" not in listed[0]["analyses"][0]
    assert customer.get(body["attachments"][1]["url"].removeprefix("/api/v1")).data == PDF
    shown = customer.get(f"/complaints/{complaint.id}").get_json()
    assert shown["returns"][0]["analyses"][0]["step"] == "xray"


def test_another_customer_sees_nothing(api, session, returned, complaints):
    complaint, ret = returned["complaint"], returned["return"]
    resp = _analysis(returned["qa"], complaint.id, ret["id"],
                     files=[("xray.png", "image/png", PNG)])
    url = resp.get_json()["attachments"][0]["url"].removeprefix("/api/v1")
    other = api("customer", customer="IND")
    assert other.get(url).status_code == 404
    assert other.get(f"/complaints/{complaint.id}/returns").status_code == 404
    # Nor through their own complaint's address.
    own = complaints["H-19"].id
    attachment_id = url.rsplit("/", 1)[1]
    assert other.get(f"/complaints/{own}/attachments/{attachment_id}").status_code == 404


@pytest.mark.parametrize("role", ["customer", "operator", "planner", "engineer"])
def test_only_qa_records_returns(api, session, complaints, role):
    kw = {"customer": "OEM"} if role == "customer" else {}
    refused(session, lambda: api(role, **kw).post(
        f"/complaints/{complaints['H-03'].id}/returns",
        json={"units": 1, "received_at": "2026-04-02T08:00:00+00:00"}), 403, "forbidden",
        state=_state)


@pytest.mark.parametrize("body, field", [
    ({"units": 0, "received_at": "2026-04-02T08:00:00+00:00"}, "units"),
    ({"units": 2}, "received_at"),
    ({"units": 2, "received_at": "2026-03-01T08:00:00+00:00"}, "received_at"),
])
def test_bad_returns_change_nothing(api, session, complaints, body, field):
    refused(session, lambda: api("qa").post(f"/complaints/{complaints['H-03'].id}/returns",
                                            json=body), 422, "invalid", field, state=_state)


@pytest.mark.parametrize("files, fields, status, code, field", [
    ([("a.png", "image/png", PNG)], {"step": "x-ray-vision"}, 422, "invalid", "step"),
    ([("a.png", "image/png", PNG)], {"result": "maybe"}, 422, "invalid", "result"),
    ([("a.exe", "application/octet-stream", b"MZ")], {}, 422, "invalid", "files"),
    ([("a.png", "image/png", PDF)], {}, 422, "invalid", "files"),  # not what it says
    ([("a.png", "image/png", PNG), ("b.pdf", "application/pdf", PDF + b"x" * 2 * 2**20)],
     {}, 413, "too_large", None),
])
def test_bad_analyses_store_nothing(app, session, returned, files, fields, status, code,
                                    field):
    complaint, ret = returned["complaint"], returned["return"]
    app.config["FA_ATTACHMENT_LIMIT_MIB"] = 2
    try:
        refused(session, lambda: _analysis(returned["qa"], complaint.id, ret["id"],
                                           files=files, **fields),
                status, code, field, state=_state)
    finally:
        app.config["FA_ATTACHMENT_LIMIT_MIB"] = 10


def test_analysis_of_another_complaints_return_is_not_found(session, returned, complaints):
    other = complaints["H-08"].id
    refused(session, lambda: _analysis(returned["qa"], other, returned["return"]["id"]),
            404, "not_found", state=_state)


def test_configured_steps(app, session, returned):
    complaint, ret = returned["complaint"], returned["return"]
    app.config["FA_STEPS"] = "electrical_verification,sem"
    try:
        assert _analysis(returned["qa"], complaint.id, ret["id"], step="sem").status_code == 201
        refused(session, lambda: _analysis(returned["qa"], complaint.id, ret["id"],
                                           step="xray"), 422, "invalid", "step", state=_state)
    finally:
        app.config.pop("FA_STEPS")
    assert session.scalar(select(FailureAnalysis.step)) == "sem"
