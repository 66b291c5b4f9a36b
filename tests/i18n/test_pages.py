"""Pages in the user's language: the profile setting first, then the browser's
Accept-Language, then English; times in the plant's time zone; numbers for the locale;
step names and reason descriptions in Chinese for Chinese users when they have them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import render_template_string
from sqlalchemy import select, update

from mes.catalog.models import ReasonCode, RouteStep
from mes.floor.models import Lot
from tests.floor.helpers import hold

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def text(resp: Any) -> str:
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def visible(page: str) -> str:
    """The page's text without tags, scripts and attributes."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S))


@pytest.fixture
def bilingual(session, plant) -> None:
    session.execute(update(RouteStep).where(RouteStep.code == "SAW").values(name_zh="晶圆切割"))
    session.execute(update(ReasonCode).where(ReasonCode.code == "H-ENG").values(
        description="Engineering check", description_zh="工程确认"))
    session.commit()


@pytest.fixture
def lot(bilingual, receive) -> Lot:
    return receive(12000)


def _user(session, make_user, role: str, locale: str | None) -> Any:
    user = make_user(role)
    user.locale = locale
    session.commit()
    return user


def test_operator_station_in_chinese(session, make_user, login, client, lot):
    login(_user(session, make_user, "operator", "zh_CN"))
    page = text(client.get(f"/station?lot={lot.lot_no}"))
    assert '<html lang="zh-Hans-CN">' in page
    for words in ("作业站", "进站", "扫描批次", "数量", "晶圆切割"):
        assert words in page, words
    shown = visible(page)
    for english in ("Operator station", "Track in", "Scan lot", "Wafer saw", "Quantity"):
        assert english not in shown, english


def test_operator_station_messages_in_chinese(session, make_user, login, client, plant):
    login(_user(session, make_user, "operator", "zh_CN"))
    page = client.get("/station?lot=NO-SUCH-LOT").get_data(as_text=True)
    assert "没有批次 NO-SUCH-LOT。请核对流程卡后重新扫描。" in page


def test_blockers_are_shown_in_chinese(session, make_user, login, client, lot):
    hold(session, lot)
    login(_user(session, make_user, "operator", "zh_CN"))
    page = text(client.get(f"/station?lot={lot.lot_no}"))
    assert f"批次 {lot.lot_no} 已被扣留（1 个未结扣留）。" in page
    assert "is on hold" not in page


def test_refusal_from_a_service_is_shown_in_chinese(session, make_user, login, client, lot):
    login(_user(session, make_user, "operator", "zh_CN"))
    resp = client.post("/station", data={"lot": lot.lot_no, "action": "track_out",
                                         "step": "SAW", "good_qty": "12000"})
    assert resp.status_code == 409
    assert f"批次 {lot.lot_no} 不在作业中。" in resp.get_data(as_text=True)
    assert session.scalars(select(Lot.state).where(Lot.id == lot.id)).one() == "queued"


def test_qa_holds_pages_in_chinese(session, make_user, login, client, lot):
    placed = hold(session, lot)
    login(_user(session, make_user, "qa", "zh_CN"))
    queue = text(client.get("/holds/queue"))
    for words in ("扣留队列", "释放所勾选的扣留", "手动"):
        assert words in queue, words
    assert "Hold queue" not in visible(queue)
    detail = text(client.get(f"/holds/{placed.id}/view"))
    # The lot is at its first step: rework is not offered, and the page says why.
    for words in ("释放扣留", "处置", "工程确认", "排队中",
                  "不提供返工：该批次没有可返回的前序工序。"):
        assert words in detail, words
    assert "Engineering check" not in visible(detail)
    assert "queued" not in visible(detail)


def test_lot_page_in_chinese_with_plant_time_and_grouped_numbers(session, make_user, login,
                                                                  client, lot):
    session.execute(update(Lot).where(Lot.id == lot.id).values(
        created_at=datetime(2026, 3, 2, 0, 30, tzinfo=UTC)))
    session.commit()
    login(_user(session, make_user, "planner", "zh_CN"))
    page = text(client.get(f"/lots/{lot.lot_no}"))
    assert "流程进度" in page and "晶圆切割" in page and "排队中" in page
    # Stored 00:30 UTC, shown 08:30 in Asia/Shanghai.
    assert "2026-03-02 08:30" in page and "2026-03-02 00:30" not in page
    assert "12,000" in page


def test_pages_in_english_for_accept_language_en(session, make_user, login, client, lot):
    login(_user(session, make_user, "operator", None))
    page = text(client.get(f"/station?lot={lot.lot_no}", headers={"Accept-Language": "en"}))
    assert '<html lang="en">' in page
    assert "Operator station" in page and "Wafer saw" in page
    assert not CHINESE.search(visible(page).replace("中文", ""))


def test_english_user_sees_english_names(session, make_user, login, client, lot):
    placed = hold(session, lot)
    login(_user(session, make_user, "qa", "en"))
    page = text(client.get(f"/holds/{placed.id}/view", headers={"Accept-Language": "zh-CN"}))
    # The lot is at its first step: step names are on its page, not in a rework choice.
    page += text(client.get(f"/lots/{lot.lot_no}", headers={"Accept-Language": "zh-CN"}))
    assert "Engineering check" in page and "Wafer saw" in page
    assert "工程确认" not in page and "晶圆切割" not in page


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans-CN"),
    ("zh", "zh-Hans-CN"),
    ("zh-TW", "zh-Hans-CN"),          # nearer than English: the only Chinese catalog
    ("zh-Hans-CN", "zh-Hans-CN"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR,de;q=0.5", "en"),    # no catalog: the configured default
    ("en;q=0.3,zh;q=0.9", "zh-Hans-CN"),
    ("", "en"),
])
def test_browser_language_when_the_profile_has_none(session, make_user, login, client, plant,
                                                    header, lang):
    login(_user(session, make_user, "operator", None))
    page = text(client.get("/station", headers={"Accept-Language": header} if header else {}))
    assert f'<html lang="{lang}">' in page


