"""Grants: who may grant and revoke what, every refusal leaving the database as it was, and
the audit trail of each grant."""

from __future__ import annotations

import pytest

from mes.partners.models import Grant
from tests.helpers import audit_codes, refused


@pytest.fixture
def owner(app, partnered, token_for):
    return token_for(partnered.a.user)


def _post(app, headers, body):
    return app.test_client().post("/api/v1/grants", headers=headers, json=body)


def test_the_owner_grants_a_po_line_and_revokes_it(app, session, partnered, owner):
    made = _post(app, owner, {"partner": "TIER2", "po": "PO-1", "line": 2})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert (body["customer"], body["partner"], body["po"], body["line"],
            body["vehicle_program"]) == ("OEM", "TIER2", "PO-1", 2, None)
    assert body["granted_by"] == partnered.a.user.username
    listed = app.test_client().get("/api/v1/grants", headers=owner).get_json()["items"]
    assert [g["id"] for g in listed] == [body["id"], partnered.grant.id]
    assert app.test_client().delete(f"/api/v1/grants/{body['id']}",
                                    headers=owner).status_code == 204
    grant = session.get(Grant, body["id"])
    session.refresh(grant)
    assert grant.revoked_at is not None and grant.revoked_by == partnered.a.user.username
    assert audit_codes(session, "partner_grant", str(grant.id)) == ["grant:create",
                                                                    "grant:revoke"]
    # Revoked: gone from the list, and revoking again is refused.
    listed = app.test_client().get("/api/v1/grants", headers=owner).get_json()["items"]
    assert [g["id"] for g in listed] == [partnered.grant.id]
    refused(session, lambda: app.test_client().delete(f"/api/v1/grants/{grant.id}",
                                                      headers=owner), 409, "not_active")


@pytest.mark.parametrize("body, field", [
    ({"partner": "TIER2", "po": "PO-1", "line": 9}, "line"),           # no such line
    ({"partner": "TIER2", "po": "PO-9", "line": 1}, "line"),           # no such PO
    ({"partner": "TIER2", "vehicle_program": "VP-Z"}, "vehicle_program"),
    ({"partner": "TIER2", "po": "PO-1", "line": 1, "vehicle_program": "VP-X"},
     "vehicle_program"),                                                # two scopes
    ({"partner": "TIER2"}, "po"),                                       # no scope
    ({"partner": "TIER2", "po": "PO-1"}, "line"),
    ({"partner": "IND", "po": "PO-1", "line": 1}, "partner"),           # not a partner
    ({"partner": "NOPE", "po": "PO-1", "line": 1}, "partner"),
    ({"partner": "TIER2", "po": "PO-1", "line": 1, "customer": "IND"}, "customer"),
])
def test_a_bad_grant_is_422_and_changes_nothing(app, session, partnered, owner, body, field):
    refused(session, lambda: _post(app, owner, body), 422, "invalid", field)


def test_the_same_grant_twice_is_409(app, session, partnered, owner):
    refused(session, lambda: _post(app, owner, {"partner": "TIER1", "po": "PO-1", "line": 1}),
            409, "duplicate")


def test_partners_and_plant_roles_but_admin_cannot_grant(app, session, partnered, token_for,
                                                         make_user):
    body = {"partner": "TIER1", "po": "PO-1", "line": 2, "customer": "OEM"}
    for user in (partnered.tier1, partnered.tier2, make_user("planner"), make_user("qa")):
        headers = token_for(user)
        refused(session, lambda h=headers: _post(app, h, body), 403, "forbidden")
        refused(session, lambda h=headers: app.test_client().delete(
            f"/api/v1/grants/{partnered.grant.id}", headers=h), 403, "forbidden")


def test_another_customer_cannot_see_or_revoke_the_grant(app, session, partnered, token_for):
    other = token_for(partnered.b.user)
    assert app.test_client().get("/api/v1/grants", headers=other).get_json()["items"] == []
    refused(session, lambda: app.test_client().delete(
        f"/api/v1/grants/{partnered.grant.id}", headers=other), 404, "not_found")


def test_an_admin_grants_on_the_owners_behalf_naming_it(app, session, partnered, token_for,
                                                        make_user):
    admin = token_for(make_user("admin"))
    refused(session, lambda: _post(app, admin, {"partner": "TIER2", "vehicle_program": "VP-X"}),
            422, "invalid", "customer")
    made = _post(app, admin, {"partner": "TIER2", "vehicle_program": "VP-X",
                              "customer": "IND"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["customer"] == "IND"
    everything = app.test_client().get("/api/v1/grants", headers=admin).get_json()["items"]
    assert len(everything) == 2
    only = app.test_client().get("/api/v1/grants?customer=TIER1",
                                 headers=admin).get_json()["items"]
    assert [g["id"] for g in only] == [partnered.grant.id]


def test_the_grants_page_grants_and_revokes(app, session, partnered):
    from tests.helpers import as_user

    client = as_user(app, partnered.a.user)
    page = client.get("/partners/grants").get_data(as_text=True)
    assert f'data-grant="{partnered.grant.id}"' in page and "PO-1#2" in page
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    bad = client.post("/partners/grants", data={"csrf_token": token, "partner": "TIER2",
                                                "scope": "PO-1#9"})
    assert bad.status_code == 422
    assert session.query(Grant).count() == 1
    done = client.post("/partners/grants", data={"csrf_token": token, "partner": "TIER2",
                                                 "scope": "PO-1#2"})
    assert done.status_code == 303
    made = session.query(Grant).filter_by(order_line_id=None).count(), \
        session.query(Grant).count()
    assert made == (0, 2)
    grant = session.query(Grant).order_by(Grant.id.desc()).first()
    gone = client.post(f"/partners/grants/{grant.id}/revoke", data={"csrf_token": token})
    assert gone.status_code == 303
    session.expire_all()
    assert session.get(Grant, grant.id).revoked_at is not None


def test_users_of_partners_and_customers_belong_to_the_right_kind(app, session, partnered,
                                                                  token_for, make_user):
    from mes.auth import services as auth
    from mes.auth.models import User
    from mes.errors import InvalidInput

    for role, customer in (("partner", "OEM"), ("customer", "TIER1"), ("partner", None)):
        with app.app_context():
            refused(session, lambda r=role, c=customer: auth.create_user(
                session, "test", username=f"x-{r}", role=r, password=None, customer=c),
                InvalidInput, "invalid", state=lambda s: s.query(User).count())
