"""Test harness: the schema comes from the migrations; every test runs inside a transaction
that is rolled back. SQLite by default; PostgreSQL when MES_TEST_DATABASE_URL is set (a fresh
database is created for the run and dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mes import create_app
from mes.db import get_db


def _create_pg_database(url: str) -> tuple[str, Any]:
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


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new, empty database for this test run."""
    pg = os.environ.get("MES_TEST_DATABASE_URL")
    if pg:
        url, drop = _create_pg_database(pg)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


def make_app(database_url: str, instance: Any, **extra: Any) -> Flask:
    config = {"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "test-secret",
              "INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False}
    config.update(extra)
    return create_app(config)


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    from mes import migrate

    application = make_app(database_url, tmp_path_factory.mktemp("instance"))
    engine = get_db(application).engine
    with engine.begin() as conn:
        migrate.upgrade(conn)
    yield application
    engine.dispose()


@pytest.fixture
def connection(app: Flask) -> Iterator[Any]:
    """The test's connection, inside a transaction rolled back at the end."""
    database = get_db(app)
    original = database.sessionmaker
    conn = database.engine.connect()
    trans = conn.begin()
    database.bind_to(conn)
    yield conn
    database.sessionmaker = original
    trans.rollback()
    conn.close()


@pytest.fixture
def session(app: Flask, connection: Any) -> Iterator[Session]:
    """A session for calling services directly; shares the test's transaction.

    No application context stays pushed: a pushed context would be reused by every test
    client request, sharing `g` (the request's session and user) between requests."""
    sess = get_db(app).sessionmaker()
    yield sess
    sess.close()


@pytest.fixture
def client(app: Flask, connection: Any) -> FlaskClient:
    return app.test_client()


PASSWORD = "Secret-pass-123"


@pytest.fixture
def make_user(app: Flask, session: Session):
    """Create a user of a role (customer users get a customer, created when missing)."""
    from mes.auth import services
    from mes.catalog.models import Customer

    counter = {"n": 0}

    def factory(role: str, *, username: str | None = None, customer: str | None = None,
                active: bool = True) -> Any:
        counter["n"] += 1
        if role == "customer":
            customer = customer or "CUST-A"
            if session.query(Customer).filter_by(code=customer).first() is None:
                session.add(Customer(code=customer, name=f"Customer {customer}"))
                session.flush()  # the user refers to it by code in the same transaction
        with app.app_context():  # the test configuration's fast password hashing
            user = services.create_user(session, "test", username=username or
                                        f"{role}{counter['n']}", role=role, password=PASSWORD,
                                        customer=customer if role == "customer" else None)
        user.active = active
        session.commit()
        return user

    return factory


@pytest.fixture
def login(client: FlaskClient):
    def do(user: Any) -> FlaskClient:
        resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        return client
    return do


@pytest.fixture
def token_for(session: Session):
    from mes.auth import services

    def make(user: Any) -> dict[str, str]:
        token = services.create_token(session, "test", user)
        session.commit()
        return {"Authorization": f"Bearer {token}"}
    return make


@pytest.fixture
def api(client: FlaskClient, make_user, token_for):
    """Call the API as a role: api("admin").post("/customers", json=...)."""
    class Caller:
        def __init__(self, role: str, **kw: Any) -> None:
            self.user = make_user(role, **kw)
            self.headers = token_for(self.user)

        def __getattr__(self, method: str):
            def call(path: str, **kw: Any):
                headers = {**self.headers, **kw.pop("headers", {})}
                return getattr(client, method)("/api/v1" + path, headers=headers, **kw)
            return call

    return Caller