def test_profile_language_wins_over_the_browser(session, make_user, login, client, plant):
    login(_user(session, make_user, "operator", "en"))
    page = text(client.get("/station", headers={"Accept-Language": "zh-CN"}))
    assert '<html lang="en">' in page and "Operator station" in page


def test_login_page_follows_the_browser(client, plant):
    page = text(client.get("/login", headers={"Accept-Language": "zh-CN"}))
    assert '<html lang="zh-Hans-CN">' in page and "登录" in page


def test_profile_sets_the_language(session, make_user, login, client, plant):
    user = _user(session, make_user, "operator", None)
    login(user)
    resp = client.post("/profile", data={"action": "locale", "locale": "zh_CN"})
    assert resp.status_code in (200, 302, 303)
    page = text(client.get("/station", headers={"Accept-Language": "en"}))
    assert '<html lang="zh-Hans-CN">' in page and "作业站" in page


@pytest.mark.parametrize(("locale", "expected"), [("en", "1,234,567"), ("zh_CN", "1,234,567")])
def test_number_filter_groups_thousands(app, locale, expected):
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        assert render_template_string("{{ 1234567 | numberformat }}") == expected


def test_times_are_shown_in_the_configured_plant_zone(app):
    at = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)
    with app.test_request_context("/"):
        assert render_template_string("{{ t | datetimeformat('yyyy-MM-dd HH:mm') }}",
                                      t=at) == "2026-01-05 08:30"
    zone = app.config["PLANT_TIMEZONE"]
    try:
        app.config["PLANT_TIMEZONE"] = "Europe/Berlin"
        with app.test_request_context("/"):
            assert render_template_string("{{ t | datetimeformat('HH:mm') }}", t=at) == "01:30"
    finally:
        app.config["PLANT_TIMEZONE"] = zone


def test_demo_route_steps_and_reason_codes_are_bilingual():
    from mes.demo import REASON_CODES, STEP_NAMES_ZH, STEPS

    assert set(STEP_NAMES_ZH) == set(STEPS)
    assert all(CHINESE.search(name) for name in STEP_NAMES_ZH.values())
    assert REASON_CODES and all(CHINESE.search(zh) for *_rest, zh in REASON_CODES)


def test_steps_carry_their_chinese_name_through_the_api(api, session, plant):
    engineer = api("engineer")
    steps = [{"code": "DA", "name": "Die attach", "name_zh": "装片", "kind": "assembly"},
             {"code": "WB", "name": "Wire bond", "kind": "assembly"}]
    resp = engineer.post("/routes", json={"code": "BIL", "name": "Bilingual", "steps": steps})
    assert resp.status_code == 201, resp.get_json()
    got = {s["code"]: s["name_zh"] for s in resp.get_json()["steps"]}
    assert got == {"DA": "装片", "WB": None}
    assert session.scalars(select(RouteStep.name_zh).where(RouteStep.code == "DA")).one() \
        == "装片"


def test_demo_has_chinese_users():
    from mes.demo import DEMO_LOCALES, DEMO_USERS
    from mes.i18n import LOCALES

    names = {u["username"] for u in DEMO_USERS}
    assert set(DEMO_LOCALES) <= names and set(DEMO_LOCALES.values()) <= set(LOCALES)
    assert "zh_CN" in DEMO_LOCALES.values()


def test_station_form_validation_in_chinese(session, make_user, login, client, lot):
    login(_user(session, make_user, "operator", "zh_CN"))
    resp = client.post("/station", data={"lot": lot.lot_no, "action": "track_out",
                                         "step": "SAW", "good_qty": "many"})
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "不是有效的整数。" in page and "Not a valid integer." not in page


def test_wip_board_groups_lot_quantities(session, make_user, login, client, lot):
    login(_user(session, make_user, "planner", "zh_CN"))
    page = text(client.get("/wip"))
    assert re.search(rf'data-lot="{lot.lot_no}".*?<td class="num">12,000</td>', page, re.S)
    assert "在制品看板" in page


def test_unknown_page_in_chinese(session, make_user, login, client, plant):
    login(_user(session, make_user, "operator", "zh_CN"))
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    page = resp.get_data(as_text=True)
    assert "此地址没有页面" in page and "未找到" in page and "requested URL" not in page


def test_route_form_takes_and_shows_the_chinese_step_name(session, make_user, login, client):
    engineer = login(_user(session, make_user, "engineer", None))
    steps = ("DA | Die attach | assembly | die_bonder | 99.5 | epoxy | 装片及固化\n"
             "FT | Final test | test")
    resp = engineer.post("/catalog/routes/new", data={"code": "BIL", "name": "Bilingual",
                                                      "steps": steps})
    assert resp.status_code == 303, resp.get_data(as_text=True)[-2000:]
    session.expire_all()
    got = dict(session.execute(select(RouteStep.code, RouteStep.name_zh)).all())
    assert got == {"DA": "装片及固化", "FT": None}
    form = text(engineer.get("/catalog/routes/BIL/edit"))
    assert "DA | Die attach | assembly | die_bonder | 99.5 | epoxy | 装片及固化" in form
    assert "装片及固化" in text(engineer.get("/catalog/routes/BIL"))
