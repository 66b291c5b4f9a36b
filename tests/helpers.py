"""Plain helpers shared by the test packages (the shared fixtures are in tests/fixtures/)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mes import create_app
from mes.db import Base

# Every test user's password (the test configuration hashes it fast).
PASSWORD = "Secret-pass-123"


def make_app(database_url: str, instance: Any, **extra: Any) -> Flask:
    """The application in its test configuration (CSRF off unless `extra` turns it on)."""
    config = {"DATABASE_URL": database_url, "TESTING": True,
              "SECRET_KEY": "test-secret-of-32-bytes-or-longer",
              "INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False,
              # Every test's plant is new: figures kept for a while are computed every time.
              "PORTAL_CYCLE_TIME_CACHE_SECONDS": 0, "REPORT_CACHE_SECONDS": 0,
              # Customers see a hold as soon as it is placed; the policy's own tests
              # (tests/portal/test_visibility.py) set the delay and the notice policy.
              "PORTAL_HOLD_DELAY_MINUTES": 0}
    config.update(extra)
    return create_app(config)


def create_pg_database(url: str) -> tuple[str, Any]:
    """A new, empty PostgreSQL database on the server of `url`: (its URL, a function that
    drops it)."""
    base = make_url(url)
    name = f"mes_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def as_user(app: Flask, user: Any) -> Any:
    """A fresh test client logged in as `user` by its session cookie (no login request)."""
    client = app.test_client()
    sign_in(app, client, user)
    return client


def sign_in(app: Flask, client: Any, user: Any, base_url: str | None = None) -> None:
    """Give `client` the session cookie the login page would: a login session of `user`
    (committed in the test's transaction) and its key; for the host of `base_url` when
    given."""
    from mes.auth import services
    from mes.auth.login import SESSION_KEY
    from mes.db import get_db

    sess = get_db(app).sessionmaker()
    try:
        with app.app_context():
            key = services.start_session(sess, user)
        sess.commit()
    finally:
        sess.close()
    with client.session_transaction(**({"base_url": base_url} if base_url else {})) as cookie:
        cookie["_user_id"] = user.get_id()
        cookie["_fresh"] = True
        cookie[SESSION_KEY] = key


def row_counts(session: Session, *models: Any) -> dict[str, int]:
    """Rows per table, to show that a refused request changed nothing in the database."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in models}


def audit_codes(session: Session, subject_type: str, subject_key: str) -> list[str]:
    """The audit codes of one subject, oldest first."""
    from mes.audit.models import AuditEvent

    return list(session.scalars(
        select(AuditEvent.code)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_key == subject_key)
        .order_by(AuditEvent.seq)))


def database_state(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read through `session` as it is: a change the session holds
    unflushed is flushed by the read, so it shows."""
    return {table.name: [tuple(row) for row in session.execute(
                select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables}


def refused(session: Session, call: Callable[[], Any], expected: int | type[Exception],
            code: str | None = None, field: str | None = None, *,
            state: Callable[[Session], Any] = database_state) -> Any:
    """Make a call that must be refused; check the refusal and that nothing changed.

    `expected` is the exception class a service call must raise, or the status a request
    must answer: with `code`, an API request (the error's code, a message, and `field` among
    its field errors when given); without, a page. `state(session)` reads what the refusal
    must leave as it was, after the call with the session as the call left it.
    Returns the exception, the API's error object or the page's text."""
    before = state(session)
    result: Any
    if isinstance(expected, int):
        resp = call()
        if code is None:
            assert resp.status_code == expected, resp.get_data(as_text=True)[:2000]
            result = resp.get_data(as_text=True)
        else:
            body = resp.get_json()
            assert resp.status_code == expected, body
            result = body["error"]
            assert result["code"] == code, result
            assert result["message"], result
            if field is not None:
                assert field in result["fields"], result
    else:
        with pytest.raises(expected) as caught:
            call()
        result = caught.value
        assert result.code == code, result.message
    assert state(session) == before
    return result


def pdf_streams(body: bytes) -> list[bytes]:
    """Every content stream of a PDF (fpdf2's output), inflated where it is compressed.

    Each stream is cut by its dictionary's `/Length`, not by searching for `endstream`:
    compressed data may itself end in a carriage return or hold any byte."""
    import re
    import zlib

    streams = []
    for match in re.finditer(rb"<<((?:(?!>>).)*?)>>\s*stream\r?\n", body, re.S):
        length = re.search(rb"/Length (\d+)", match.group(1))
        assert length, f"a PDF stream without /Length: {match.group(1)!r}"
        data = body[match.end():match.end() + int(length.group(1))]
        streams.append(zlib.decompress(data) if b"/FlateDecode" in match.group(1) else data)
    return streams
