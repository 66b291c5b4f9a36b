"""Master data pages: forms validated by the API's schemas, saved by the same services."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from mes.audit.models import AuditEvent
from mes.catalog import services
from mes.catalog.models import (
    Customer,
    Equipment,
    EquipmentStateChange,
    MaterialLot,
    Product,
    Qualification,
    ReasonCode,
    Route,
)
from mes.errors import Forbidden

STEPS = "DA | Die attach | assembly | die_bonder | 99.5 | epoxy, leadframe\n" \
        "\n" \
        "FT | Final test | test | tester\n"


@pytest.fixture
def engineer(login, make_user):
    return login(make_user("engineer"))


def rows(session, model, **where):
    session.expire_all()
    return session.scalars(select(model).filter_by(**where)).all()


def audits(session, code, key):
    return session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.code == code, AuditEvent.subject_key == key))


def text(resp):
    return resp.get_data(as_text=True)


def seed(session, actor="test"):
    """A customer, a route, a product, a tool, a reason code and a material lot."""
    services.create_customer(session, actor, {"code": "OEM1", "name": "OEM One",
                                              "automotive": True})
    services.create_route(session, actor, {"code": "QFN", "name": "QFN flow", "steps": [
        {"code": "DA", "name": "Die attach", "kind": "assembly", "equipment_kind": None,
         "min_yield": None, "materials": []}]})
    services.create_product(session, actor, {"code": "P1", "name": "Part 1", "package": "QFN-32",
                                             "route": "QFN", "aec_grade": 1, "msl": "3",
                                             "customer": "OEM1"})
    services.create_equipment(session, actor, {"code": "WB-01", "kind": "wire_bonder",
                                               "name": "Bonder 1", "state": "standby"})
    services.create_reason_code(session, actor, {"code": "SCRATCH", "kind": "reject",
                                                 "description": "Scratch",
                                                 "description_zh": ""})
    services.create_material_lot(session, actor, {"code": "EPX-1", "material": "epoxy",
                                                  "description": "", "expires_at": None})
    session.commit()


# --- landing page, lists, permissions --------------------------------------------------

LISTS = ["/catalog/", "/catalog/customers", "/catalog/routes", "/catalog/routes/QFN",
         "/catalog/products", "/catalog/products/P1", "/catalog/equipment",
         "/catalog/reason-codes", "/catalog/material-lots"]

WRITE_PAGES = ["/catalog/customers/new", "/catalog/customers/OEM1/edit", "/catalog/routes/new",
               "/catalog/routes/QFN/edit", "/catalog/products/new",
               "/catalog/products/P1/edit", "/catalog/equipment/new",
               "/catalog/equipment/WB-01/edit", "/catalog/reason-codes/new",
               "/catalog/reason-codes/SCRATCH/edit", "/catalog/material-lots/new",
               "/catalog/material-lots/EPX-1/edit"]


@pytest.mark.parametrize("url", LISTS)
def test_master_data_pages_render_for_engineer(engineer, session, url):
    seed(session)
    resp = engineer.get(url)
    assert resp.status_code == 200


def test_lists_show_seeded_objects(engineer, session):
    seed(session)
    assert "OEM One" in text(engineer.get("/catalog/customers"))
    assert "QFN flow" in text(engineer.get("/catalog/routes"))
    assert "QFN-32" in text(engineer.get("/catalog/products"))
    assert "Bonder 1" in text(engineer.get("/catalog/equipment"))
    assert "Scratch" in text(engineer.get("/catalog/reason-codes"))
    assert "EPX-1" in text(engineer.get("/catalog/material-lots"))


@pytest.mark.parametrize("url", LISTS + WRITE_PAGES)
def test_anonymous_is_sent_to_login(client, session, url):
    seed(session)
    resp = client.get(url)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login")


@pytest.mark.parametrize("url", WRITE_PAGES + ["/catalog/products/P1/qualifications/new",
                                               "/catalog/equipment/WB-01/state"])
def test_planner_may_not_open_write_pages(login, make_user, session, url):
    seed(session)
    planner = login(make_user("planner"))
    assert planner.get(url).status_code == 403
    assert planner.post(url, data={"code": "X", "name": "X"}).status_code == 403
    assert rows(session, Customer, code="X") == []


def test_planner_reads_lists_without_edit_links(login, make_user, session):
    seed(session)
    planner = login(make_user("planner"))
    resp = planner.get("/catalog/customers")
    assert resp.status_code == 200
    assert "/catalog/customers/OEM1/edit" not in text(resp)
    assert "/catalog/customers/new" not in text(resp)


def test_engineer_sees_edit_links(engineer, session):
    seed(session)
    assert "/catalog/customers/OEM1/edit" in text(engineer.get("/catalog/customers"))


def test_customer_user_may_not_read_master_data(login, make_user, session):
    seed(session)
    customer = login(make_user("customer", customer="OEM1"))
    assert customer.get("/catalog/products").status_code == 403


def _link(page, rel):
    found = re.search(rf'href="([^"]+)" rel="{rel}"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def test_lists_paginate_by_fifty(engineer, session):
    for n in range(101):
        services.create_customer(session, "test", {"code": f"C{n:03d}", "name": f"Cust {n}",
                                                   "automotive": False})
    session.commit()
    first = text(engineer.get("/catalog/customers"))
    assert "C049" in first and "C050" not in first
    assert _link(first, "prev") is None
    second = text(engineer.get(_link(first, "next")))
    assert "C050" in second and "C099" in second and "C049" not in second
    third = text(engineer.get(_link(second, "next")))
    assert "C100" in third and "C099" not in third and _link(third, "next") is None
    codes = re.compile(r">(C\d{3})<")
    assert len(codes.findall(second)) == 50
    assert codes.findall(text(engineer.get(_link(third, "prev")))) == codes.findall(second)
    assert _link(second, "prev") == "/catalog/customers"


def test_list_pages_keep_their_filter(engineer, session):
    for n in range(51):
        services.create_equipment(session, "test", {"code": f"SAW-{n:02d}", "kind": "saw",
                                                    "name": "", "state": "standby"})
    session.commit()
    first = text(engineer.get("/catalog/equipment?kind=saw"))
    second = text(engineer.get(_link(first, "next")))
    assert "kind=saw" in _link(first, "next")
    assert "SAW-50" in second and "SAW-49" not in second


def test_index_counts_each_type(engineer, session):
    seed(session)
    body = text(engineer.get("/catalog/"))
    assert '<span class="count">1</span>' in body
    assert "/catalog/material-lots" in body


# --- customers -------------------------------------------------------------------------

def test_customer_created_through_form(engineer, session):
    resp = engineer.post("/catalog/customers/new",
                         data={"code": "TIER1", "name": "Tier One", "automotive": "1"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/catalog/customers")
    [customer] = rows(session, Customer, code="TIER1")
    assert customer.automotive is True
    assert audits(session, "customer:create", "TIER1") == 1
    assert "Customer TIER1 created." in text(engineer.get("/catalog/customers"))


def test_customer_checkbox_absent_means_not_automotive(engineer, session):
    engineer.post("/catalog/customers/new", data={"code": "C2", "name": "Two"})
    assert rows(session, Customer, code="C2")[0].automotive is False


def test_customer_form_refuses_bad_code_and_keeps_typed_values(engineer, session):
    resp = engineer.post("/catalog/customers/new", data={"code": "bad code!", "name": "Typed"})
    assert resp.status_code == 422
    body = text(resp)
    assert "Use 1 to 40 letters" in body
    assert 'value="Typed"' in body and 'value="bad code!"' in body
    assert session.scalar(select(func.count(Customer.id))) == 0
    assert session.scalar(select(func.count(AuditEvent.id))
                          .where(AuditEvent.code == "customer:create")) == 0


def test_customer_form_reports_missing_name(engineer, session):
    resp = engineer.post("/catalog/customers/new", data={"code": "C3", "name": "  "})
    assert resp.status_code == 422
    assert "Missing data for required field." in text(resp)
    assert rows(session, Customer, code="C3") == []


def test_customer_duplicate_code_is_shown_next_to_code(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/customers/new", data={"code": "OEM1", "name": "Other"})
    assert resp.status_code == 409
    assert 'id="f-code-error"' in text(resp)
    assert "exists already" in text(resp)
    [customer] = rows(session, Customer, code="OEM1")
    assert customer.name == "OEM One"
    assert audits(session, "customer:create", "OEM1") == 1


def test_customer_edit_saves_and_unchecked_box_clears_flag(engineer, session):
    seed(session)
    form = text(engineer.get("/catalog/customers/OEM1/edit"))
    assert 'value="OEM One"' in form and "checked" in form
    resp = engineer.post("/catalog/customers/OEM1/edit", data={"name": "OEM Renamed"})
    assert resp.status_code == 303
    [customer] = rows(session, Customer, code="OEM1")
    assert (customer.name, customer.automotive) == ("OEM Renamed", False)
    assert audits(session, "customer:update", "OEM1") == 1


def test_customer_edit_refuses_empty_name(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/customers/OEM1/edit", data={"name": "", "automotive": "1"})
    assert resp.status_code == 422
    assert 'id="f-name-error"' in text(resp)
    assert rows(session, Customer, code="OEM1")[0].name == "OEM One"


def test_edit_of_unknown_code_is_404(engineer):
    assert engineer.get("/catalog/customers/NOPE/edit").status_code == 404


# --- routes ----------------------------------------------------------------------------

def test_route_created_from_step_lines(engineer, session):
    resp = engineer.post("/catalog/routes/new",
                         data={"code": "SOP", "name": "SOP flow", "steps": STEPS})
    assert resp.status_code == 303
    [route] = rows(session, Route, code="SOP")
    assert route.version == 1
    assert [(st.seq, st.code, st.kind, st.equipment_kind, st.min_yield, st.materials)
            for st in route.steps] == [
        (1, "DA", "assembly", "die_bonder", 99.5, ["epoxy", "leadframe"]),
        (2, "FT", "test", "tester", None, [])]
    assert audits(session, "route:create", "SOP") == 1


def test_route_with_existing_code_becomes_next_version(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/routes/new",
                         data={"code": "QFN", "name": "QFN flow", "steps": STEPS})
    assert resp.status_code == 303
    assert sorted(r.version for r in rows(session, Route, code="QFN")) == [1, 2]


def test_route_edit_prefills_steps_and_saves_next_version(engineer, session):
    seed(session)
    form = text(engineer.get("/catalog/routes/QFN/edit"))
    assert "DA | Die attach | assembly</textarea>" in form
    resp = engineer.post("/catalog/routes/QFN/edit", data={"name": "QFN v2", "steps": STEPS})
    assert resp.status_code == 303
    latest = services.current_route(session, "QFN")
    assert (latest.version, latest.name, len(latest.steps)) == (2, "QFN v2", 2)


def test_route_step_lines_with_errors_name_their_lines(engineer, session):
    steps = ("DA | Die attach | assembly\n"
             "just one value\n"
             "\n"
             "WB | Wire bond | welding | bonder | 120\n")
    resp = engineer.post("/catalog/routes/new",
                         data={"code": "BAD", "name": "Bad", "steps": steps})
    assert resp.status_code == 422
    body = text(resp)
    assert "Line 2: write 3 to 9 values separated by" in body
    assert "Line 4, Kind: Must be one of: assembly, inspection, test, pack." in body
    assert "Line 4, Minimum yield:" in body
    assert "just one value" in body
    assert rows(session, Route, code="BAD") == []


def test_route_refuses_duplicate_step_codes(engineer, session):
    steps = "DA | Die attach | assembly\nDA | Again | assembly\n"
    resp = engineer.post("/catalog/routes/new", data={"code": "DUP", "name": "D", "steps": steps})
    assert resp.status_code == 422
    assert "Step codes must be unique in a route: DA." in text(resp)
    assert rows(session, Route, code="DUP") == []


def test_route_without_steps_is_refused(engineer, session):
    resp = engineer.post("/catalog/routes/new", data={"code": "NONE", "name": "N", "steps": ""})
    assert resp.status_code == 422
    assert 'id="f-steps-error"' in text(resp)
    assert rows(session, Route, code="NONE") == []


def test_route_detail_shows_current_and_older_versions(engineer, session):
    seed(session)
    services.create_route(session, "test", {"code": "QFN", "name": "QFN flow", "steps": [
        {"code": "SAW", "name": "Wafer saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": 98.0, "materials": ["tape"]}]})
    session.commit()
    current = text(engineer.get("/catalog/routes/QFN"))
    assert "Wafer saw" in current and "Die attach" not in current
    assert "/catalog/routes/QFN?version=1" in current
    older = text(engineer.get("/catalog/routes/QFN?version=1"))
    assert "Die attach" in older and "Wafer saw" not in older
    assert engineer.get("/catalog/routes/QFN?version=9").status_code == 404


# --- products and qualifications -------------------------------------------------------

def product_form(**overrides):
    return {"code": "P2", "name": "Part 2", "package": "SOP-8", "route": "QFN",
            "aec_grade": "", "msl": "2a", "customer": "", **overrides}


def test_product_created_through_form(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/new", data=product_form(aec_grade="0"))
    assert resp.status_code == 303
    [product] = rows(session, Product, code="P2")
    assert (product.route_code, product.aec_grade, product.msl, product.customer) == \
        ("QFN", 0, "2a", None)
    assert audits(session, "product:create", "P2") == 1


def test_product_with_unknown_route_shows_message_at_route(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/new", data=product_form(route="NOROUTE"))
    assert resp.status_code == 422
    body = text(resp)
    assert 'id="f-route-error"' in body and "Unknown route NOROUTE." in body
    assert rows(session, Product, code="P2") == []


def test_product_with_grade_out_of_range_is_refused(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/new", data=product_form(aec_grade="7"))
    assert resp.status_code == 422
    assert 'id="f-aec_grade-error"' in text(resp)
    assert rows(session, Product, code="P2") == []


def test_product_duplicate_code_is_refused(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/new", data=product_form(code="P1"))
    assert resp.status_code == 409
    assert 'id="f-code-error"' in text(resp)
    assert rows(session, Product, code="P1")[0].name == "Part 1"


def test_product_edit_clears_customer_and_grade(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/P1/edit", data={
        "name": "Part One", "package": "QFN-48", "route": "QFN", "aec_grade": "",
        "msl": "3", "customer": ""})
    assert resp.status_code == 303
    [product] = rows(session, Product, code="P1")
    assert (product.name, product.package, product.aec_grade, product.customer) == \
        ("Part One", "QFN-48", None, None)
    assert audits(session, "product:update", "P1") == 1


def test_product_edit_with_unknown_customer_changes_nothing(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/P1/edit", data={
        "name": "Renamed", "package": "QFN-32", "route": "QFN", "msl": "3", "customer": "X"})
    assert resp.status_code == 422
    assert "Unknown customer X." in text(resp)
    [product] = rows(session, Product, code="P1")
    assert (product.name, product.customer.code) == ("Part 1", "OEM1")


QUAL_TESTS = "HTOL | 77 | 3 | 0\nTC | 77 | 3 | 0 | PC\nESD-HBM | 3 | 1 | 0\n"


def test_qualification_recorded_through_form(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/P1/qualifications/new", data={
        "standard": "AEC-Q100", "grade": "1", "report": "QR-77", "tests": QUAL_TESTS})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/catalog/products/P1")
    [qual] = rows(session, Qualification)
    assert (qual.status, qual.grade, qual.report) == ("passed", 1, "QR-77")
    assert [(t.test, t.group, t.sample_size, t.lots, t.fails) for t in qual.tests] == [
        ("HTOL", "B", 77, 3, 0), ("TC", "A", 77, 3, 0), ("HBM", "E", 3, 1, 0)]
    assert [t.preconditioned for t in qual.tests] == [False, True, False]
    assert audits(session, "product:qualification", "P1") == 1
    detail = text(engineer.get("/catalog/products/P1"))
    assert "HTOL" in detail and "QR-77" in detail and "badge-passed" in detail


def test_qualification_with_a_fail_is_recorded_as_failed(engineer, session):
    seed(session)
    engineer.post("/catalog/products/P1/qualifications/new", data={
        "standard": "AEC-Q100", "grade": "1", "tests": "HTOL | 77 | 3 | 1"})
    [qual] = rows(session, Qualification)
    assert qual.status == "failed"
    assert rows(session, Product, code="P1")[0].qualified is False


def test_qualification_lines_with_errors_name_their_lines(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/P1/qualifications/new", data={
        "standard": "AEC-Q100", "grade": "1",
        "tests": "HTOL | 77 | 3 | 0\nTC | 77\nHAST | lots | 3 | 0 | PC"})
    assert resp.status_code == 422
    body = text(resp)
    assert "Line 2: write 4 to 5 values separated by &#39;|&#39; (found 2)." in body
    assert "Line 3, Sample size: Not a valid integer." in body
    assert rows(session, Qualification) == []


def test_qualification_needs_limits_permission(login, make_user, session):
    seed(session)
    qa = login(make_user("qa"))
    resp = qa.post("/catalog/products/P1/qualifications/new",
                   data={"grade": "1", "tests": QUAL_TESTS})
    assert resp.status_code == 403
    assert rows(session, Qualification) == []


# --- equipment -------------------------------------------------------------------------

def test_equipment_created_through_form(engineer, session):
    resp = engineer.post("/catalog/equipment/new", data={
        "code": "FT-07", "kind": "tester", "name": "Handler 7", "state": "productive"})
    assert resp.status_code == 303
    [tool] = rows(session, Equipment, code="FT-07")
    assert (tool.kind, tool.state) == ("tester", "productive")
    assert len(rows(session, EquipmentStateChange, equipment_id=tool.id)) == 1
    assert audits(session, "equipment:create", "FT-07") == 1


def test_equipment_with_unknown_state_is_refused(engineer, session):
    resp = engineer.post("/catalog/equipment/new", data={
        "code": "FT-08", "kind": "tester", "state": "broken"})
    assert resp.status_code == 422
    assert 'id="f-state-error"' in text(resp)
    assert rows(session, Equipment, code="FT-08") == []


def test_equipment_duplicate_code_is_refused(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/equipment/new", data={
        "code": "WB-01", "kind": "saw", "state": "standby"})
    assert resp.status_code == 409
    assert 'id="f-code-error"' in text(resp)
    assert rows(session, Equipment, code="WB-01")[0].kind == "wire_bonder"


def test_equipment_edit_renames(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/equipment/WB-01/edit", data={"name": "Bonder One"})
    assert resp.status_code == 303
    assert rows(session, Equipment, code="WB-01")[0].name == "Bonder One"
    assert audits(session, "equipment:update", "WB-01") == 1


def test_equipment_list_filters_by_kind_and_state(engineer, session):
    seed(session)
    services.create_equipment(session, "test", {"code": "SAW-01", "kind": "saw", "name": "",
                                                "state": "unscheduled_down"})
    session.commit()
    by_kind = text(engineer.get("/catalog/equipment?kind=saw"))
    assert "SAW-01" in by_kind and "WB-01" not in by_kind
    by_state = text(engineer.get("/catalog/equipment?state=standby"))
    assert "WB-01" in by_state and "SAW-01" not in by_state
    assert "state-unscheduled_down" in text(engineer.get("/catalog/equipment"))


def test_operator_changes_equipment_state(login, make_user, session):
    seed(session)
    operator = login(make_user("operator", username="op1"))
    page = operator.get("/catalog/equipment/WB-01/state")
    assert page.status_code == 200
    services.create_reason_code(session, "test", {"code": "DT-ALARM", "kind": "downtime",
                                                  "description": "Machine alarm",
                                                  "description_zh": ""})
    session.commit()
    assert "DT-ALARM" in text(operator.get("/catalog/equipment/WB-01/state"))
    # A down state needs a downtime reason code: refused without one, nothing written.
    resp = operator.post("/catalog/equipment/WB-01/state",
                         data={"state": "unscheduled_down", "comment": "spindle alarm"})
    assert resp.status_code == 422
    assert rows(session, Equipment, code="WB-01")[0].state == "standby"
    assert audits(session, "equipment:state", "WB-01") == 0
    resp = operator.post("/catalog/equipment/WB-01/state",
                         data={"state": "unscheduled_down", "comment": "spindle alarm",
                               "reason": "DT-ALARM"})
    assert resp.status_code == 303
    [tool] = rows(session, Equipment, code="WB-01")
    assert tool.state == "unscheduled_down"
    changes = rows(session, EquipmentStateChange, equipment_id=tool.id)
    assert [(c.from_state, c.to_state, c.by, c.comment, c.reason) for c in changes][-1] == \
        ("standby", "unscheduled_down", "op1", "spindle alarm", "DT-ALARM")
    assert audits(session, "equipment:state", "WB-01") == 1
    assert "spindle alarm" in text(operator.get("/catalog/equipment/WB-01/state"))


def test_equipment_state_lost_race_shows_no_success(login, make_user, session, monkeypatch):
    """Another writer changes the tool between this form's load and its save: the page
    answers 409 and never says the state changed, now or on the next page."""
    seed(session)
    operator = login(make_user("operator"))
    update_equipment = services.update_equipment
    table = Equipment.__table__

    def update_after_another_writer(sess, actor, equipment, data):
        # The other writer's UPDATE, committed after this request read the row: the row's
        # version counter no longer matches the one this request loaded.
        sess.connection().execute(update(table).where(table.c.id == equipment.id)
                                  .values(version=table.c.version + 1))
        return update_equipment(sess, actor, equipment, data)

    monkeypatch.setattr(services, "update_equipment", update_after_another_writer)
    resp = operator.post("/catalog/equipment/WB-01/state", data={"state": "non_scheduled"})
    assert resp.status_code == 409
    assert "is now" not in text(resp)
    assert "is now" not in text(operator.get("/catalog/equipment/WB-01/state"))
    [tool] = rows(session, Equipment, code="WB-01")
    assert tool.state == "standby"
    assert len(rows(session, EquipmentStateChange, equipment_id=tool.id)) == 1
    assert audits(session, "equipment:state", "WB-01") == 0


def test_equipment_state_form_refuses_unknown_state(login, make_user, session):
    seed(session)
    operator = login(make_user("operator"))
    resp = operator.post("/catalog/equipment/WB-01/state", data={"state": "exploded"})
    assert resp.status_code == 422
    assert 'id="f-state-error"' in text(resp)
    [tool] = rows(session, Equipment, code="WB-01")
    assert tool.state == "standby"
    assert len(rows(session, EquipmentStateChange, equipment_id=tool.id)) == 1


def test_operator_may_not_create_equipment(login, make_user, session):
    operator = login(make_user("operator"))
    resp = operator.post("/catalog/equipment/new",
                         data={"code": "X-1", "kind": "saw", "state": "standby"})
    assert resp.status_code == 403
    assert rows(session, Equipment, code="X-1") == []


# --- reason codes ----------------------------------------------------------------------

def test_reason_code_created_through_form(engineer, session):
    resp = engineer.post("/catalog/reason-codes/new", data={
        "code": "VOID", "kind": "reject", "description": "Die attach void",
        "description_zh": "空洞"})
    assert resp.status_code == 303
    [reason] = rows(session, ReasonCode, code="VOID")
    assert (reason.kind, reason.description_zh, reason.active) == ("reject", "空洞", True)
    assert audits(session, "reason_code:create", "VOID") == 1


def test_reason_code_with_unknown_kind_is_refused(engineer, session):
    resp = engineer.post("/catalog/reason-codes/new", data={
        "code": "VOID", "kind": "oops", "description": "Void"})
    assert resp.status_code == 422
    assert 'id="f-kind-error"' in text(resp)
    assert rows(session, ReasonCode, code="VOID") == []


def test_reason_code_duplicate_is_refused(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/reason-codes/new", data={
        "code": "SCRATCH", "kind": "hold", "description": "Other"})
    assert resp.status_code == 409
    assert 'id="f-code-error"' in text(resp)
    assert rows(session, ReasonCode, code="SCRATCH")[0].kind == "reject"


def test_reason_code_edit_retires_code(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/reason-codes/SCRATCH/edit", data={
        "description": "Surface scratch", "description_zh": "划伤"})
    assert resp.status_code == 303
    [reason] = rows(session, ReasonCode, code="SCRATCH")
    assert (reason.description, reason.active) == ("Surface scratch", False)
    assert audits(session, "reason_code:update", "SCRATCH") == 1


def test_reason_list_filters_by_kind(engineer, session):
    seed(session)
    services.create_reason_code(session, "test", {"code": "MRB", "kind": "hold",
                                                  "description": "MRB review",
                                                  "description_zh": ""})
    session.commit()
    body = text(engineer.get("/catalog/reason-codes?kind=hold"))
    assert "MRB review" in body and "Scratch" not in body


# --- material lots ---------------------------------------------------------------------

def test_material_lot_expiry_is_entered_in_plant_time(engineer, session):
    resp = engineer.post("/catalog/material-lots/new", data={
        "code": "AU-77", "material": "wire", "description": "Gold wire",
        "expires_at": "2030-01-01T12:00"})
    assert resp.status_code == 303
    [lot] = rows(session, MaterialLot, code="AU-77")
    # The test plant is in Asia/Shanghai (UTC+8).
    assert lot.expires_at == datetime(2030, 1, 1, 4, 0, tzinfo=UTC)
    assert audits(session, "material_lot:create", "AU-77") == 1
    form = text(engineer.get("/catalog/material-lots/AU-77/edit"))
    assert 'value="2030-01-01T12:00"' in form


def test_material_lot_without_expiry(engineer, session):
    engineer.post("/catalog/material-lots/new", data={"code": "LF-1", "material": "leadframe",
                                                      "expires_at": ""})
    assert rows(session, MaterialLot, code="LF-1")[0].expires_at is None


def test_material_lot_with_bad_date_is_refused(engineer, session):
    resp = engineer.post("/catalog/material-lots/new", data={
        "code": "AU-78", "material": "wire", "expires_at": "next tuesday"})
    assert resp.status_code == 422
    assert 'id="f-expires_at-error"' in text(resp)
    assert rows(session, MaterialLot, code="AU-78") == []


def test_material_lot_duplicate_is_refused(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/material-lots/new", data={"code": "EPX-1", "material": "x"})
    assert resp.status_code == 409
    assert 'id="f-code-error"' in text(resp)
    assert rows(session, MaterialLot, code="EPX-1")[0].material == "epoxy"


def test_material_lot_edit_sets_and_clears_expiry(engineer, session):
    seed(session)
    engineer.post("/catalog/material-lots/EPX-1/edit",
                  data={"description": "Epoxy", "expires_at": "2031-06-30T08:00"})
    [lot] = rows(session, MaterialLot, code="EPX-1")
    assert (lot.description, lot.expires_at) == ("Epoxy", datetime(2031, 6, 30, 0, 0,
                                                                   tzinfo=UTC))
    resp = engineer.post("/catalog/material-lots/EPX-1/edit",
                         data={"description": "Epoxy", "expires_at": ""})
    assert resp.status_code == 303
    assert rows(session, MaterialLot, code="EPX-1")[0].expires_at is None
    assert audits(session, "material_lot:update", "EPX-1") == 2


def test_material_list_highlights_expired_lots(engineer, session):
    services.create_material_lot(session, "test", {
        "code": "OLD-1", "material": "epoxy", "description": "",
        "expires_at": datetime.now(UTC) - timedelta(days=1)})
    services.create_material_lot(session, "test", {
        "code": "NEW-1", "material": "epoxy", "description": "",
        "expires_at": datetime.now(UTC) + timedelta(days=30)})
    session.commit()
    body = text(engineer.get("/catalog/material-lots"))
    assert body.count('class="expired"') == 1
    assert re.search(r'<tr class="expired">\s*<td class="mono">OLD-1</td>', body)


def test_operators_change_an_equipments_state_but_not_its_name(login, make_user, session):
    """The rule is the catalog service's: the page and the API both call it."""
    seed(session)
    operator = make_user("operator", username="op-rename")
    tool = rows(session, Equipment, code="WB-01")[0]
    before = (len(rows(session, EquipmentStateChange)), audits(session, "equipment:update",
                                                               "WB-01"))
    with pytest.raises(Forbidden):
        services.update_equipment(session, operator, tool, {"name": "Mine now",
                                                            "state": "non_scheduled"})
    # Read through the session as the service left it: a change would be flushed and show.
    [tool] = rows(session, Equipment, code="WB-01")
    assert (tool.name, tool.state) == ("Bonder 1", "standby")
    assert (len(rows(session, EquipmentStateChange)),
            audits(session, "equipment:update", "WB-01")) == before
    # The state page offers the state only: a name posted with it is never applied.
    page = login(operator)
    resp = page.post("/catalog/equipment/WB-01/state",
                     data={"state": "non_scheduled", "name": "Mine now"})
    assert resp.status_code == 303
    session.expire_all()
    [tool] = rows(session, Equipment, code="WB-01")
    assert (tool.name, tool.state) == ("Bonder 1", "non_scheduled")
    engineer = make_user("engineer", username="eng-rename")
    services.update_equipment(session, engineer, tool, {"name": "Bonder One"})
    session.commit()
    assert rows(session, Equipment, code="WB-01")[0].name == "Bonder One"


