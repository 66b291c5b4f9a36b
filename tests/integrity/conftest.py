"""The demo plant, loaded once for the integrity tests; each test corrupts it inside a
savepoint that is rolled back after it."""

from __future__ import annotations

import pytest

from mes.db import get_db


@pytest.fixture(scope="module")
def demo_conn(app):
    database = get_db(app)
    original = database.sessionmaker
    conn = database.engine.connect()
    trans = conn.begin()
    database.bind_to(conn)
    try:
        result = app.test_cli_runner().invoke(args=["demo", "load"])
    finally:
        database.sessionmaker = original
    assert result.exit_code == 0, result.output
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def demo(app, demo_conn):
    """A session on the demo plant; everything a test does is rolled back after it."""
    database = get_db(app)
    original = database.sessionmaker
    savepoint = demo_conn.begin_nested()
    database.bind_to(demo_conn)
    sess = database.sessionmaker()
    yield sess
    sess.close()
    database.sessionmaker = original
    savepoint.rollback()


@pytest.fixture
def run_check(app, demo):
    """`mes check` on the demo plant as it is now (the session's changes flushed)."""
    def run():
        demo.flush()
        result = app.test_cli_runner().invoke(args=["check"])
        assert "Traceback" not in result.output, result.output
        return result
    return run
