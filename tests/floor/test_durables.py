"""Durables: consumables with counters mounted on tools. A track-in reserves the lot's uses
on every durable mounted on the tool (refused when one has not enough life left), the
track-out turns them into used, undoing the track-in releases them."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, update

from mes.catalog import services as catalog
from mes.catalog.models import Durable, DurableMount
from mes.errors import Conflict, InvalidInput
from mes.floor import persistence, services
from tests.floor.test_station import fresh, page_of
from tests.helpers import audit_codes, refused

LIMIT = 1_500_000


@pytest.fixture
def wb32(session, plant):
    """A 32-wire product bonded on WB-2 (touchdowns per unit 32)."""
    catalog.create_route(session, "eng", {"code": "W32", "name": "32 wires", "steps": [
        {"code": "WB", "name": "Wire bond", "kind": "assembly", "equipment_kind": "wire_bonder",
         "materials": [], "touchdowns_per_unit": 32},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
         "materials": []}]})
    catalog.create_product(session, "eng", {"code": "P32", "name": "32 wires", "package": "QFN",
                                            "route": "W32", "customer": "OEM"})
    session.commit()


def _capillary(session, used: int, code: str = "CAP-1", tool: str = "WB-2",
               limit: int = LIMIT, warn: int = 90) -> Durable:
    durable = catalog.create_durable(session, "eng", {"code": code, "kind": "capillary",
                                                      "life_limit": limit, "used": used,
                                                      "warn_at_pct": warn})
    catalog.mount_durable(session, "eng", catalog.get_equipment(session, tool), code)
    session.commit()
    return durable


def _lot(receive, quantity: int = 45_000):
    return receive(quantity, product="P32")


def _rolled_back(session, call):
    """`call`, with the rollback a refused request makes (on PostgreSQL a move takes its
    audit number with the lot)."""
    def run():
        try:
            call()
        except Conflict:
            session.rollback()
            raise
    return run


def _counts(session, code: str = "CAP-1") -> tuple[int, int]:
    session.expire_all()
    d = session.scalars(select(Durable).where(Durable.code == code)).one()
    return d.used, d.reserved


# --- the rule of the issue, exactly ----------------------------------------------------

def test_a_capillary_with_1_450_000_left_takes_a_45_000_unit_lot_of_32_wires(
        session, receive, wb32):
    _capillary(session, used=50_000)
    lot = _lot(receive)
    services.track_in(session, "op", services.lot_to_move(session, lot.lot_no, tool="WB-2"),
                      step="WB", equipment="WB-2")
    session.commit()
    assert _counts(session) == (50_000, 1_440_000)
    services.track_out(session, "op", services.lot_to_move(session, lot.lot_no), step="WB",
                       good_qty=44_990, rejects=[{"reason": "R-BALL", "qty": 10}])
    session.commit()
    # Every unit that went in was bonded, good or rejected.
    assert _counts(session) == (1_490_000, 0)


def test_a_capillary_with_1_439_999_left_refuses_it_naming_the_count_left(
        api, session, receive, wb32):
    _capillary(session, used=60_001)
    lot = _lot(receive)
    op = api("operator")
    error = refused(session, lambda: op.post(f"/lots/{lot.lot_no}/track-in", json={
        "step": "WB", "equipment": "WB-2"}), 409, code="durable_exhausted")
    assert "CAP-1" in error["message"] and "1,439,999" in error["message"]
    assert "1,440,000" in error["message"]


def test_the_service_refuses_it_before_writing_anything(session, receive, wb32):
    _capillary(session, used=60_001)
    lot = _lot(receive)
    refused(session, _rolled_back(session, lambda: services.track_in(
        session, "op", services.lot_to_move(session, lot.lot_no, tool="WB-2"), step="WB",
        equipment="WB-2")), Conflict, code="durable_exhausted")
    # And with a plain lot (the durables read on their own).
    refused(session, lambda: services.track_in(session, "op", fresh(session, lot.lot_no),
                                               step="WB", equipment="WB-2"),
            Conflict, code="durable_exhausted")


def test_every_durable_mounted_on_the_tool_counts(session, receive, wb32):
    _capillary(session, used=0)
    catalog.create_durable(session, "eng", {"code": "CAP-X", "kind": "capillary",
                                            "life_limit": 10})
    # A second kind on the same tool, nearly worn: it refuses the lot.
    catalog.create_durable(session, "eng", {"code": "CLAMP-1", "kind": "socket",
                                            "life_limit": 1_000_000})
    catalog.mount_durable(session, "eng", catalog.get_equipment(session, "WB-2"), "CLAMP-1")
    session.commit()
    lot = _lot(receive)
    error = refused(session, _rolled_back(session, lambda: services.track_in(
        session, "op", services.lot_to_move(session, lot.lot_no, tool="WB-2"), step="WB",
        equipment="WB-2")), Conflict, code="durable_exhausted")
    assert "CLAMP-1" in str(error.message)


def test_a_tool_without_durables_counts_nothing(session, receive, wb32):
    lot = _lot(receive)
    services.track_in(session, "op", services.lot_to_move(session, lot.lot_no, tool="WB-2"),
                      step="WB", equipment="WB-2")
    services.track_out(session, "op", services.lot_to_move(session, lot.lot_no), step="WB",
                       good_qty=45_000)
    session.commit()
    assert session.scalar(select(Durable.id)) is None


def test_undoing_the_track_in_releases_the_reservation(session, receive, wb32):
    _capillary(session, used=50_000)
    lot = _lot(receive)
    services.track_in(session, "op", services.lot_to_move(session, lot.lot_no, tool="WB-2"),
                      step="WB", equipment="WB-2")
    session.commit()
    services.abort_track_in(session, "op", fresh(session, lot.lot_no), reason="wrong_lot")
    session.commit()
    assert _counts(session) == (50_000, 0)


def test_a_reservation_lost_to_a_simultaneous_track_in_is_refused(api, session, receive, wb32):
    _capillary(session, used=50_000)
    lot = _lot(receive)
    move = services.lot_to_move(session, lot.lot_no, tool="WB-2")
    # Another lot took life between the read and the write.
    session.execute(update(Durable).where(Durable.code == "CAP-1").values(reserved=100_000))
    with pytest.raises(Conflict) as caught:
        services.track_in(session, "op", move, step="WB", equipment="WB-2")
    assert caught.value.code == "durable_exhausted"
    session.rollback()
    assert _counts(session) == (50_000, 0)


def test_the_reservation_is_one_conditional_statement(session, plant):
    _capillary(session, used=0, limit=100, tool="SAW-1")
    tool = catalog.get_equipment(session, "SAW-1")
    first = persistence.DurableWrite("reserve", tool.id, 60)
    second = persistence.DurableWrite("reserve", tool.id, 60)
    persistence.write_durables(session, first)
    persistence.write_durables(session, second)
    assert (first.answered, second.answered) == (1, 0)
    assert _counts(session) == (0, 60)


def test_track_in_and_out_stay_two_statements_on_postgresql_with_durables(session, receive):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("a move is one statement on PostgreSQL only")
    _capillary(session, used=0, code="BLADE-1", tool="SAW-1")
    lot_no = receive(1000).lot_no
    # A first move: the connection claims its audit series on first use.
    first = receive(1000).lot_no
    services.track_in(session, "op", services.lot_to_move(session, first, tool="SAW-1"),
                      step="SAW", equipment="SAW-1")
    services.track_out(session, "op", services.lot_to_move(session, first), step="SAW",
                       good_qty=1000)
    session.commit()
    for move in ("in", "out"):
        seen: list[str] = []
        event.listen(session.connection(), "before_cursor_execute",
                     lambda _c, _cur, statement, *_a, seen=seen: seen.append(statement))
        if move == "in":
            services.track_in(session, "op", services.lot_to_move(session, lot_no, tool="SAW-1"),
                              step="SAW", equipment="SAW-1")
        else:
            services.track_out(session, "op", services.lot_to_move(session, lot_no), step="SAW",
                               good_qty=1000)
        # (Before the commit, which may write an audit checkpoint.)
        statements = [s for s in seen if not s.lstrip().upper().startswith(
            ("SAVEPOINT", "RELEASE"))]
        session.commit()
        # The lot with the durables' counts, then the move with the durables' update.
        assert len(statements) == 2, "\n----\n".join(s[:150] for s in statements)
        assert all("durable" in s for s in statements)
    assert _counts(session, "BLADE-1") == (2000, 0)


# --- creating and mounting -------------------------------------------------------------

def test_create_a_durable(api, session, plant):
    resp = api("engineer").post("/durables", json={"code": "CAP-9", "kind": "capillary",
                                                   "life_limit": LIMIT})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert {k: body[k] for k in ("code", "kind", "life_limit", "used", "equipment",
                                 "warn_at_pct")} == {
        "code": "CAP-9", "kind": "capillary", "life_limit": LIMIT, "used": 0,
        "equipment": None, "warn_at_pct": 90}
    assert "durable:create" in audit_codes(session, "durable", "CAP-9")


@pytest.mark.parametrize("body, field", [
    ({"code": "X", "kind": "hammer", "life_limit": 5}, "kind"),
    ({"code": "X", "kind": "capillary", "life_limit": 0}, "life_limit"),
    ({"code": "X", "kind": "capillary", "life_limit": 5, "warn_at_pct": 101}, "warn_at_pct"),
    ({"code": "X", "kind": "capillary", "life_limit": 5, "used": 6}, "used"),
    ({"code": "X", "kind": "capillary"}, "life_limit"),
])
def test_bad_durables_are_refused(api, session, plant, body, field):
    eng = api("engineer")
    refused(session, lambda: eng.post("/durables", json=body), 422,
            code="invalid", field=field)


def test_a_duplicate_durable_is_refused(api, session, plant):
    _capillary(session, used=0)
    eng = api("engineer")
    refused(session, lambda: eng.post("/durables", json={
        "code": "CAP-1", "kind": "capillary", "life_limit": 5}), 409, code="duplicate")


def test_operators_may_not_create_or_mount_durables(api, session, plant):
    _capillary(session, used=0)
    catalog.create_durable(session, "eng", {"code": "CAP-2", "kind": "capillary",
                                            "life_limit": 5})
    session.commit()
    op = api("operator")
    refused(session, lambda: op.post("/durables", json={
        "code": "CAP-3", "kind": "capillary", "life_limit": 5}), 403, code="forbidden")
    refused(session, lambda: op.post("/equipment/WB-2/durables", json={"durable": "CAP-2"}),
            403, code="forbidden")


def test_mounting_replaces_the_durable_of_the_same_kind_and_is_recorded(api, session, plant):
    _capillary(session, used=1000)
    catalog.create_durable(session, "eng", {"code": "CAP-2", "kind": "capillary",
                                            "life_limit": LIMIT})
    session.commit()
    resp = api("engineer").post("/equipment/WB-2/durables", json={"durable": "CAP-2"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["equipment"] == "WB-2"
    session.expire_all()
    on_tool = {d.code: d.equipment.code if d.equipment else None
               for d in session.scalars(select(Durable))}
    assert on_tool == {"CAP-1": None, "CAP-2": "WB-2"}
    history = [(h.durable.code, h.action, h.used, h.by is not None) for h in
               session.scalars(select(DurableMount).order_by(DurableMount.id))]
    assert history == [("CAP-1", "mount", 1000, True), ("CAP-1", "unmount", 1000, True),
                       ("CAP-2", "mount", 0, True)]
    assert audit_codes(session, "durable", "CAP-1") == ["durable:create", "durable:mount",
                                                        "durable:unmount"]
    assert audit_codes(session, "durable", "CAP-2") == ["durable:create", "durable:mount"]


def test_moving_a_durable_from_another_tool_takes_it_off_there(session, plant):
    _capillary(session, used=0, tool="WB-1")
    catalog.mount_durable(session, "eng", catalog.get_equipment(session, "WB-2"), "CAP-1")
    session.commit()
    assert catalog.get_durable(session, "CAP-1").equipment.code == "WB-2"
    actions = [(h.equipment.code, h.action) for h in
               session.scalars(select(DurableMount).order_by(DurableMount.id))]
    assert actions == [("WB-1", "mount"), ("WB-1", "unmount"), ("WB-2", "mount")]


def test_no_durable_changes_on_a_tool_running_a_lot(api, session, receive, wb32):
    _capillary(session, used=0)
    catalog.create_durable(session, "eng", {"code": "CAP-2", "kind": "capillary",
                                            "life_limit": LIMIT})
    session.commit()
    lot = _lot(receive, 100)
    services.track_in(session, "op", lot, step="WB", equipment="WB-2")
    session.commit()
    eng = api("engineer")
    refused(session, lambda: eng.post("/equipment/WB-2/durables", json={"durable": "CAP-2"}),
            409, code="equipment_busy")
    refused(session, lambda: catalog.unmount_durable(session, "eng",
                                                     catalog.get_durable(session, "CAP-1")),
            Conflict, code="equipment_busy")


def test_mounting_an_unknown_durable_is_refused(api, session, plant):
    eng = api("engineer")
    refused(session, lambda: eng.post("/equipment/WB-2/durables", json={"durable": "NOPE"}),
            422, code="invalid", field="durable")
    refused(session, lambda: eng.post("/equipment/NOPE/durables", json={"durable": "NOPE"}),
            404, code="not_found")
    with pytest.raises(InvalidInput):
        catalog.mount_durable(session, "eng", catalog.get_equipment(session, "WB-2"), "NOPE")


def test_list_and_read_durables(api, session, plant):
    _capillary(session, used=10)
    eng = api("engineer")
    items = eng.get("/durables?equipment=WB-2").get_json()["items"]
    assert [d["code"] for d in items] == ["CAP-1"]
    assert eng.get("/durables?kind=saw_blade").get_json()["items"] == []
    assert eng.get("/durables/CAP-1").get_json()["used"] == 10


def test_route_steps_carry_touchdowns_per_unit(api, session, plant, wb32):
    eng = api("engineer")
    body = eng.get("/routes/W32").get_json()
    assert [s["touchdowns_per_unit"] for s in body["steps"]] == [32, 1]
    refused(session, lambda: eng.post("/routes", json={
        "code": "BAD", "name": "bad", "steps": [{"code": "S", "name": "S", "kind": "assembly",
                                                 "touchdowns_per_unit": 0}]}),
            422, code="invalid")


# --- the station and the pages ---------------------------------------------------------

@pytest.fixture
def operator(login, make_user):
    return login(make_user("operator"))


def test_station_shows_an_exhausted_durable_before_anything_is_typed(
        operator, session, receive, wb32):
    # WB-1 is running another lot, WB-3 is down: WB-2 is the tool, and its capillary is worn.
    _capillary(session, used=60_001)
    busy = receive(10, product="P32")
    services.track_in(session, "op", busy, step="WB", equipment="WB-1")
    session.commit()
    lot = _lot(receive)
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert "blocker-durable_exhausted" in page
    assert "1,439,999" in page and "CAP-1" in page
    assert "Change the capillary on WB-2" in page


def test_station_warns_at_the_warning_level(operator, session, receive, wb32):
    _capillary(session, used=1_400_000, limit=5_000_000, warn=25)
    lot = _lot(receive, 1000)
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert "durable-warning" in page and "CAP-1" in page
    assert "blocker-durable_exhausted" not in page


def test_engineer_pages(login, make_user, session, plant):
    _capillary(session, used=1000)
    eng = login(make_user("engineer"))
    page = page_of(eng.get("/catalog/durables"))
    assert "CAP-1" in page and "WB-2" in page
    resp = eng.post("/catalog/durables/new", data={"code": "BLD-1", "kind": "saw_blade",
                                                  "life_limit": "50000", "warn_at_pct": "90"})
    assert resp.status_code == 303, page_of(resp)
    resp = eng.post("/catalog/equipment/SAW-1/durables", data={"durable": "BLD-1"})
    assert resp.status_code == 303, page_of(resp)
    page = page_of(eng.get("/catalog/equipment/SAW-1/durables"))
    assert "BLD-1" in page
    resp = eng.post("/catalog/equipment/SAW-1/durables", data={"unmount": "BLD-1"})
    assert resp.status_code == 303
    assert catalog.get_durable(session, "BLD-1").equipment_id is None
    refused(session, lambda: eng.post("/catalog/durables/new", data={
        "code": "BLD-2", "kind": "saw_blade", "life_limit": "0"}), 422)


def test_operators_read_but_do_not_change_durables_on_pages(login, make_user, session, plant):
    _capillary(session, used=0)
    op = login(make_user("operator"))
    assert op.get("/catalog/equipment/WB-2/durables").status_code == 200
    refused(session, lambda: op.post("/catalog/equipment/WB-2/durables",
                                     data={"unmount": "CAP-1"}), 403)
