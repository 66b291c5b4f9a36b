"""The hold API: every quality rule through HTTP with its status and error code, the contract's
shapes, and nothing changed when a request is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mes.db import utcnow
from mes.floor import services as floor
from mes.floor.models import Lot
from tests.floor.helpers import advance, track_in
from tests.helpers import refused
from tests.quality.helpers import quality_state

pytestmark = pytest.mark.usefixtures("plant")

HOLD_FIELDS = {"id", "lot_no", "reason", "comment", "status", "placed_by", "placed_at",
               "released_by", "released_at", "disposition", "source"}


@pytest.fixture
def qa(api):
    return api("qa")


@pytest.fixture
def qa2(api):
    return api("qa")


def lot(session, lot_no: str) -> Lot:
    return session.scalar(floor.lot_query({}).where(Lot.lot_no == lot_no))


# --- one lot ---------------------------------------------------------------------------

def test_post_lot_hold_answers_201_with_the_hold_and_the_lot_shows_it(qa, receive):
    receive(100, lot_no="LOT-A")
    resp = qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "Voids on X-ray"})
    assert resp.status_code == 201, resp.get_json()
    hold = resp.get_json()
    assert set(hold) >= HOLD_FIELDS
    assert (hold["lot_no"], hold["reason"], hold["comment"], hold["status"], hold["source"],
            hold["placed_by"], hold["released_by"], hold["disposition"]) == (
        "LOT-A", "H-ENG", "Voids on X-ray", "open", "manual", qa.user.username, None, None)
    shown = qa.get("/lots/LOT-A").get_json()
    assert (shown["on_hold"], shown["holds"]) == (True, [hold["id"]])
    history = qa.get("/lots/LOT-A/history").get_json()["items"]
    assert history[-1]["kind"] == "hold"


def test_post_lot_hold_refusals(qa, receive, session):
    receive(100, lot_no="LOT-A")
    closed = receive(100, lot_no="LOT-S")
    closed.state = "scrapped"
    session.commit()
    refused(session, lambda: qa.post("/lots/LOT-A/holds", json={"reason": "R-SCRATCH",
                                                                "comment": "x"}),
            422, "invalid", "reason")
    refused(session, lambda: qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG"}),
            422, "invalid", "comment")
    refused(session, lambda: qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG",
                                                                "comment": "  "}),
            422, "invalid", "comment")
    refused(session, lambda: qa.post("/lots/LOT-S/holds", json={"reason": "H-ENG",
                                                                "comment": "x"}),
            409, "lot_closed")
    refused(session, lambda: qa.post("/lots/NOPE/holds", json={"reason": "H-ENG",
                                                               "comment": "x"}),
            404, "not_found")


def test_track_in_of_a_held_lot_is_refused_over_the_api(qa, api, receive, session):
    receive(100, lot_no="LOT-A")
    qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"})
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-A/track-in", json={"step": "SAW",
                                                                   "equipment": "SAW-1"}),
            409, "lot_on_hold")


def test_only_qa_and_admin_place_and_release_holds_and_customers_read_none(api, receive):
    receive(100, lot_no="LOT-A")
    for role in ("operator", "engineer", "planner", "customer"):
        caller = api(role)
        resp = caller.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"})
        assert resp.status_code == 403, role
        assert caller.post("/holds/1/release", json={}).status_code == 403, role
    customer = api("customer", customer="OEM")
    assert customer.get("/holds").status_code == 403
    assert customer.get("/future-holds").status_code == 403
    assert api("admin").post("/lots/LOT-A/holds",
                             json={"reason": "H-ENG", "comment": "x"}).status_code == 201


# --- mass holds and the preview --------------------------------------------------------

@pytest.fixture
def family(session, receive):
    a = receive(100, fab_lot="FAB9", lot_no="A")
    receive(100, fab_lot="FAB9", lot_no="B").state = "shipped"
    c = receive(100, fab_lot="FAB5", lot_no="C")
    [a01] = floor.split_lot(session, "op", a, [70, 30])
    floor.merge_lots(session, "op", [c, a01])
    session.commit()


def test_post_holds_mass_holds_matches_and_descendants(qa, family):
    resp = qa.post("/holds", json={"reason": "H-ENG", "comment": "Fab excursion",
                                   "match": {"fab_lot": "FAB9"}})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["lots"], body["shipped"], body["skipped"]) == (["A", "C"], ["B"], ["A.01"])
    assert [(h["lot_no"], h["source"]) for h in body["holds"]] == [("A", "mass"),
                                                                   ("C", "mass")]
    assert all(set(h) >= HOLD_FIELDS for h in body["holds"])
    assert qa.get("/lots/C").get_json()["on_hold"] is True


@pytest.mark.parametrize(("match", "status", "code"), [
    ({"fab_lot": "NOWHERE"}, 422, "no_match"),
    ({}, 422, "invalid"),
    ({"fab_lot": "FAB9", "colour": "red"}, 422, "invalid"),
    ({"equipment": "SAW-1", "since": "2026-01-01T00:00:00"}, 422, "invalid"),
    ({"lots": []}, 422, "invalid"),
    ({"lots": ["B"]}, 409, "nothing_to_hold"),
])
def test_post_holds_refusals(qa, family, session, match, status, code):
    refused(session, lambda: qa.post("/holds", json={"reason": "H-ENG", "comment": "x",
                                                     "match": match}), status, code)


def test_post_holds_needs_a_match(qa, family, session):
    refused(session, lambda: qa.post("/holds", json={"reason": "H-ENG", "comment": "x"}),
            422, "invalid", "match")


def test_preview_shows_what_a_mass_hold_would_hold_and_changes_nothing(api, family, session):
    reader = api("operator")
    before = quality_state(session)
    resp = reader.get("/holds/preview?fab_lot=FAB9")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"to_hold": ["A", "C"], "shipped": ["B"], "skipped": ["A.01"]}
    assert reader.get("/holds/preview?lots=A.01,%20B").get_json() == {
        "to_hold": ["C"], "shipped": ["B"], "skipped": ["A.01"]}
    since = (utcnow() - timedelta(days=1)).isoformat()
    assert reader.get("/holds/preview", query_string={"equipment": "SAW-1", "since": since}
                      ).get_json() == {"to_hold": [], "shipped": [], "skipped": []}
    assert quality_state(session) == before
    assert reader.get("/holds/preview").status_code == 422
    assert reader.get("/holds/preview?lots=NOPE").get_json()["error"]["fields"] == {
        "match": ["Unknown lot NOPE."]}


# --- reading ---------------------------------------------------------------------------

def test_get_holds_filters_and_pages(qa, family, receive):
    receive(100, lot_no="D")
    mass = qa.post("/holds", json={"reason": "H-ENG", "comment": "x",
                                   "match": {"fab_lot": "FAB9"}}).get_json()
    single = qa.post("/lots/D/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    items = qa.get("/holds").get_json()["items"]
    assert [h["id"] for h in items] == [single["id"], *reversed([h["id"]
                                                                 for h in mass["holds"]])]
    assert [h["lot_no"] for h in qa.get("/holds?lot=C").get_json()["items"]] == ["C"]
    assert [h["id"] for h in qa.get("/holds?source=manual").get_json()["items"]] == \
        [single["id"]]
    assert qa.get("/holds?status=released").get_json()["items"] == []
    first = qa.get("/holds?limit=2").get_json()
    second = qa.get(f"/holds?limit=2&cursor={first['next']}").get_json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next"] is None
    assert qa.get(f"/holds/{single['id']}").get_json() == single
    assert qa.get("/holds/987654").status_code == 404
    assert qa.get("/holds?status=closed").status_code == 422


# --- release ---------------------------------------------------------------------------

def test_release_answers_200_and_frees_the_lot(qa, qa2, receive):
    receive(100, lot_no="LOT-A")
    hold = qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    resp = qa2.post(f"/holds/{hold['id']}/release",
                    json={"disposition": "use_as_is", "comment": "Within deviation",
                          "concession": "OEM-CONC-77"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["status"], body["disposition"], body["released_by"], body["concession"]) == (
        "released", "use_as_is", qa2.user.username, "OEM-CONC-77")
    assert body["released_at"] is not None
    assert qa.get("/lots/LOT-A").get_json()["on_hold"] is False


def test_release_refusals(qa, qa2, receive, session):
    receive(100, lot_no="LOT-A")
    hold = qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    path = f"/holds/{hold['id']}/release"
    refused(session, lambda: qa.post(path, json={"disposition": "release", "comment": "x"}),
            409, "two_person_rule")
    refused(session, lambda: qa2.post(path, json={"comment": "x"}), 422, "invalid",
            "disposition")
    refused(session, lambda: qa2.post(path, json={"disposition": "scrap", "comment": "x",
                                                  "scrap_qty": 500, "scrap_reason": "S-DMG"}),
            422, "invalid", "scrap_qty")
    refused(session, lambda: qa2.post(path, json={"disposition": "rework", "comment": "x",
                                                  "rework_step": "FT"}),
            422, "invalid", "rework_step")
    refused(session, lambda: qa2.post("/holds/987654/release",
                                      json={"disposition": "release", "comment": "x"}),
            404, "not_found")
    assert qa2.post(path, json={"disposition": "release", "comment": "x"}).status_code == 200
    refused(session, lambda: qa2.post(path, json={"disposition": "release", "comment": "x"}),
            409, "not_open")


def test_bulk_release_answers_200_with_every_hold(qa, qa2, receive):
    holds = []
    for lot_no in ("LOT-A", "LOT-B"):
        receive(100, lot_no=lot_no)
        holds.append(qa.post(f"/lots/{lot_no}/holds",
                             json={"reason": "H-ENG", "comment": "x"}).get_json()["id"])
    resp = qa2.post("/holds/release", json={"holds": holds, "disposition": "release",
                                            "comment": "Reviewed"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"holds"} and [h["id"] for h in body["holds"]] == holds
    assert all(set(h) >= HOLD_FIELDS and (h["status"], h["released_by"]) == (
        "released", qa2.user.username) for h in body["holds"])
    assert [qa.get(f"/lots/{n}").get_json()["on_hold"] for n in ("LOT-A", "LOT-B")] == [
        False, False]


def test_bulk_release_refused_for_one_hold_releases_none(qa, qa2, receive, session):
    receive(100, lot_no="LOT-A")
    receive(100, lot_no="LOT-B")
    other = qa.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    own = qa2.post("/lots/LOT-B/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    body = {"holds": [other["id"], own["id"]], "disposition": "release", "comment": "x"}
    error = refused(session, lambda: qa2.post("/holds/release", json=body), 409,
                    "two_person_rule", "holds")
    assert error["fields"]["holds"][0].startswith(f"Hold {own['id']}: ")
    assert [qa.get(f"/holds/{h['id']}").get_json()["status"] for h in (other, own)] == [
        "open", "open"]
    refused(session, lambda: qa2.post("/holds/release", json={**body, "holds": []}),
            422, "invalid", "holds")
    refused(session, lambda: qa2.post("/holds/release", json={**body, "holds": [987654]}),
            422, "invalid", "holds")
    # An id past any integer the database stores is refused, not a driver overflow (500).
    refused(session, lambda: qa2.post("/holds/release", json={
        **body, "holds": [53587125534982160384]}), 422, "invalid", "holds")
    refused(session, lambda: qa2.post(f"/holds/{other['id']}/release", json={
        "disposition": "scrap", "comment": "x", "scrap_qty": 2**70, "scrap_reason": "S-DMG"}),
        422, "invalid", "scrap_qty")
    refused(session, lambda: qa2.post("/holds/release", json={
        **body, "holds": [other["id"]], "disposition": "scrap", "scrap_qty": 500,
        "scrap_reason": "S-DMG"}), 422, "invalid", "holds")


def test_an_admin_overrides_the_two_person_rule_over_the_api(api, receive):
    receive(100, lot_no="LOT-A")
    admin = api("admin")
    hold = admin.post("/lots/LOT-A/holds", json={"reason": "H-ENG", "comment": "x"}).get_json()
    resp = admin.post(f"/holds/{hold['id']}/release",
                      json={"disposition": "release", "comment": "x",
                            "override_reason": "Only QA person on leave"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["override_reason"] == "Only QA person on leave"


def test_a_low_yield_track_out_answers_with_the_lot_on_hold(api, receive, session):
    lot_row = advance(session, receive(100, lot_no="LOT-Y"))
    track_in(session, lot_row)
    resp = api("operator").post("/lots/LOT-Y/track-out", json={
        "step": "WB", "good_qty": 85, "rejects": [{"reason": "R-BALL", "qty": 15}]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["step"], body["on_hold"], len(body["holds"])) == ("FT", True, 1)


# --- future holds ----------------------------------------------------------------------

def test_future_holds_are_created_listed_and_retired(qa, receive, session):
    receive(100, lot_no="LOT-A")
    resp = qa.post("/future-holds", json={"reason": "H-ENG", "comment": "Stop at test",
                                          "at_step": "FT", "match": {"lots": ["LOT-A"]}})
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert (made["status"], made["at_step"], made["match"], made["reason"],
            made["holds_placed"]) == ("active", "FT", {"lots": ["LOT-A"]}, "H-ENG", 0)
    assert made["matching_now"]["before_step"] == 1
    listed = qa.get("/future-holds").get_json()["items"]
    assert [r["id"] for r in listed] == [made["id"]] and "matching_now" not in listed[0]
    advance(session, lot(session, "LOT-A"), 2)
    assert qa.get(f"/future-holds/{made['id']}").get_json()["holds_placed"] == 1
    assert qa.get("/holds?source=future").get_json()["items"][0]["future_hold"] == made["id"]
    assert qa.delete(f"/future-holds/{made['id']}").status_code == 204
    assert qa.get(f"/future-holds/{made['id']}").get_json()["status"] == "retired"
    assert qa.get("/future-holds?status=active").get_json()["items"] == []
    refused(session, lambda: qa.delete(f"/future-holds/{made['id']}"), 409, "not_active")
    refused(session, lambda: qa.delete("/future-holds/987654"), 404, "not_found")


@pytest.mark.parametrize(("body", "field"), [
    ({"at_step": "NOWHERE"}, "at_step"),
    ({"reason": "S-DMG"}, "reason"),
    ({"match": {"material_lot": "NOPE"}}, "match"),
    ({"match": None}, "match"),
    ({"comment": ""}, "comment"),
])
def test_future_hold_refusals(qa, session, body, field):
    data = {"reason": "H-ENG", "comment": "x", "at_step": "FT", "match": {"fab_lot": "F1"},
            **body}
    refused(session, lambda: qa.post("/future-holds", json=data), 422, "invalid", field)


def test_the_hold_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/lots/{lot_no}/holds", "/api/v1/holds", "/api/v1/holds/preview",
                 "/api/v1/holds/{hold_id}", "/api/v1/holds/{hold_id}/release",
                 "/api/v1/future-holds", "/api/v1/future-holds/{rule_id}"):
        assert path in paths, path
