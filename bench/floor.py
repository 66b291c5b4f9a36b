"""Shop-floor benchmark (PostgreSQL, production server, loopback only).

1. Track-in + track-out cycles through the HTTP API with 16 concurrent clients (the lots'
   BOM checked at every track-in and a wire lot scanned at one step; a durable on every
   tool counted by every move), against a
   bare Flask + SQLAlchemy endpoint doing the same row work, on the same server settings
   (gunicorn, workers = 2 x cores + 1) in the same run, the contenders taking turns in
   short phases: prints both rates, the ratio and both p99 latencies.
2. GET /api/v1/lots filtered by step and the WIP board page with 100,000 open lots and
   2,000,000 history events: prints p50/p95.

Run: .venv/bin/python bench/floor.py [--seconds 30] [--rounds 6] [--clients 16] [--lots 100000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.common import (  # noqa: E402
    Client,
    LoadResult,
    fresh_pg_database,
    gunicorn,
    run_load,
)

STEPS = 25  # the length of a real QFN route
LOTS_PER_CLIENT = 80
# The step whose BOM item the bench's wire lot satisfies (the lot's BOM is checked at every
# step; the wire is scanned at this one), and the wires per unit it bonds.
WIRE_STEP, WIRES = 8, 4
WIRE_LOT = "WIRE-1"


def setup(url: str, clients: int) -> dict[str, Any]:
    """Schema, a long single-kind route, one tool and one lot per client, tokens."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope
    from mes.floor import services as floor

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_customer(s, "bench", {"code": "C1", "name": "C1", "automotive": False})
        cat.create_route(s, "bench", {"code": "R", "name": "Bench route", "steps": [
            {"code": f"S{i:03d}", "name": f"Step {i}", "kind": "assembly",
             "equipment_kind": "tool", "min_yield": None, "materials": [],
             "touchdowns_per_unit": WIRES if i == WIRE_STEP else 1}
            for i in range(1, STEPS + 1)]})
        product = cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                                  "route": "R", "aec_grade": None, "msl": "1",
                                                  "customer": "C1"})
        # A BOM checked at every track-in; its wire item is satisfied by the bench's wire lot.
        cat.create_material_lot(s, "bench", {"code": WIRE_LOT, "material": "wire",
                                             "part_number": "AU-0.8MIL"})
        cat.create_bom(s, "bench", product, {"revision": "A", "items": [
            {"step": f"S{WIRE_STEP:03d}", "material": "wire", "part_numbers": ["AU-0.8MIL"]}]})
        for i in range(clients):
            tool = cat.create_equipment(s, "bench", {"code": f"T{i:02d}", "kind": "tool",
                                                     "name": "", "state": "productive"})
            # A durable on every tool, counted by every track-in and track-out.
            cat.create_durable(s, "bench", {"code": f"D{i:02d}", "kind": "capillary",
                                            "life_limit": 10**12})
            cat.mount_durable(s, "bench", tool, f"D{i:02d}")
        for i in range(clients):
            for j in range(LOTS_PER_CLIENT):
                floor.receive_lot(s, "bench", {"product": "P", "customer": "C1",
                                               "quantity": 1000, "fab_lot": f"F{i}",
                                               "lot_no": f"B{i:02d}-{j:03d}", "wafers": []})
        user = auth.create_user(s, "bench", username="op", role="operator",
                                password="Bench-pass-123")
        token = auth.create_token(s, "bench", user)
        admin = auth.create_user(s, "bench", username="adm", role="admin",
                                 password="Bench-pass-123")
        admin_token = auth.create_token(s, "bench", admin)
        s.flush()
        # The bare endpoints move lots of their own: they keep the audit chain in the
        # audit table, not on the lot row as the application does.
        ids = [floor.receive_lot(s, "bench", {"product": "P", "customer": "C1",
                                              "quantity": 1000, "fab_lot": f"FZ{i}",
                                              "lot_no": f"Z{i:02d}", "wafers": []}).id
               for i in range(clients)]
    get_db(app).engine.dispose()
    return {"token": token, "admin_token": admin_token, "lot_ids": ids}


