"""What the system writes is stored as a code with its parameters beside the English, and
pages show it in the reader's language: a yield hold's reason text, the system actor, the
hold's history event; the API keeps answering the English text with its existing fields.
Validation messages on pages name fields by their words, dispositions and equipment kinds
by theirs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.floor.models import Lot, LotEvent
from mes.quality import services
from mes.quality.models import Hold
from tests.floor.helpers import advance, hold, track_in, track_out
from tests.helpers import refused

ENGLISH_TEXT = "Step WB yield 89.0 % is below the minimum 90.0 %."
CHINESE_TEXT = "工序 WB 良率 89.0 % 低于最低要求 90.0 %。"


def visible(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S))


@pytest.fixture
def yield_hold(session, receive) -> Hold:
    cat.create_reason_code(session, "test", {"code": "HOLD-YIELD", "kind": "hold",
                                             "description": "Low yield"})
    lot = track_in(session, advance(session, receive(100)))
    track_out(session, lot, good=89, rejects=[{"reason": "R-BALL", "qty": 11}])
    [placed] = services.lot_holds(session, lot)
    return placed


def _user(session, make_user, role: str, locale: str | None) -> Any:
    user = make_user(role)
    user.locale = locale
    session.commit()
    return user


def test_a_yield_hold_keeps_its_code_and_parameters_beside_the_english(session, yield_hold):
    assert yield_hold.comment == ENGLISH_TEXT
    assert (yield_hold.text_code, yield_hold.text_params) == (
        "yield_below_min", {"step": "WB", "yield": 89.0, "min_yield": 90.0})
    event = session.scalars(select(LotEvent).where(
        LotEvent.lot_id == yield_hold.lot_id, LotEvent.kind == "hold")).one()
    assert event.data["comment"] == ENGLISH_TEXT
    assert event.data["text_code"] == "yield_below_min"


def test_a_person_s_hold_has_no_code(session, receive, hold_codes):
    lot = receive(100)
    placed = services.hold_lot(session, "qa", lot, reason="H-ENG", comment="Look at it")
    assert (placed.comment, placed.text_code, placed.text_params) == ("Look at it", None, None)


def test_a_chinese_reader_sees_the_hold_text_and_the_system_in_chinese(
        session, make_user, login, client, yield_hold):
    login(_user(session, make_user, "qa", "zh_CN"))
    page = client.get(f"/holds/{yield_hold.id}/view").get_data(as_text=True)
    shown = visible(page)
    assert CHINESE_TEXT in shown
    assert "由 系统 于" in shown
    assert "is below the minimum" not in shown and "system" not in shown
    lot_page = visible(client.get(f"/lots/{yield_hold.lot.lot_no}").get_data(as_text=True))
    assert lot_page.count(CHINESE_TEXT) == 2  # the open hold and its history event
    assert "is below the minimum" not in lot_page
    queue = visible(client.get("/holds/queue").get_data(as_text=True))
    assert CHINESE_TEXT in queue and "系统" in queue


def test_an_english_reader_sees_the_english(session, make_user, login, client, yield_hold):
    login(_user(session, make_user, "qa", "en"))
    shown = visible(client.get(f"/holds/{yield_hold.id}/view").get_data(as_text=True))
    assert ENGLISH_TEXT in shown and "by System on" in shown


def test_the_api_keeps_the_english_text_and_its_fields(api, yield_hold):
    body = api("qa").get(f"/holds/{yield_hold.id}",
                         headers={"Accept-Language": "zh-CN"}).get_json()
    assert body["comment"] == ENGLISH_TEXT and body["placed_by"] == "system"
    assert "text_code" not in body and "text_params" not in body


def test_rows_written_before_codes_show_their_stored_text(session, make_user, login, client,
                                                          plant, receive):
    old = hold(session, receive(100))  # a row as written before codes: no text_code
    old.comment = "Step SAW yield 80 % is below the minimum 99 %."
    session.commit()
    login(_user(session, make_user, "qa", "zh_CN"))
    shown = visible(client.get(f"/holds/{old.id}/view").get_data(as_text=True))
    assert "Step SAW yield 80 % is below the minimum 99 %." in shown


def test_a_refused_release_names_the_field_and_the_disposition_in_chinese(
        session, make_user, login, client, yield_hold):
    login(_user(session, make_user, "qa", "zh_CN"))
    page = refused(session, lambda: client.post(f"/holds/{yield_hold.id}/view", data={
        "disposition": "use_as_is", "comment": "复测通过"}), 422)
    shown = visible(page)
    assert "处置“照常使用（客户让步接收）”需要填写客户让步接收。" in shown
    assert "处置“照常使用（客户让步接收）”必须填写此项。" in shown
    for english in ("use_as_is", "concession", "Required for"):
        assert english not in shown, english
    assert session.get(Hold, yield_hold.id).status == "open"


def test_a_refused_bulk_release_names_each_hold_s_fields_in_chinese(
        session, make_user, login, client, yield_hold):
    login(_user(session, make_user, "qa", "zh_CN"))
    page = refused(session, lambda: client.post("/holds/bulk-release", data={
        "hold": [str(yield_hold.id)], "disposition": "use_as_is", "comment": "复测通过"}), 422)
    shown = visible(page)
    assert (f"扣留 {yield_hold.id}：客户让步接收：处置“照常使用（客户让步接收）”必须填写此项。"
            in shown)
    assert "Required for" not in shown and "concession" not in shown


def test_a_release_in_the_history_shows_the_disposition_s_word(
        session, make_user, login, client, yield_hold):
    services.release_hold(session, "qa", yield_hold, {"disposition": "release",
                                                       "comment": "ok"})
    session.commit()
    login(_user(session, make_user, "operator", "zh_CN"))
    shown = visible(client.get(f"/lots/{yield_hold.lot.lot_no}").get_data(as_text=True))
    assert "处置： 释放：批次继续流转" in shown
    assert " release " not in shown


def test_a_reject_row_without_a_reason_names_the_field_in_chinese(
        session, make_user, login, client, receive):
    lot = track_in(session, receive(1000))
    login(_user(session, make_user, "operator", "zh_CN"))
    resp = client.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "good_qty": "994", "action": "track_out",
        "reject_reason": ["R-BALL", "", ""], "reject_qty": ["1", "", "5"]})
    assert resp.status_code == 422
    shown = visible(resp.get_data(as_text=True))
    assert "原因：必填字段缺少数据。" in shown
    assert "reason:" not in shown
    assert session.get(Lot, lot.id).state == "running"


def test_equipment_kinds_and_material_types_show_their_words(session, make_user, login,
                                                             client, receive):
    lot = receive(1000)
    login(_user(session, make_user, "operator", "zh_CN"))
    shown = visible(client.get(f"/lots/{lot.lot_no}").get_data(as_text=True))
    assert "需要划片机" in shown.replace(" ", "")
    traveler = visible(client.get(f"/lots/{lot.lot_no}/traveler").get_data(as_text=True))
    assert "键合机" in traveler and "键合线" in traveler
    assert "wire_bonder" not in traveler and "wire" not in traveler.split()
