"""The database keeps every column that holds a code of a closed set (mes/vocabulary.py) to
its codes, whoever writes it: the models declare a CHECK with the vocabulary's codes, the
migrated database has each of them, and a stray code is refused with the row left as it
was."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import CheckConstraint, inspect, select, update
from sqlalchemy.exc import IntegrityError

import mes.models  # noqa: F401  (every table, for CHECKS)
from mes import vocabulary as v
from mes.catalog import services as catalog
from mes.catalog.models import Customer, Equipment, ReasonCode
from mes.changes.models import Change, Pcn
from mes.commonality.models import ComplaintReturn, FailureAnalysis
from mes.complaints.models import Complaint, ComplaintUnit, EightDStepRow
from mes.db import Base, get_db, utcnow
from mes.events import publish
from mes.events.models import Delivery, Webhook
from mes.floor.models import LotEdge
from mes.forecast.models import ForecastDistribution, LineOutlook
from mes.orders.models import OrderLine, PurchaseOrder
from mes.quality.models import FutureHold, Hold, MoistureClock
from mes.shipping.models import PackUnit
from mes.spc.models import SpcEvent, SpcPlan
from mes.testfloor.models import TestBin, TestStepSetup

# Every column that holds a code, and its vocabulary.
COLUMNS = {
    ("user_account", "role"): v.Role, ("user_account", "locale"): v.Language,
    ("customer", "kind"): v.CustomerKind,
    ("route_step", "kind"): v.StepKind, ("product", "msl"): v.MslLevel,
    ("product", "kind"): v.ProductKind,
    ("equipment", "state"): v.EquipmentState,
    ("equipment_state_change", "from_state"): v.EquipmentState,
    ("equipment_state_change", "to_state"): v.EquipmentState,
    ("reason_code", "kind"): v.ReasonKind,
    ("reason_code", "customer_category"): v.CustomerCategory,
    ("qualification", "standard"): v.QualStandard,
    ("qualification", "status"): v.QualStatus, ("lot", "state"): v.LotState,
    ("lot_edge", "kind"): v.EdgeKind, ("lot_event", "kind"): v.EventKind,
    ("hold", "source"): v.HoldSource, ("hold", "status"): v.HoldStatus,
    ("hold", "disposition"): v.Disposition, ("future_hold", "match_kind"): v.MatchKind,
    ("future_hold", "status"): v.FutureHoldStatus, ("moisture_clock", "state"): v.MoistureState,
    ("test_run", "source"): v.TestRunSource, ("lot_closed_total", "state"): v.LotState,
    ("hold", "text_code"): v.SystemText,
    ("spc_plan", "chart"): v.ChartKind, ("spc_event", "state"): v.SpcEventState,
    ("product_change", "kind"): v.ChangeKind, ("pcn", "status"): v.PcnStatus,
    ("durable", "kind"): v.DurableKind, ("durable_mount", "action"): v.DurableAction,
    ("pack_unit", "kind"): v.PackKind,
    ("complaint", "state"): v.ComplaintState, ("complaint_unit", "kind"): v.ScanKind,
    ("eightd_step", "step"): v.EightDStep,
    ("outbox_event", "type"): v.EventType, ("webhook_delivery", "state"): v.DeliveryState,
    ("failure_analysis", "result"): v.AnalysisResult,
    ("forecast_distribution", "kind"): v.DistributionKind,
    ("forecast_distribution", "source"): v.DistributionSource,
    ("order_line_outlook", "status"): v.LineStatus,
    ("test_bin", "kind"): v.BinKind,
    ("test_insertion", "state"): v.InsertionState, ("test_run", "pass_kind"): v.TestPass,
}
# The CHECKs that bound a value rather than name a code (they hold no code to compare).
VALUE_CHECKS = {("pm_plan", "one_interval"), ("pm_plan", "every_days"),
                ("pm_plan", "every_units"), ("pack_unit", "quantity_positive"),
                ("order_line", "quantity_positive"), ("order_line", "line_no_positive"),
                ("partner_grant", "one_scope")}

# (table, constraint name, column) of every CHECK the models declare.
CHECKS = [(table, str(check.name), str(check.name).removeprefix(f"ck_{table.name}_"))
          for table in Base.metadata.sorted_tables for check in table.constraints
          if isinstance(check, CheckConstraint)]


def _codes(sql: str) -> set[str]:
    return set(re.findall(r"'([^']*)'", sql))


def _declared(table, name: str) -> str:
    return str(next(c.sqltext for c in table.constraints if c.name == name))


def test_the_models_check_every_code_column_with_its_vocabulary():
    declared = {(table.name, column) for table, _name, column in CHECKS}
    assert declared - VALUE_CHECKS == set(COLUMNS)
    assert declared >= VALUE_CHECKS
    for table, name, column in CHECKS:
        if (table.name, column) in VALUE_CHECKS:
            assert not _codes(_declared(table, name)), name
            continue
        assert _codes(_declared(table, name)) == {m.value for m in COLUMNS[table.name, column]}


def test_the_migrated_database_has_each_check(app):
    reflected = inspect(get_db(app).engine)
    for table, name, _column in CHECKS:
        found = {c["name"]: c["sqltext"] for c in reflected.get_check_constraints(table.name)}
        assert name in found, f"{name} is missing from the database"
        assert _codes(found[name]) == _codes(_declared(table, name)), name


@pytest.fixture
def a_row_everywhere(session, tested, make_user) -> None:
    """At least one row in every table that has a code column."""
    user = make_user("operator")
    user.locale = "zh_CN"
    lot = tested("L-CODES", 100, 98)
    other = tested("L-CODES-2", 100, 98)
    reason_id = session.scalars(select(ReasonCode.id).where(ReasonCode.code == "H-ENG")).one()
    session.add_all([
        Hold(lot_id=lot.id, reason_id=reason_id, comment="c", placed_by="qa", status="released",
             disposition="use_as_is", released_by="qa2", released_at=utcnow()),
        LotEdge(parent_id=lot.id, child_id=other.id, kind="split", qty=1, step_code="FT"),
        FutureHold(reason_id=reason_id, comment="c", at_step="FT", match_kind="fab_lot",
                   match={"fab_lot": "F"}, created_by="qa"),
        MoistureClock(lot_id=lot.id, state="open", open_since=utcnow() - timedelta(hours=1)),
    ])
    other.state = "shipped"  # a closed lot: a row of lot_closed_total
    plan = SpcPlan(code="PULL", step_code="WB", characteristic="Wire pull", unit="gf",
                   subgroup_size=5, chart="xbar_r", rules=[1])
    session.add(plan)
    session.flush()
    tool_id = session.scalars(select(Equipment.id).order_by(Equipment.id).limit(1)).one()
    session.add(SpcEvent(plan_id=plan.id, equipment_id=tool_id, rule=1, since=utcnow()))
    customer_id = session.scalars(select(Customer.id).order_by(Customer.id).limit(1)).one()
    change = Change(title="Mold compound", kind="material", required_stresses=["TC"])
    session.add(change)
    session.flush()
    session.add(Pcn(change_id=change.id, customer_id=customer_id, notice_days=90,
                    effective_date=utcnow().date(), status="pending"))
    catalog.create_durable(session, "eng", {"code": "CAP-1", "kind": "capillary",
                                            "life_limit": 10})
    catalog.mount_durable(session, "eng", session.get(Equipment, tool_id), "CAP-1")
    session.add(PackUnit(kind="reel", product_id=lot.product_id, customer_id=lot.customer_id,
                         lot_id=lot.id, quantity=lot.quantity))
    complaint = Complaint(customer_id=lot.customer_id, reference="CODES", received_at=utcnow(),
                          description="d", created_by="qa")
    complaint.units.append(ComplaintUnit(scan=lot.lot_no, kind="lot", failure_mode="open",
                                         count=1))
    complaint.steps.append(EightDStepRow(step="D0", due_at=utcnow()))
    ret = ComplaintReturn(units=1, received_at=utcnow(), created_by="qa")
    ret.analyses.append(FailureAnalysis(step="decap", result="finding", created_by="qa"))
    complaint_returns = [ret]
    session.add(complaint)
    event = publish(session, "lot.hold.placed", customer_id=lot.customer_id, lot_id=lot.id,
                    data={"lot_no": lot.lot_no})
    webhook = Webhook(customer_id=lot.customer_id, url="http://127.0.0.1:9/", events=[],
                      secret="whsec_x")
    session.add(webhook)
    session.flush()
    session.add(Delivery(webhook_id=webhook.id, event_id=event.id))
    for one in complaint_returns:
        one.complaint_id = complaint.id
        session.add(one)
    session.add(ForecastDistribution(kind="step", key="R/S", source="own", samples=1,
                                     points=[1.0]))
    order = PurchaseOrder(customer_id=lot.customer_id, po="PO-CODES")
    order.lines.append(OrderLine(line_no=1, product_id=lot.product_id, quantity=1,
                                 need_date=utcnow().date()))
    session.add(order)
    session.flush()
    session.add(LineOutlook(line_id=order.lines[0].id, status="short", projected_p50=0,
                            projected_p90=0))
    session.add(TestStepSetup(product_id=lot.product_id, step_code="FT", bins=[
        TestBin(kind="hard", bin=1, passing=True, name="Good")]))
    session.commit()


def test_a_stray_code_is_refused_and_the_row_stays_as_it_was(session, a_row_everywhere):
    for table, name, column in CHECKS:
        if (table.name, column) in VALUE_CHECKS:
            continue
        key = list(table.primary_key.columns)
        *row_key, before = session.execute(
            select(*key, table.c[column]).order_by(*key).limit(1)).one()
        this_row = [c == value for c, value in zip(key, row_key, strict=True)]
        with pytest.raises(IntegrityError) as refused, session.begin_nested():
            session.execute(update(table).where(*this_row)
                            .values({column: "zz"}))  # short enough for every column
        assert name in str(refused.value)
        assert session.execute(select(table.c[column]).where(*this_row)) \
            .scalar_one() == before, name
