"""API error messages: English unless the client sends Accept-Language (the user's profile
language does not apply to machines); the code never changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mes.catalog.models import Route


@pytest.fixture
def chinese_operator(api, session):
    caller = api("operator")
    caller.user.locale = "zh_CN"
    session.commit()
    return caller


def _error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()["error"]


def test_english_by_default_even_for_a_chinese_user(chinese_operator, plant):
    err = _error(chinese_operator.get("/lots/NOPE-1"), 404)
    assert err == {"code": "not_found", "message": "No lot NOPE-1."}


@pytest.mark.parametrize("header", ["zh-CN", "zh-CN,zh;q=0.9,en;q=0.8", "zh"])
def test_chinese_when_the_client_asks(chinese_operator, plant, header):
    err = _error(chinese_operator.get("/lots/NOPE-1", headers={"Accept-Language": header}), 404)
    assert err == {"code": "not_found", "message": "没有批次 NOPE-1。"}


def test_english_when_the_client_asks_for_english(api, plant):
    err = _error(api("operator").get("/lots/NOPE-1", headers={"Accept-Language": "en-GB"}), 404)
    assert err["message"] == "No lot NOPE-1."


def test_field_messages_are_translated_too_and_nothing_changes(api, session, plant):
    engineer = api("engineer")
    before = session.scalar(select(func.count()).select_from(Route))
    body = {"code": "NEW", "name": "New", "route": "NO-ROUTE", "package": "QFN"}
    for header, message in (({}, "Unknown route NO-ROUTE."),
                            ({"Accept-Language": "zh-CN"}, "未知工艺路线 NO-ROUTE。")):
        err = _error(engineer.post("/products", json=body, headers=header), 422)
        assert err["code"] == "invalid"
        assert err["message"] == message and err["fields"]["route"] == [message]
    assert session.scalar(select(func.count()).select_from(Route)) == before


def test_conflict_codes_stay_and_messages_translate(api, session, plant, receive):
    lot = receive(100)
    operator = api("operator")
    en = _error(operator.post(f"/lots/{lot.lot_no}/track-out", json={
        "step": lot.step_code, "good_qty": 100, "rejects": []}), 409)
    zh = _error(operator.post(f"/lots/{lot.lot_no}/track-out", json={
        "step": lot.step_code, "good_qty": 100, "rejects": []},
        headers={"Accept-Language": "zh-CN"}), 409)
    assert en["code"] == zh["code"] == "not_running"
    assert en["message"] == f"Lot {lot.lot_no} is not running."
    assert zh["message"] == f"批次 {lot.lot_no} 不在作业中。"


def test_unauthenticated_api_call_in_chinese(client):
    resp = client.get("/api/v1/lots/X", headers={"Accept-Language": "zh-CN"})
    err = _error(resp, 401)
    assert err["code"] == "unauthenticated" and err["message"] == "请登录后继续。"


def test_validation_messages_of_marshmallow_are_translated(api, plant):
    engineer = api("engineer")
    body = {"code": "NEW", "name": "x" * 300, "package": "QFN"}
    en = _error(engineer.post("/products", json=body), 422)
    zh = _error(engineer.post("/products", json=body, headers={"Accept-Language": "zh-CN"}), 422)
    assert en["fields"]["route"] == ["Missing data for required field."]
    assert zh["fields"]["route"] == ["必填字段缺少数据。"]
    assert en["fields"]["name"] == ["Length must be between 1 and 200."]
    assert zh["fields"]["name"] == ["长度必须在 1 到 200 之间。"]
    assert zh["code"] == en["code"] == "invalid"


def test_words_inside_messages_are_translated_too(api, session, plant, receive):
    from tests.floor.helpers import hold

    lot = receive(100)
    hold(session, lot)
    caller = api("planner")
    body = {"quantities": [60, 40]}
    en = _error(caller.post(f"/lots/{lot.lot_no}/split", json=body), 409)
    zh = _error(caller.post(f"/lots/{lot.lot_no}/split", json=body,
                            headers={"Accept-Language": "zh-CN"}), 409)
    assert en == {"code": "lot_on_hold",
                  "message": f"Lot {lot.lot_no} is on hold; it cannot be split."}
    assert zh == {"code": "lot_on_hold", "message": f"批次 {lot.lot_no} 已被扣留，不能分批。"}
    assert session.scalars(select(func.count()).select_from(type(lot))).one() == 1