def test_qualification_form_offers_the_standard_and_grades_of_the_products_kind(engineer,
                                                                               session):
    seed(session)
    page = text(engineer.get("/catalog/products/P1/qualifications/new"))
    assert '<option value="AEC-Q100"' in page
    assert "AEC-Q200" not in page and '<option value="AEC-Q101"' not in page
    assert all(f'<option value="{g}"' in page for g in range(4))
    # The stress table with its minimum samples, preconditioning for a QFN part.
    assert re.search(r'<td class="mono">ELFR</td>\s*<td class="mono">B2</td>\s*<td>[^<]+</td>'
                     r'\s*<td class="num">800</td>\s*<td class="num">3</td>', page)
    product = rows(session, Product, code="P1")[0]
    services.update_product(session, "test", product, {"kind": "discrete"})
    session.commit()
    page = text(engineer.get("/catalog/products/P1/qualifications/new"))
    assert '<option value="AEC-Q101"' in page and '<option value="AEC-Q100"' not in page
    assert '<option value="0"' in page and '<option value="1"' in page
    assert '<option value="2"' not in page and "HTRB" in page


def test_qualification_form_refuses_a_small_sample_naming_the_stress(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/P1/qualifications/new", data={
        "standard": "AEC-Q100", "grade": "1", "tests": "HTOL | 1 | 1 | 0"})
    assert resp.status_code == 422
    assert "HTOL needs at least 77 units per lot from 3 lot(s)" in text(resp)
    assert rows(session, Qualification) == []


