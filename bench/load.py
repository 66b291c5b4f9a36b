"""Mixed load on the production server (gunicorn, PostgreSQL, loopback only).

Operators track lots in and out through a 6-step route (some rejects), two QA engineers
hold lots and release each other's holds (the two-person rule), customers read their lots
and traces and try another customer's lot (which must be refused with 404). Afterwards
`mes check` runs over the database. Prints requests served, answers by status and role,
latency percentiles and the check's result; exit 1 when any answer was 5xx or the check
failed.

Run: .venv/bin/python bench/load.py [--seconds 300] [--lots 3000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Client, fresh_pg_database, gunicorn, run_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STEPS = 6
OPERATORS = 4
TOOLS_PER_OPERATOR = 3
CUSTOMERS = ("C1", "C2")
PASSWORD = "Bench-pass-123"

Report = Callable[[int, float], None]
Running = Callable[[], bool]


def setup(url: str, lots: int) -> dict[str, Any]:
    """Schema and a small plant: a 6-step route, tools of each operator, two customers with
    `lots` lots between them, users of every role in the mix with API tokens."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope
    from mes.floor import services as floor

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    tokens: dict[str, str] = {}
    lot_nos: dict[str, list[str]] = {c: [] for c in CUSTOMERS}
    with app.app_context(), session_scope(app) as s:
        for code in CUSTOMERS:
            cat.create_customer(s, "bench", {"code": code, "name": code, "automotive": False})
        cat.create_route(s, "bench", {"code": "R", "name": "Load route", "steps": [
            {"code": f"S{i}", "name": f"Step {i}", "kind": "assembly",
             "equipment_kind": "tool", "min_yield": None, "materials": []}
            for i in range(1, STEPS + 1)]})
        cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                        "route": "R", "aec_grade": None, "msl": "1",
                                        "customer": None})
        for i in range(OPERATORS * TOOLS_PER_OPERATOR):
            cat.create_equipment(s, "bench", {"code": f"T{i:02d}", "kind": "tool", "name": "",
                                              "state": "productive"})
        for code, kind in (("HOLD-ENG", "hold"), ("REJ-1", "reject")):
            cat.create_reason_code(s, "bench", {"code": code, "kind": kind,
                                                "description": code})
        users = [(f"op{i}", "operator", None) for i in range(OPERATORS)] + [
            ("qa1", "qa", None), ("qa2", "qa", None),
            ("cust1", "customer", "C1"), ("cust2", "customer", "C2")]
        for name, role, customer in users:
            user = auth.create_user(s, "bench", username=name, role=role, password=PASSWORD,
                                    customer=customer)
            s.flush()
            tokens[name] = auth.create_token(s, "bench", user)
    for start in range(0, lots, 500):
        with app.app_context(), session_scope(app) as s:
            for i in range(start, min(lots, start + 500)):
                customer = CUSTOMERS[i % 2]
                lot = floor.receive_lot(s, "bench", {
                    "product": "P", "customer": customer, "quantity": 1000 + i % 97,
                    "fab_lot": f"F{i // 20:04d}", "wafers": [], "lot_no": None,
                    "priority": 3, "due_date": None})
                lot_nos[customer].append(lot.lot_no)
    from mes.db import get_db as _get_db

    _get_db(app).engine.dispose()
    return {"tokens": tokens, "lots": lot_nos}


