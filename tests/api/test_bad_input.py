"""Input that reached the database or the parser unchecked and answered 500: each is a 4xx
with the JSON error body (API) or the error page (pages), and changes nothing."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from mes.floor.models import Lot
from mes.quality.models import Hold
from tests.helpers import refused
from tests.shipping.test_shipments import ship

BIG = "99999999999999999999"
BIG_CURSOR = base64.urlsafe_b64encode(BIG.encode()).decode()
CATALOG_LISTS = ("customers", "products", "equipment", "material-lots", "reason-codes",
                 "routes")


@pytest.fixture
def engineer_pages(client, login, make_user):
    return login(make_user("engineer"))


def test_a_route_version_beyond_any_count_is_422_on_the_api(api, plant, session):
    engineer = api("engineer")
    error = refused(session, lambda: engineer.get(f"/routes/QFN?version={BIG}"), 422,
                    "invalid", "version")
    assert error["fields"]["version"]


def test_a_route_version_beyond_any_count_is_422_on_the_page(engineer_pages, plant, session):
    page = refused(session, lambda: engineer_pages.get(f"/catalog/routes/QFN?version={BIG}"),
                   422)
    assert "No route QFN version" in page
    # The page's own versions still open.
    assert engineer_pages.get("/catalog/routes/QFN?version=1").status_code == 200
    assert engineer_pages.get("/catalog/routes/QFN").status_code == 200


@pytest.mark.parametrize("name", CATALOG_LISTS)
def test_a_catalog_list_with_a_huge_page_or_cursor_is_no_server_error(engineer_pages, plant,
                                                                      session, name):
    # ?page= is no argument of these lists (they page by cursor): it is ignored.
    assert engineer_pages.get(f"/catalog/{name}?page={BIG}").status_code == 200
    # A cursor holding a number beyond the database's OFFSET is not one this API made.
    page = refused(session, lambda: engineer_pages.get(f"/catalog/{name}?cursor={BIG_CURSOR}"),
                   422)
    assert "cursor" in page


def test_an_api_list_with_a_huge_cursor_is_422(api, plant, session):
    engineer = api("engineer")
    refused(session, lambda: engineer.get(f"/lots?cursor={BIG_CURSOR}"), 422, "invalid",
            "cursor")


def test_the_largest_cursor_the_api_accepts_reaches_the_database(api, plant):
    from mes.pagination import MAX_OFFSET, cursor

    resp = api("engineer").get(f"/lots?cursor={cursor(MAX_OFFSET)}")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"items": [], "next": None}


@pytest.mark.parametrize("role, customer", [("planner", None), ("customer", "OEM")])
def test_shipments_until_the_last_day_of_the_calendar_are_every_shipment(
        api, session, completed, role, customer):
    shipped = ship(session, [completed("LOT-A").lot_no])
    caller = api(role, **({"customer": customer} if customer else {}))
    for query in ("until=9999-12-31", "since=0001-01-01", "since=0001-01-01&until=9999-12-31"):
        resp = caller.get(f"/shipments?{query}")
        assert resp.status_code == 200, (query, resp.get_json())
        assert [item["id"] for item in resp.get_json()["items"]] == [shipped.id]


def test_the_shipments_page_until_the_last_day_of_the_calendar(client, login, make_user,
                                                               session, completed):
    shipped = ship(session, [completed("LOT-A").lot_no])
    page = login(make_user("planner"))
    resp = page.get("/shipments?until=9999-12-31")
    assert resp.status_code == 200
    assert f"/shipments/{shipped.id}" in resp.get_data(as_text=True)
    resp = page.get("/shipments?since=0001-01-01")
    assert resp.status_code == 200
    assert f"/shipments/{shipped.id}" in resp.get_data(as_text=True)


@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")])
def test_a_json_body_nested_100000_deep_is_400(api, plant, receive, session, opening,
                                               closing):
    lot, qa = receive(100), api("qa")
    body = opening * 100_000 + "1" + closing * 100_000
    error = refused(session, lambda: qa.post(
        f"/lots/{lot.lot_no}/holds", data=body, content_type="application/json"),
        400, "bad_request")
    assert "nested more than 64 levels" in error["message"]


def test_a_json_body_nested_just_too_deep_for_the_limit_is_400(api, plant, receive, session):
    from mes.web.json_body import MAX_DEPTH

    lot, qa = receive(100), api("qa")

    def nested(levels: int) -> dict:
        """A hold's body with `levels` containers in all, the body itself the first."""
        body: dict = {"reason": "H-ENG", "comment": "x"}
        inner = body
        for _ in range(levels - 1):
            inner["x"] = {}
            inner = inner["x"]
        return body

    refused(session, lambda: qa.post(f"/lots/{lot.lot_no}/holds", json=nested(MAX_DEPTH + 1)),
            400, "bad_request")
    # At the limit the body is parsed, and the schema answers for the unknown field.
    refused(session, lambda: qa.post(f"/lots/{lot.lot_no}/holds", json=nested(MAX_DEPTH)),
            422, "invalid", "x")


@pytest.mark.parametrize("body", [
    '{"reason": "H-ENG", "comment": "held \\ud800 here"}',
    '{"reason": "H-ENG", "comment": "\\udfff"}',
    '{"reason": "H-ENG", "comment": ["\\ud800"]}',
])
def test_a_lone_surrogate_in_a_comment_is_422_naming_the_field(api, plant, receive, session,
                                                                body):
    lot, qa = receive(100), api("qa")
    error = refused(session, lambda: qa.post(
        f"/lots/{lot.lot_no}/holds", data=body, content_type="application/json"),
        422, "invalid", "comment")
    assert "surrogate" in error["fields"]["comment"][0]
    assert session.scalars(select(Hold)).all() == []
    assert session.scalar(select(Lot.open_holds).where(Lot.id == lot.id)) == 0


def test_a_lone_surrogate_in_a_key_is_422(api, plant, receive, session):
    lot, qa = receive(100), api("qa")
    refused(session, lambda: qa.post(
        f"/lots/{lot.lot_no}/holds", data='{"reason": "H-ENG", "comment": "x", "\\ud800": 1}',
        content_type="application/json"), 422, "invalid", "_schema")


def test_a_surrogate_pair_is_one_character_and_is_kept(api, plant, receive, session):
    lot = receive(100)
    resp = api("qa").post(f"/lots/{lot.lot_no}/holds", content_type="application/json",
                          data='{"reason": "H-ENG", "comment": "wafer \\ud83d\\ude00 map"}')
    assert resp.status_code == 201, resp.get_json()
    assert session.scalars(select(Hold.comment)).one() == "wafer \U0001f600 map"
