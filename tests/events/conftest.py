"""A real HTTP receiver on loopback, and a committed database with a small plant for the
worker, which runs as its own process (`mes worker`) and so cannot see a test's rolled-back
transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from mes import migrate
from mes.catalog import services as cat
from mes.db import get_db, session_scope
from tests.helpers import create_pg_database, make_app

MES = Path(sys.executable).with_name("mes")
SECRET_KEY = "worker-test-secret-of-32-bytes-or-more"


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server answering each POST with the next status of `statuses` (the last one
    once they run out), keeping what it received."""

    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, n: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} of {n} requests received")


@contextmanager
def receiving(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or [200]))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  # http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.received.append(Received(
                    time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                index = len(receiver.received) - 1
                status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Any]]:
    """receiver(statuses) -> a context manager of a running Receiver."""
    return receiving


@dataclass
class WorkerDb:
    app: Flask
    url: str
    instance: Path

    def env(self, **config: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
        env.update(MES_DATABASE_URL=self.url, MES_INSTANCE_PATH=str(self.instance),
                   MES_SECRET_KEY=SECRET_KEY, MES_WEBHOOK_ALLOW_PRIVATE_URLS="true",
                   MES_WORKER_POLL_MS="50", MES_PORTAL_HOLD_DELAY_MINUTES="0")
        env.update({f"MES_{key}": str(value) for key, value in config.items()})
        return env

    @contextmanager
    def worker(self, log: Path, **config: Any) -> Iterator[subprocess.Popen[bytes]]:
        """`mes worker` running against this database with `config` (MES_* variables)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(MES), "worker"], env=self.env(**config), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def wait_until(self, check: Callable[[Any], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.app.app_context(), session_scope(self.app) as session:
                if check(session):
                    return
            time.sleep(0.05)
        raise AssertionError("the worker did not get there in time")


@pytest.fixture
def worker_db(tmp_path) -> Iterator[WorkerDb]:
    """A database of its own (SQLite file, or PostgreSQL with MES_TEST_DATABASE_URL), built
    by the migrations, with two customers (OEM, IND), a route, their products and a hold
    reason, committed."""
    pg = os.environ.get("MES_TEST_DATABASE_URL")
    url, drop = create_pg_database(pg) if pg else (f"sqlite:///{tmp_path / 'events.db'}", None)
    instance = tmp_path / "instance"
    try:
        app = make_app(url, instance, SECRET_KEY=SECRET_KEY, WEBHOOK_ALLOW_PRIVATE_URLS=True)
        with get_db(app).engine.begin() as conn:
            migrate.upgrade(conn)
        with app.app_context(), session_scope(app) as session:
            for code in ("OEM", "IND"):
                cat.create_customer(session, "test", {"code": code, "name": code,
                                                      "automotive": code == "OEM"})
            cat.create_route(session, "test", {"code": "R", "name": "R", "steps": [
                {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": None,
                 "min_yield": None, "materials": []}]})
            for code, customer in (("P1", "OEM"), ("P2", "IND")):
                cat.create_product(session, "test", {
                    "code": code, "name": code, "package": "QFN", "route": "R",
                    "aec_grade": None, "msl": "1", "customer": customer})
            cat.create_reason_code(session, "test", {"code": "H-ENG", "kind": "hold",
                                                     "description": "Engineering check",
                                                     "description_zh": ""})
        yield WorkerDb(app, url, instance)
        get_db(app).engine.dispose()
    finally:
        if drop is not None:
            drop()
