"""Browser tests: Playwright for Python driving Debian's Chromium against a live server.

The server is the real application (CSRF, security headers, full password hashing) in a
thread on a free loopback port, over its own SQLite database with the demo plant and one
shipped lot per customer. Without Chromium (or Playwright) every test here is skipped with
the reason. Screenshots go to test-artifacts/browser/ (gitignored)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.helpers import ARGS, CHROMIUM, SHOTS


def _ship_one_per_customer(app: Any) -> dict[str, str]:
    """Ship the first shippable completed lot of each customer, else name one the demo
    shipped; {customer: lot_no}."""
    from sqlalchemy import select

    from mes.db import session_scope
    from mes.errors import DomainError
    from mes.floor.models import Lot
    from mes.shipping import services as shipping

    shipped: dict[str, str] = {}
    with app.app_context(), session_scope(app) as sess:
        for lot in sess.scalars(select(Lot).where(Lot.state == "completed",
                                                  Lot.open_holds == 0).order_by(Lot.id)):
            code = lot.customer.code
            if code in shipped:
                continue
            try:
                with sess.begin_nested():
                    shipping.create_shipment(sess, "demo", {
                        "customer": code, "po": f"PO-BROWSER-{code}", "lots": [lot.lot_no]})
                shipped[code] = lot.lot_no
            except DomainError:
                continue
        # A customer whose completed lots are all held or not shippable (the demo's
        # complaint containment holds CYANLAKE's): a lot the demo itself shipped.
        for lot in sess.scalars(select(Lot).where(Lot.state == "shipped").order_by(Lot.id)):
            shipped.setdefault(lot.customer.code, lot.lot_no)
    return shipped


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from werkzeug.serving import make_server

    from mes import create_app, migrate
    from mes.db import get_db, session_scope
    from mes.demo import load_demo

    folder = tmp_path_factory.mktemp("browser")
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'mes.db'}",
                      "SECRET_KEY": "browser-tests-" * 3, "INSTANCE_PATH": str(folder),
                      # Served over plain HTTP, as a LAN install without TLS.
                      "SESSION_COOKIE_SECURE": False})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as sess:
        load_demo(sess)
    shipped = _ship_one_per_customer(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app, "shipped": shipped}
    server.shutdown()
    thread.join(10)
    get_db(app).engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright import sync_api

    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def open_as(browser: Any, live: dict[str, Any]) -> Iterator[Any]:
    """open_as(user, password) -> a page logged in through the login form, keyboard only
    (each user in a browser context of their own)."""
    contexts = []

    def login(username: str, password: str) -> Any:
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live['url']}/login")
        # The user name field has the focus; Tab to the password, Enter submits.
        page.keyboard.type(username)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login" not in page.url, page.content()[:2000]
        return page

    yield login
    for context in contexts:
        context.close()