def mes_moves(i: int, warmup: bool = False) -> Iterator[tuple[str, str]]:
    """Client i's track-in/out cycles, lot after lot, step after step. The warm-up uses the
    last lot of each client; the measurement the others in order."""
    lots = range(LOTS_PER_CLIENT - 1, LOTS_PER_CLIENT) if warmup else range(LOTS_PER_CLIENT - 1)
    for j in lots:
        for step in range(1, STEPS + 1):
            yield f"B{i:02d}-{j:03d}", f"S{step:03d}"


def mes_worker(port: int, token: str, moves: Iterator[tuple[str, str]]):
    # `moves` carries on where the previous phase stopped: phases alternate with the bare
    # endpoints' and each lot must continue at its own step.
    def work(report, running) -> None:
        c = Client(port, {"Authorization": f"Bearer {token}"})
        tool = None
        for lot, code in moves:
            tool = tool or f"T{lot[1:3]}"
            body: dict[str, Any] = {"step": code, "equipment": tool}
            if code == f"S{WIRE_STEP:03d}":
                body["materials"] = [WIRE_LOT]
            st, _, lat = c.call("POST", f"/api/v1/lots/{lot}/track-in", body)
            report(st, lat)
            st, _, lat = c.call("POST", f"/api/v1/lots/{lot}/track-out",
                                {"step": code, "good_qty": 1000})
            report(st, lat)
            if not running():
                return
    return work


def bare_worker(port: int, lot_id: int, flavour: str):
    def work(report, running) -> None:
        c = Client(port)
        while running():
            st, _, lat = c.call("POST", f"/bare/{flavour}/{lot_id}", {})
            report(st, lat)
    return work


def merge(results: list[LoadResult]) -> LoadResult:
    total = LoadResult()
    for r in results:
        total.requests += r.requests
        total.seconds += r.seconds
        total.latencies += r.latencies
        for st, n in r.statuses.items():
            total.statuses[st] = total.statuses.get(st, 0) + n
    return total


