"""Shared pieces of the benchmarks: a fresh PostgreSQL database, servers on loopback, a
bounded HTTP load with latency percentiles. Benchmarks print figures; they assert nothing."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("MES_BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_pg_database(keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database for one benchmark run, dropped afterwards unless `keep`."""
    base = make_url(PG_URL)
    name = f"mes_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str], workers: int) -> Iterator[int]:
    """Serve `app_spec` with gunicorn on loopback, with the worker settings of `mes serve`
    (threaded workers, mes.serving)."""
    from mes.serving import KEEPALIVE, THREADS

    port = free_port()
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b",
           f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", str(THREADS),
           "--keep-alive", str(KEEPALIVE), "--timeout", "60", "--log-level", "warning",
           app_spec]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"server {app_spec} did not start")
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        data = sorted(self.latencies)
        if not data:
            return 0.0
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        data = json.dumps(body) if body is not None else None
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server had closed the kept-alive connection while it was idle (mes serve's
            # keep-alive is a few seconds) and read nothing of the request; like a browser,
            # open a new connection and send it again, timed from there.
            self.conn.close()
            start = time.perf_counter()
            self.conn.request(method, path, body=data, headers=self.headers)
            resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, payload, time.perf_counter() - start


def page_client(port: int, username: str, password: str) -> Client:
    """A logged-in browser session for the pages (they take the cookie, not a token)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    html = resp.read().decode()
    cookie = resp.getheader("Set-Cookie", "").split(";")[0]
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if match is None:
        raise RuntimeError("the login page has no CSRF token")
    body = urlencode({"csrf_token": match.group(1), "username": username,
                      "password": password})
    conn.request("POST", "/login", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "Cookie": cookie})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 302:
        raise RuntimeError(f"login as {username} answered {resp.status}")
    return Client(port, {"Cookie": resp.getheader("Set-Cookie", cookie).split(";")[0]})


def run_load(workers: list[Callable[[Callable[[int, float], None], Callable[[], bool]], None]],
             seconds: float) -> LoadResult:
    """Run each worker function in its own thread for `seconds`; each reports
    (status, latency) per request through the callback it is given."""
    result = LoadResult()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    barrier = threading.Barrier(len(workers) + 1)

    def report(status: int, latency: float) -> None:
        with lock:
            result.requests += 1
            result.latencies.append(latency)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    def running() -> bool:
        return time.perf_counter() < stop_at

    def wrap(fn: Callable[..., None]) -> None:
        barrier.wait()
        fn(report, running)

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    stop_at = start + seconds
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - start
    return result


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current resident size (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def worker_of_port(port: int) -> int:
    """The gunicorn worker serving `port`: of the processes started with that bind address
    (the master and its forked worker), the one whose parent is among them."""
    bind = f"127.0.0.1:{port}".encode()
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if bind in (proc / "cmdline").read_bytes().split(b"\0"):
                found[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1]
                                            .split()[1])
        except OSError:
            continue
    workers = [pid for pid, parent in found.items() if parent in found]
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker on port {port}, found {workers}")
    return workers[0]