class Mix:
    """The roles' workers over one server; counts answers by role and status."""

    def __init__(self, port: int, ctx: dict[str, Any], seed: int = 7) -> None:
        self.port = port
        self.ctx = ctx
        self.by_role: dict[str, Counter[int]] = defaultdict(Counter)
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        every = [n for c in CUSTOMERS for n in ctx["lots"][c]]
        self.rng.shuffle(every)
        self.queues = [deque(every[i::OPERATORS]) for i in range(OPERATORS)]
        self.all_lots = every
        self.holds: dict[str, deque[int]] = {"qa1": deque(), "qa2": deque()}
        self.bad_bodies: list[str] = []

    def _client(self, user: str) -> Client:
        return Client(self.port, {"Authorization": f"Bearer {self.ctx['tokens'][user]}"})

    def _call(self, role: str, report: Report, client: Client, method: str, path: str,
              body: Any = None) -> tuple[int, Any, Client]:
        """One request; a dropped connection counts as status 0 and reconnects."""
        start = time.perf_counter()
        try:
            status, payload, latency = client.call(method, path, body)
        except (OSError, ConnectionError, json.JSONDecodeError) as exc:
            status, payload, latency = 0, str(exc).encode(), time.perf_counter() - start
            client = Client(self.port, {k: v for k, v in client.headers.items()
                                        if k == "Authorization"})
        report(status, latency)
        with self.lock:
            self.by_role[role][status] += 1
        data: Any = None
        if status:
            try:
                data = json.loads(payload) if payload else None
            except ValueError:
                with self.lock:
                    self.bad_bodies.append(f"{method} {path} -> {status}: {payload[:80]!r}")
            if status >= 500 and not (isinstance(data, dict) and "error" in data):
                with self.lock:
                    self.bad_bodies.append(f"{method} {path} -> {status} not JSON error")
        return status, data, client

    def operator(self, index: int) -> Callable[[Report, Running], None]:
        def work(report: Report, running: Running) -> None:
            client = self._client(f"op{index}")
            queue = self.queues[index]
            rng = random.Random(index)
            tools = [f"T{index * TOOLS_PER_OPERATOR + k:02d}"
                     for k in range(TOOLS_PER_OPERATOR)]
            while running() and queue:
                lot_no = queue[0]
                status, lot, client = self._call("operator", report, client, "GET",
                                                 f"/api/v1/lots/{lot_no}")
                if status != 200:
                    queue.rotate(-1)
                    continue
                if lot["state"] not in ("queued", "running"):
                    queue.popleft()
                    continue
                if lot["state"] == "queued":
                    if lot.get("on_hold"):
                        queue.rotate(-1)
                        continue
                    status, lot2, client = self._call(
                        "operator", report, client, "POST", f"/api/v1/lots/{lot_no}/track-in",
                        {"step": lot["step"], "equipment": rng.choice(tools)})
                    if status != 200:
                        queue.rotate(-1)
                        continue
                    lot = lot2
                qty = lot["quantity"]
                rejects = rng.choice((0, 0, 0, 1, 3))
                self._call("operator", report, client, "POST",
                           f"/api/v1/lots/{lot_no}/track-out",
                           {"step": lot["step"], "good_qty": qty - rejects,
                            "rejects": [{"reason": "REJ-1", "qty": rejects}] if rejects
                            else []})
        return work

    def qa(self, me: str, other: str) -> Callable[[Report, Running], None]:
        def work(report: Report, running: Running) -> None:
            client = self._client(me)
            rng = random.Random(me)
            while running():
                lot_no = rng.choice(self.all_lots)
                status, hold, client = self._call(
                    "qa", report, client, "POST", f"/api/v1/lots/{lot_no}/holds",
                    {"reason": "HOLD-ENG", "comment": "load test suspicion"})
                if status == 201 and isinstance(hold, dict):
                    with self.lock:
                        self.holds[me].append(hold["id"])
                time.sleep(0.05)
                with self.lock:
                    theirs = self.holds[other].popleft() if self.holds[other] else None
                if theirs is not None:
                    self._call("qa", report, client, "POST", f"/api/v1/holds/{theirs}/release",
                               {"disposition": "release", "comment": "checked, fine"})
                self._call("qa", report, client, "GET", "/api/v1/holds?status=open&limit=50")
        return work

    def customer(self, index: int) -> Callable[[Report, Running], None]:
        def work(report: Report, running: Running) -> None:
            client = self._client(f"cust{index + 1}")
            own, other = self.ctx["lots"][CUSTOMERS[index]], self.ctx["lots"][
                CUSTOMERS[1 - index]]
            rng = random.Random(index)
            n = 0
            while running():
                n += 1
                self._call("customer", report, client, "GET", "/api/v1/lots?limit=50")
                self._call("customer", report, client, "GET",
                           f"/api/v1/lots/{rng.choice(own)}/trace")
                if n % 5 == 0:
                    status, _, client = self._call("customer", report, client, "GET",
                                                   f"/api/v1/lots/{rng.choice(other)}/trace")
                    if status not in (0, 404, 503):
                        with self.lock:
                            self.bad_bodies.append(f"another customer's trace -> {status}")
        return work

    def workers(self) -> list[Callable[[Report, Running], None]]:
        return ([self.operator(i) for i in range(OPERATORS)]
                + [self.qa("qa1", "qa2"), self.qa("qa2", "qa1")]
                + [self.customer(i) for i in range(len(CUSTOMERS))])


def mes_check(env: dict[str, str]) -> tuple[int, list[str]]:
    done = subprocess.run([str(Path(sys.executable).with_name("mes")), "check"], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          check=False, timeout=600)
    return done.returncode, (done.stdout + done.stderr).strip().splitlines()


def server_env(url: str) -> dict[str, str]:
    return {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
            "MES_INSTANCE_PATH": tempfile.mkdtemp()}


def print_result(result: Any, mix: Mix) -> int:
    errors = {s: n for s, n in result.statuses.items() if s >= 500 or s == 0}
    print(f"requests served : {result.requests} in {result.seconds:.0f} s "
          f"({result.rate:.1f} req/s), p50 {result.pct(50):.1f} ms, p99 {result.pct(99):.1f} ms")
    print(f"by status       : {dict(sorted(result.statuses.items()))}")
    for role, counts in sorted(mix.by_role.items()):
        print(f"  {role:<9}     : {dict(sorted(counts.items()))}")
    print(f"5xx / dropped   : {errors or 'none'}")
    for line in mix.bad_bodies[:10]:
        print(f"  unexpected: {line}")
    return sum(n for s, n in errors.items() if s >= 500) + len(mix.bad_bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--lots", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2 * multiprocessing.cpu_count() + 1)
    args = parser.parse_args()
    with fresh_pg_database() as url:
        t0 = time.time()
        ctx = setup(url, args.lots)
        print(f"setup: {args.lots} lots, {OPERATORS} operators, 2 QA, {len(CUSTOMERS)} "
              f"customers in {time.time() - t0:.0f} s; gunicorn with {args.workers} workers; "
              f"{args.seconds:.0f} s of load")
        env = server_env(url)
        with gunicorn("mes:create_app()", env, args.workers) as port:
            mix = Mix(port, ctx)
            result = run_load(mix.workers(), args.seconds)
        bad = print_result(result, mix)
        code, lines = mes_check(env)
        print(f"mes check       : exit {code}")
        for line in lines[:12]:
            print(f"  {line}")
    sys.exit(1 if bad or code else 0)


if __name__ == "__main__":
    main()
