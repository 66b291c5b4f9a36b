"""Test-floor benchmark: importing lot3.stdf (4.56 MB, 1,619 parts, 54,123 PTR) on
PostgreSQL, PAT and SBA included.

1. Parse throughput of the STDF reader against pystdf (bench/bench_stdf.py).
2. History: 12 earlier lots of the product at the test step, each with an import of lot3
   (made distinct by NUL padding after the last record, which the reader ignores), and
   static PAT limits computed from them, so that every measured import applies dynamic and
   static PAT to 74 tests and judges SBA against 12 lots.
3. The whole import (read, counts, PAT, SBA, every row written and committed): through the
   service in one transaction, and through the HTTP API (gunicorn on loopback, the raw file
   as the body). Target: under 1 s. Prints the best and the median of --runs imports.

Run: .venv/bin/python bench/testfloor.py [--runs 5] [path to lot3.stdf]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_stdf import DEFAULT_FILE  # noqa: E402
from bench.bench_stdf import main as parse_benchmark  # noqa: E402
from bench.common import fresh_pg_database, gunicorn  # noqa: E402

HISTORY = 12


def setup(url: str) -> tuple[Any, str]:
    """Schema and master data: a route starting at a test step, a product, a hold code, an
    operator with a token."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_customer(s, "bench", {"code": "C1", "name": "C1", "automotive": True})
        cat.create_route(s, "bench", {"code": "R", "name": "Test route", "steps": [
            {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
             "min_yield": None, "materials": []},
            {"code": "PACK", "name": "Pack", "kind": "pack", "equipment_kind": "taper",
             "min_yield": None, "materials": []}]})
        cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                        "route": "R", "aec_grade": 1, "msl": "3",
                                        "customer": "C1"})
        cat.create_reason_code(s, "bench", {"code": "HOLD-SBA", "kind": "hold",
                                            "description": "SBA"})
        user = auth.create_user(s, "bench", username="op", role="operator",
                                password="Bench-pass-123")
        token = auth.create_token(s, "bench", user)
    return app, token


def receive(app: Any, lot_no: str) -> None:
    from mes.db import session_scope
    from mes.floor import services as floor

    with app.app_context(), session_scope(app) as s:
        floor.receive_lot(s, "bench", {"product": "P", "customer": "C1", "quantity": 1619,
                                       "fab_lot": "GAL", "lot_no": lot_no, "wafers": []})


def service_import(app: Any, lot_no: str, data: bytes) -> tuple[float, Any]:
    """One import through the service in its own transaction, commit included."""
    from mes.db import session_scope
    from mes.floor import services as floor
    from mes.testfloor import services

    with app.app_context():
        start = time.perf_counter()
        with session_scope(app) as s:
            run = services.import_stdf(s, "bench", floor.get_lot(s, lot_no), data)
            summary = (run.pat["mode"], run.pat["failures"], run.pass_name, run.units)
        return time.perf_counter() - start, summary


def http_import(port: int, token: str, lot_no: str, data: bytes) -> tuple[float, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("POST", f"/api/v1/lots/{lot_no}/stdf", body=data,
                 headers={"Authorization": f"Bearer {token}",
                          "Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    elapsed = time.perf_counter() - start
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"import answered {resp.status}: {body}")
    return elapsed, (body["pat"]["mode"], body["pat"]["failures"], body["pass"],
                     body["units"])


def report(label: str, times: list[float], summary: Any) -> None:
    # SBA judges the insertion when it closes, not an import.
    mode, failures, pass_name, units = summary
    print(f"{label:<26} best {min(times):6.3f} s  median {statistics.median(times):6.3f} s  "
          f"(PAT {mode}, {failures} PAT failures; pass {pass_name} of {units} units)")


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("path", nargs="?", type=Path, default=DEFAULT_FILE)
    cli.add_argument("--runs", type=int, default=5)
    args = cli.parse_args(argv)
    if not args.path.is_file():
        print(f"no such file: {args.path}", file=sys.stderr)
        return 2
    data = args.path.read_bytes()

    print("1. parse throughput")
    parse_benchmark([str(args.path), "--runs", "3"])

    with fresh_pg_database() as url:
        app, token = setup(url)
        from mes.catalog import services as cat
        from mes.db import session_scope
        from mes.testfloor import services

        padding = iter(range(1, 10_000))

        def distinct() -> bytes:
            return data + b"\0" * next(padding)

        start = time.perf_counter()
        for j in range(HISTORY):
            receive(app, f"H{j:02d}")
            service_import(app, f"H{j:02d}", distinct())
        with app.app_context(), session_scope(app) as s:
            made = services.compute_pat_limits(s, "bench", cat.get_product(s, "P"), step="FT")
            print(f"\n2. history: {HISTORY} lots imported and {len(made.limit_sets)} static "
                  f"PAT limit sets computed ({sum(m.flagged for m in made.limit_sets)} "
                  f"flagged) in {time.perf_counter() - start:.1f} s")

        print(f"\n3. whole import of {args.path.name} on PostgreSQL, {args.runs} runs each")
        times, summary = [], None
        for i in range(args.runs):
            receive(app, f"S{i:02d}")
            elapsed, summary = service_import(app, f"S{i:02d}", distinct())
            times.append(elapsed)
        report("service, one transaction", times, summary)

        for i in range(args.runs + 1):
            receive(app, f"A{i:02d}")
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp()}
        with gunicorn("mes:create_app()", env, 1) as port:
            http_import(port, token, "A00", distinct())  # warm-up: imports, connections
            times = []
            for i in range(1, args.runs + 1):
                elapsed, summary = http_import(port, token, f"A{i:02d}", distinct())
                times.append(elapsed)
        report("HTTP API (gunicorn)", times, summary)
        print("target: whole import < 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