def fill(url: str, lots: int, events: int) -> None:
    """Bulk data: `lots` open lots spread over the steps and `events` history events."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        route_id = conn.execute(text("SELECT id FROM route WHERE code = 'R'")).scalar_one()
        product_id = conn.execute(text("SELECT id FROM product WHERE code = 'P'")).scalar_one()
        customer_id = conn.execute(text("SELECT id FROM customer WHERE code = 'C1'")).scalar_one()
        conn.exec_driver_sql(f"""
            INSERT INTO lot (lot_no, product_id, customer_id, route_id, step_seq, step_code,
                             state, quantity, wafer_count, fab_lot, priority, due_date,
                             open_holds, arrived_at, created_at, updated_at, version,
                             audit_seq, audit_hash, in_genealogy)
            SELECT 'X' || lpad(g::text, 7, '0'), {product_id}, {customer_id}, {route_id},
                   s, 'S' || lpad(s::text, 3, '0'),
                   CASE WHEN g %% 10 = 0 THEN 'running' ELSE 'queued' END,
                   1000, 0, 'FX' || (g / 50), 1 + g %% 5, current_date + (g %% 60),
                   CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END,
                   now() - (g %% 720) * interval '1 hour', now() - interval '30 days', now(), 1,
                   0, repeat('0', 64), false
            FROM generate_series(1, {lots}) AS g,
                 LATERAL (SELECT 1 + (g * 7919) %% {STEPS} AS s) AS st
        """)
        conn.exec_driver_sql(f"""
            INSERT INTO lot_event (lot_id, kind, at, by, step_code, equipment, qty_in,
                                   qty_out, data)
            SELECT l.id, CASE WHEN e %% 2 = 0 THEN 'track_in' ELSE 'track_out' END,
                   now() - (e * interval '17 minutes'), 'op', l.step_code, 'T00', 1000, 1000,
                   '{{}}'
            FROM (SELECT id, step_code FROM lot WHERE lot_no LIKE 'X%%') AS l,
                 generate_series(1, {max(1, events // lots)}) AS e
        """)
    engine.dispose()
    # As a maintained database would be: statistics current, visibility map set.
    vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30,
                        help="measured seconds per contender, over all rounds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--lots", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    workers = 2 * multiprocessing.cpu_count() + 1

    with fresh_pg_database() as url:
        ctx = setup(url, args.clients)
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp()}
        print(f"servers: gunicorn, {workers} workers each; {args.clients} clients; "
              f"{args.seconds:.0f} s per contender in {args.rounds} alternating rounds")
        # Both servers run side by side (an idle server costs nothing) and the contenders
        # take turns in short phases, so that a change in the machine's other load during
        # the run weighs on each of them alike. Each server first runs a short unmeasured
        # warm-up, so that every worker has compiled its statements and filled its
        # connection pool before the measurement.
        with gunicorn("mes:create_app()", env, workers) as mes_port, \
                gunicorn("bench.bare_app:create()", env, workers) as bare_port:
            run_load([mes_worker(mes_port, ctx["token"], mes_moves(i, warmup=True))
                      for i in range(args.clients)], args.warmup)
            for flavour in ("orm", "sql"):
                run_load([bare_worker(bare_port, ctx["lot_ids"][i], flavour)
                          for i in range(args.clients)], args.warmup)
            moves = [mes_moves(i) for i in range(args.clients)]
            phases: dict[str, list[LoadResult]] = {"api": [], "orm": [], "sql": []}
            phase = args.seconds / args.rounds
            for _ in range(args.rounds):
                phases["api"].append(run_load(
                    [mes_worker(mes_port, ctx["token"], moves[i])
                     for i in range(args.clients)], phase))
                for flavour in ("orm", "sql"):
                    phases[flavour].append(run_load(
                        [bare_worker(bare_port, ctx["lot_ids"][i], flavour)
                         for i in range(args.clients)], phase))
        mes = merge(phases["api"])
        bares = {flavour: merge(phases[flavour]) for flavour in ("orm", "sql")}
        print(f"track-in/out API : {mes.rate:8.1f} req/s  p50 {mes.pct(50):6.1f} ms  "
              f"p99 {mes.pct(99):6.1f} ms  statuses {mes.statuses}")
        for flavour, bare in bares.items():
            print(f"bare ({flavour})       : {bare.rate:8.1f} req/s  p50 {bare.pct(50):6.1f} ms  "
                  f"p99 {bare.pct(99):6.1f} ms  statuses {bare.statuses}")
        for flavour, bare in bares.items():
            print(f"against bare ({flavour}): rate ratio {mes.rate / bare.rate:.2f} "
                  f"(target >= 0.5), p99 ratio {mes.pct(99) / bare.pct(99):.2f} (target <= 2)")
        rounds = [a.rate / b.rate for a, b in zip(phases["api"], phases["sql"], strict=True)]
        print("rate ratio against bare (sql) per round: "
              + " ".join(f"{r:.2f}" for r in rounds))

        t0 = time.time()
        fill(url, args.lots, args.events)
        print(f"filled {args.lots} open lots and ~{args.events} history events in "
              f"{time.time() - t0:.0f} s")
        with gunicorn("mes:create_app()", env, workers) as port:
            c = Client(port, {"Authorization": f"Bearer {ctx['admin_token']}"})
            # Unmeasured warm-up, as in the first part: every worker (the kernel hands each
            # connection to any of them) compiles its statements and templates on its first
            # requests of each kind, which would otherwise be measured as a worker's cold start.
            for i in range(4 * workers):
                c.call("GET", f"/api/v1/lots?step=S{1 + i % STEPS:03d}&limit=50")
                c.call("GET", "/wip" + ("?on_hold=true" if i % 2 else ""))
            rng = random.Random(7)
            api, wip, statuses = [], [], {}
            for _ in range(args.samples):
                step = f"S{rng.randint(1, STEPS):03d}"
                st, _, lat = c.call("GET", f"/api/v1/lots?step={step}&limit=50")
                api.append(lat)
                statuses[st] = statuses.get(st, 0) + 1
            for i in range(args.samples):
                st, _, lat = c.call("GET", "/wip" + ("?on_hold=true" if i % 2 else ""))
                wip.append(lat)
                statuses[st] = statuses.get(st, 0) + 1
        print(f"GET /lots?step=  : p50 {pct(api, 50):6.1f} ms  p95 {pct(api, 95):6.1f} ms  "
              "(target p95 < 100)")
        print(f"GET /wip (board) : p50 {pct(wip, 50):6.1f} ms  p95 {pct(wip, 95):6.1f} ms  "
              f"(target p95 < 100)  statuses {statuses}")


if __name__ == "__main__":
    main()