def test_qualification_form_names_the_bom_revision(engineer, session):
    seed(session)
    services.create_bom(session, "test", rows(session, Product, code="P1")[0], {
        "revision": "R2", "items": [{"step": "DA", "material": "epoxy",
                                     "part_numbers": ["EPX-9"]}]})
    session.commit()
    page = text(engineer.get("/catalog/products/P1/qualifications/new"))
    assert '<option value="R2" selected' in page
    detail = text(engineer.get("/catalog/products/P1"))
    assert re.search(r'data-bom-qualification="R2">\s*<span class="badge badge-failed">', detail)
    resp = engineer.post("/catalog/products/P1/qualifications/new", data={
        "standard": "AEC-Q100", "grade": "1", "bom_revision": "R2",
        "tests": "HTOL | 77 | 3 | 0"})
    assert resp.status_code == 303
    [qual] = rows(session, Qualification)
    assert qual.bom.revision == "R2"
    detail = text(engineer.get("/catalog/products/P1"))
    assert "BOM revision R2" in detail
    assert re.search(r'data-bom-qualification="R2">\s*<span class="badge badge-passed">'
                     r'qualified</span> Stresses passed on this revision: HTOL\.', detail)


def test_product_form_sets_kind_and_qualification_family(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/products/new", data={
        "code": "D1", "name": "Diode", "package": "SOD-123", "route": "QFN",
        "kind": "discrete", "aec_grade": "1", "msl": "1", "qual_family": "SOD-FAM"})
    assert resp.status_code == 303, text(resp)[:2000]
    [product] = rows(session, Product, code="D1")
    assert (product.kind, product.qual_family) == ("discrete", "SOD-FAM")
    resp = engineer.post("/catalog/products/D1/edit", data={
        "name": "Diode", "package": "SOD-123", "route": "QFN", "kind": "bogus",
        "aec_grade": "1", "msl": "1"})
    assert resp.status_code == 422
    session.expire_all()
    assert rows(session, Product, code="D1")[0].kind == "discrete"
