"""Shop-floor writes while a client loops logins (gunicorn, SQLite, loopback only).

One client logs in again and again (right password, full Argon2 hashing, as a script
hammering the login page would); meanwhile an operator changes a tool's state through the
API, one request after another. Prints the writes' latency percentiles with the login loop
running and, for comparison, without it. A login that held SQLite's write lock during its
password hash made each write wait for the hash in progress.

Run: .venv/bin/python bench/login_lock.py [--seconds 20] [--workers 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Client, LoadResult, gunicorn, run_load  # noqa: E402

PASSWORD = "Bench-login-2026"
STATES = ("standby", "productive")


def setup(env: dict[str, str]) -> str:
    """Migrate the database, make the looping user, an operator with a token and a tool;
    returns the token."""
    script = (
        "from mes import create_app\n"
        "from mes.auth import services as auth\n"
        "from mes.catalog import services as cat\n"
        "from mes.db import session_scope\n"
        "app = create_app()\n"
        "with app.app_context(), session_scope() as s:\n"
        f"    auth.create_user(s, 'bench', username='looper', role='qa', password={PASSWORD!r})\n"
        "    op = auth.create_user(s, 'bench', username='op', role='operator')\n"
        "    cat.create_equipment(s, 'bench', {'code': 'SAW-1', 'kind': 'saw', 'name': 'Saw',"
        " 'state': 'productive'})\n"
        "    print(auth.create_token(s, 'bench', op))\n")
    mes = str(Path(sys.executable).with_name("mes"))
    subprocess.run([mes, "db", "upgrade"], env={**os.environ, **env}, check=True,
                   capture_output=True)
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env},
                          check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


def login_loop(port: int) -> Callable[..., None]:
    def run(report: Callable[[int, float], None], running: Callable[[], bool]) -> None:
        body = urlencode({"username": "looper", "password": PASSWORD})
        while running():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/login", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
    return run


def writes(port: int, token: str, result: LoadResult) -> Callable[..., None]:
    def run(report: Callable[[int, float], None], running: Callable[[], bool]) -> None:
        client = Client(port, {"Authorization": f"Bearer {token}"})
        i = 0
        while running():
            status, _body, latency = client.call("PATCH", "/api/v1/equipment/SAW-1",
                                                 {"state": STATES[i % 2]})
            i += 1
            result.requests += 1
            result.latencies.append(latency)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    instance = tempfile.mkdtemp()
    env = {"MES_DATABASE_URL": f"sqlite:///{instance}/bench.db",
           "MES_INSTANCE_PATH": instance, "MES_SECRET_KEY": secrets.token_hex(32),
           # The loop posts the form alone; CSRF has nothing to do with the write lock.
           "MES_WTF_CSRF_ENABLED": "false"}
    token = setup(env)
    with gunicorn("mes:create_app()", env, args.workers) as port:
        for label, with_logins in (("writes alone", False), ("writes while logins loop", True)):
            result = LoadResult()
            workers = [writes(port, token, result)]
            if with_logins:
                workers.append(login_loop(port))
            logins = run_load(workers, args.seconds)
            result.seconds = logins.seconds
            print(f"{label}: {result.requests} writes in {result.seconds:.0f} s, statuses "
                  f"{dict(sorted(result.statuses.items()))}; latency p50 {result.pct(50):.0f} "
                  f"ms, p99 {result.pct(99):.0f} ms, max {result.pct(100):.0f} ms")


if __name__ == "__main__":
    main()
