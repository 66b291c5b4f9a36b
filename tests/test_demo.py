from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, table

from mes import demo
from mes.audit.models import AuditEvent
from mes.audit.services import verify
from mes.auth.models import User
from mes.auth.permissions import Role
from mes.catalog.models import (
    Customer,
    Equipment,
    MaterialLot,
    Product,
    Qualification,
    ReasonCode,
    RouteStep,
)
from mes.catalog.services import list_routes
from mes.errors import InvalidInput

DOC = Path(__file__).resolve().parent.parent / "docs" / "demo.md"


def row_counts(session):
    names = inspect(session.connection()).get_table_names()
    return {name: session.scalar(select(func.count()).select_from(table(name)))
            for name in names}


def documented_logins():
    """(user, password, role, customer) rows of the logins table in docs/demo.md."""
    text = DOC.read_text(encoding="utf-8").split("## Logins", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
            rows.append((cells[0], cells[1], cells[2], cells[3] or None))
    return rows


@pytest.fixture
def loaded(app, session):
    with app.app_context():  # the test configuration's fast password hashing
        assert demo.load_demo(session) is True
    session.commit()
    return session


def test_load_demo_creates_customers_routes_products_equipment_codes_lots_users(loaded):
    customers = loaded.scalars(select(Customer)).all()
    assert sorted((c.code, c.automotive) for c in customers) == [
        ("BRIGHTMOOR", False), ("CYANLAKE", True), ("FERROQUILL", True)]
    assert [(r.code, r.version) for r in list_routes(loaded)] == [("QFN-AUTO", 1),
                                                                   ("SOP-TF", 1)]
    assert loaded.scalar(select(func.count()).select_from(Product)) == 5
    assert loaded.scalar(select(func.count()).select_from(Equipment)) == len(demo.EQUIPMENT)
    kinds = Counter(loaded.scalars(select(ReasonCode.kind)))
    assert kinds == {"reject": 25, "hold": 8, "scrap": 4}
    assert loaded.scalar(select(func.count()).select_from(MaterialLot)) == 14
    assert Counter(loaded.scalars(select(User.role))) == {
        "admin": 1, "engineer": 1, "qa": 2, "planner": 1, "operator": 2, "customer": 2}


def test_qfn_route_has_the_product_flow_with_materials_and_yields(loaded):
    routes = {r.code: r for r in list_routes(loaded)}
    qfn = {s.code: s for s in routes["QFN-AUTO"].steps}
    assert [s.code for s in routes["QFN-AUTO"].steps] == [
        "IQC", "BG", "MOUNT", "SAW", "OPT2", "DA", "PLASMA", "WB", "OPT3", "MOLD", "PMC",
        "PLATE", "MARK", "SING", "FVI", "FT-R", "FT-H", "FT-C", "QA", "TNR", "DRYPACK"]
    assert qfn["DA"].materials == ["epoxy", "leadframe"]
    assert qfn["WB"].materials == ["wire"]
    assert qfn["MOLD"].materials == ["mold_compound"]
    assert (qfn["SAW"].min_yield, qfn["WB"].min_yield) == (99.0, 99.5)
    assert {qfn[c].kind for c in ("FT-R", "FT-H", "FT-C")} == {"test"}
    assert (qfn["TNR"].kind, qfn["DRYPACK"].kind, qfn["FVI"].kind) == ("pack", "pack",
                                                                       "inspection")
    sop = [s.code for s in routes["SOP-TF"].steps]
    assert {"DEFLASH", "TRIM_FORM"} <= set(sop) and "SING" not in sop


def test_every_step_has_an_english_and_a_chinese_name(loaded):
    steps = loaded.scalars(select(RouteStep)).all()
    assert all(s.name and s.name.isascii() for s in steps)
    assert {s.code for s in steps} == set(demo.STEP_NAMES_ZH)
    assert all(not name.isascii() for name in demo.STEP_NAMES_ZH.values())


def test_every_reason_code_has_english_and_chinese_descriptions(loaded):
    reasons = loaded.scalars(select(ReasonCode)).all()
    assert {"WB-NSOP", "MOLD-WIRE-SWEEP", "HOLD-MSL", "SCRAP-MRB"} <= {r.code for r in reasons}
    assert all(r.description and r.description_zh and not r.description_zh.isascii()
               for r in reasons)


def test_exactly_one_automotive_product_is_not_qualified(loaded):
    products = loaded.scalars(select(Product)).all()
    assert all(p.customer is not None for p in products)
    unqualified = [p.code for p in products if p.customer.automotive and not p.qualified]
    assert unqualified == ["BM-4424"]
    consumer = [p for p in products if not p.customer.automotive]
    assert [(p.aec_grade, p.msl) for p in consumer] == [(None, "1")]


def test_qualifications_are_passed_aec_q100_at_the_product_grade(loaded):
    quals = loaded.scalars(select(Qualification)).all()
    assert len(quals) == 3
    for qual in quals:
        assert (qual.standard, qual.status, qual.grade) == ("AEC-Q100", "passed",
                                                            qual.product.aec_grade)
        assert {t.test for t in qual.tests} == {"HTOL", "TC", "HAST", "HTSL", "ESD HBM",
                                                "ESD CDM", "LU"}
        assert {(t.sample_size, t.lots, t.fails) for t in qual.tests} == {(77, 3, 0)}


def test_every_equipment_kind_of_every_step_has_an_available_machine(loaded):
    states = {}
    for eq in loaded.scalars(select(Equipment)):
        states.setdefault(eq.kind, set()).add(eq.state)
    for step in loaded.scalars(select(RouteStep)):
        assert step.equipment_kind in states, step.code
        assert states[step.equipment_kind] & {"productive", "standby"}, step.code
    all_states = Counter(eq.state for eq in loaded.scalars(select(Equipment)))
    assert (all_states["unscheduled_down"], all_states["engineering"]) == (1, 1)
    assert all_states["productive"] + all_states["standby"] == len(demo.EQUIPMENT) - 2
    assert len([k for k in loaded.scalars(select(Equipment.kind)) if k == "wire_bonder"]) == 4
    assert len([k for k in loaded.scalars(select(Equipment.kind)) if k == "tester"]) == 3


def test_every_step_material_has_a_usable_lot_and_one_lot_is_expired(loaded):
    lots = loaded.scalars(select(MaterialLot)).all()
    expired = [lot.code for lot in lots if lot.expired]
    assert expired == ["EPX-2609-011"]
    usable = {lot.material for lot in lots if not lot.expired}
    needed = {m for step in loaded.scalars(select(RouteStep)) for m in step.materials}
    assert needed == {"epoxy", "leadframe", "wire", "mold_compound"}
    assert needed <= usable


def test_every_demo_record_is_audited_by_the_demo_actor_and_the_chain_verifies(loaded):
    codes = Counter(loaded.scalars(select(AuditEvent.code).where(AuditEvent.actor == "demo")))
    assert codes == {"customer:create": 3, "route:create": 2, "product:create": 5,
                     "product:qualification": 3, "equipment:create": len(demo.EQUIPMENT),
                     "reason_code:create": 37, "material_lot:create": 14, "user:create": 9}
    assert verify(loaded).ok


def test_second_load_changes_nothing_and_returns_false(loaded):
    before = row_counts(loaded)
    audit_before = loaded.scalar(select(func.count()).select_from(AuditEvent))
    assert demo.load_demo(loaded) is False
    loaded.commit()
    assert row_counts(loaded) == before
    assert loaded.scalar(select(func.count()).select_from(AuditEvent)) == audit_before


def test_invalid_demo_data_is_refused_by_the_input_schemas_and_creates_nothing(session,
                                                                                monkeypatch):
    before = row_counts(session)
    monkeypatch.setattr(demo, "REASON_CODES", [("BAD CODE", "reject", "Space in code", "")])
    with pytest.raises(InvalidInput) as err:
        demo.load_demo(session)
    assert "reason code BAD CODE" in err.value.fields
    session.flush()
    assert row_counts(session) == before


def test_docs_list_every_demo_login_with_its_password():
    assert documented_logins() == [(u["username"], u["password"], u["role"],
                                    u.get("customer")) for u in demo.DEMO_USERS]
    assert {role for _u, _p, role, _c in documented_logins()} == {r.value for r in Role}


def test_demo_users_log_in_with_the_documented_passwords(loaded, app):
    for username, password, _role, customer in documented_logins():
        client = app.test_client()
        resp = client.post("/login", data={"username": username, "password": password})
        assert resp.status_code == 302, username
        user = loaded.scalar(select(User).where(User.username == username))
        assert user.customer_code == customer


def test_demo_login_refused_with_a_wrong_password(loaded, app):
    resp = app.test_client().post("/login", data={"username": "admin",
                                                  "password": "demo-admin-2025"})
    assert resp.status_code == 200
    assert "Wrong user name or password" in resp.get_data(as_text=True)


def test_cli_demo_load_creates_once_then_reports_present(app, connection, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0, first.output
    assert "Demo plant loaded." in first.output
    counts = row_counts(session)
    assert counts["customer"] == 3 and counts["user_account"] == 9
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0, second.output
    assert "already present; nothing changed" in second.output
    assert row_counts(session) == counts
