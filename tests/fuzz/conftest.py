"""The fuzzed application: its own database (a SQLite file, or a fresh PostgreSQL database
when MES_TEST_DATABASE_URL is set) with the demo plant, committed for real, and an API
token of an admin and of a customer user."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from mes.db import get_db, session_scope
from tests.helpers import create_pg_database, make_app


@pytest.fixture(scope="session")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mes import migrate
    from mes.auth import services
    from mes.demo import load_demo

    base = os.environ.get("MES_TEST_DATABASE_URL")
    drop = None
    if base:
        url, drop = create_pg_database(base)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    app = make_app(url, tmp_path_factory.mktemp("fuzz-instance"))
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as sess:
        load_demo(sess)
    tokens = {}
    with app.app_context(), session_scope(app) as sess:
        for role, name in (("admin", "admin"), ("customer", "cyanlake")):
            tokens[role] = services.create_token(sess, "test", services.get_user(sess, name))
    app.config["FUZZ_TOKENS"] = tokens
    yield app
    get_db(app).engine.dispose()
    if drop:
        drop()


@pytest.fixture(scope="session")
def api_schema(fuzz_app: Any) -> Any:
    import schemathesis

    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
