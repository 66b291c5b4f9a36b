"""Forecasts and orders benchmark (PostgreSQL, production server, loopback only).

Builds on a fresh database, with set-based SQL (generate_series): a 10-step route;
`--history` lots of history (completed and shipped, 1,000,000 by default) of which a tenth
ran their steps in the last 90 days (a step run per step: the durations forecasts draw
from); `--open` open lots (100,000) spread over the steps, queued or running, arrived up to
30 days ago, 2 % held (an open hold each) and a few hundred released holds; `--orders`
purchase orders (2,000) of 5 lines each, the open lots allocated to them (about 10 a line).

Then prints:

1. `mes forecast recompute`'s work in process: rebuilding the distributions, and
   recomputing every open lot's forecast (with the order lines' statuses) — the second
   from stored distributions, as the worker does (target: 100,000 lots under 2 s);
2. through gunicorn, p50/p95 of GET /api/v1/orders/{po} (an admin), the portal's orders
   page (a customer user) and GET /api/v1/feeds/wip (when the application has it; target
   p95 under 100 ms each).

Run: .venv/bin/python bench/orders.py [--history 1000000] [--open 100000] [--orders 2000]
     [--samples 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import Client, fresh_pg_database, gunicorn, page_client  # noqa: E402

STEPS = 10
LINES = 5
PASSWORD = "Bench-pass-123"
# The WIP feed's path (GET, JSON): measured when the application answers it.
FEED_PATH = "/api/v1/feeds/wip"


def setup(url: str) -> dict[str, Any]:
    """Schema and master data through the services; an admin token, a customer user."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        for c in ("C1", "C2"):
            cat.create_customer(s, "bench", {"code": c, "name": c, "automotive": True})
        cat.create_route(s, "bench", {"code": "R", "name": "Bench route", "steps": [
            {"code": f"S{i:03d}", "name": f"Step {i}", "kind": "assembly",
             "equipment_kind": "tool", "min_yield": None, "materials": []}
            for i in range(1, STEPS + 1)]})
        cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                        "route": "R", "aec_grade": 1, "msl": "3",
                                        "customer": None})
        cat.create_equipment(s, "bench", {"code": "T00", "kind": "tool", "name": "",
                                          "state": "productive"})
        for code in ("H1", "H2"):
            cat.create_reason_code(s, "bench", {"code": code, "kind": "hold",
                                                "description": code})
        admin = auth.create_user(s, "bench", username="adm", role="admin", password=PASSWORD)
        auth.create_user(s, "bench", username="cust", role="customer", password=PASSWORD,
                         customer="C1")
        token = auth.create_token(s, "bench", admin)
    get_db(app).engine.dispose()
    return {"token": token, "app": app}


LOT_COLUMNS = ("lot_no, product_id, customer_id, route_id, step_seq, step_code, state, "
               "quantity, wafer_count, fab_lot, priority, open_holds, arrived_at, created_at, "
               "updated_at, version, audit_seq, audit_hash, in_genealogy, shipped_qty")


def fill(url: str, history: int, open_lots: int, orders: int) -> None:
    """The bulk rows (see the module's docstring)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        # The lot table's row triggers keep the out-of-WIP totals (lot_closed_total), one
        # row per group for a million closed lots: left out of the bulk load, as a restore
        # would (nothing here reads those totals).
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        ids = {name: conn.execute(text(sql)).scalar_one() for name, sql in [
            ("route", "SELECT id FROM route WHERE code = 'R'"),
            ("product", "SELECT id FROM product WHERE code = 'P'"),
            ("c1", "SELECT id FROM customer WHERE code = 'C1'"),
            ("c2", "SELECT id FROM customer WHERE code = 'C2'"),
            ("tool", "SELECT id FROM equipment WHERE code = 'T00'"),
            ("h1", "SELECT id FROM reason_code WHERE code = 'H1'")]}
        customer = f"CASE WHEN g %% 2 = 0 THEN {ids['c1']} ELSE {ids['c2']} END"
        # History: completed or shipped, a year old at most.
        conn.exec_driver_sql(f"""
            INSERT INTO lot ({LOT_COLUMNS})
            SELECT 'H' || lpad(g::text, 8, '0'), {ids['product']}, {customer}, {ids['route']},
                   {STEPS}, 'S{STEPS:03d}',
                   CASE WHEN g %% 3 = 0 THEN 'completed' ELSE 'shipped' END,
                   1000, 1, 'FH' || (g / 50), 3, 0, now() - (g %% 365) * interval '1 day',
                   now() - (g %% 365) * interval '1 day', now(), 1, 0, repeat('0', 64), false,
                   CASE WHEN g %% 3 = 0 THEN 0 ELSE 1000 END
            FROM generate_series(1, {history}) AS g""")
        # Their step runs in the window: a tenth of them, every step, queue ~ up to 30 h,
        # process ~ up to 4 h (varied by step), good 99 %.
        conn.exec_driver_sql(f"""
            INSERT INTO step_run (lot_id, route_id, step_seq, step_code, equipment_id,
                                  operator, arrived_at, started_at, finished_at, qty_in,
                                  good_qty, reject_qty, finished_by)
            SELECT l.id, {ids['route']}, s, 'S' || lpad(s::text, 3, '0'), {ids['tool']}, 'op',
                   f - ((l.id * 37 + s * 101) %% (30 * s + 60)) * interval '1 hour' / 10
                     - ((l.id + s) %% 40) * interval '6 minutes',
                   f - ((l.id + s) %% 40) * interval '6 minutes', f, 1000, 990, 10, 'op'
            FROM (SELECT id, now() - (id %% 85) * interval '1 day' - (id %% 24) * interval '1 hour'
                         AS f FROM lot WHERE lot_no LIKE 'H%%' AND id %% 10 = 0) AS l(id, f),
                 generate_series(1, {STEPS}) AS s""")
        # Released holds in the window.
        conn.exec_driver_sql(f"""
            INSERT INTO hold (lot_id, reason_id, comment, source, status, step_code, placed_by,
                              placed_at, released_by, released_at, disposition, data)
            SELECT l.id, {ids['h1']}, 'history', 'manual', 'released', 'S001', 'qa',
                   now() - interval '60 days' - (l.id %% 200) * interval '1 hour', 'qa2',
                   now() - interval '60 days', 'release', '{{}}'
            FROM (SELECT id FROM lot WHERE lot_no LIKE 'H%%' ORDER BY id LIMIT 500) AS l""")
        # Open lots.
        conn.exec_driver_sql(f"""
            INSERT INTO lot ({LOT_COLUMNS})
            SELECT 'W' || lpad(g::text, 7, '0'), {ids['product']}, {customer}, {ids['route']},
                   s, 'S' || lpad(s::text, 3, '0'),
                   CASE WHEN g %% 10 = 0 THEN 'running' ELSE 'queued' END,
                   1000, 1, 'FW' || (g / 50), 1 + g %% 5,
                   CASE WHEN g %% 50 = 0 THEN 1 ELSE 0 END,
                   now() - (g %% 720) * interval '1 hour', now() - interval '30 days', now(),
                   1, 0, repeat('0', 64), false, 0
            FROM generate_series(1, {open_lots}) AS g,
                 LATERAL (SELECT 1 + (g::bigint * 7919) %% {STEPS} AS s) AS st""")
        conn.exec_driver_sql(f"""
            INSERT INTO hold (lot_id, reason_id, comment, source, status, step_code, placed_by,
                              placed_at, data)
            SELECT id, {ids['h1']}, 'look', 'manual', 'open', step_code, 'qa',
                   now() - (id %% 96) * interval '1 hour', '{{}}'
            FROM lot WHERE lot_no LIKE 'W%%' AND open_holds = 1""")
        # Orders: `orders` POs of LINES lines, alternately C1's and C2's; the open lots
        # dealt to the lines in turn.
        conn.exec_driver_sql(f"""
            INSERT INTO purchase_order (customer_id, po, created_at, created_by)
            SELECT {customer}, 'PO-' || lpad(g::text, 6, '0'), now(), 'bench'
            FROM generate_series(1, {orders}) AS g""")
        conn.exec_driver_sql(f"""
            INSERT INTO order_line (order_id, line_no, product_id, quantity, need_date,
                                    commit_date, version)
            SELECT o.id, n, {ids['product']}, 9000 + n * 500,
                   current_date + (o.id %% 40) + n, current_date + (o.id %% 40) + n, 1
            FROM purchase_order o, generate_series(1, {LINES}) AS n""")
        conn.exec_driver_sql("""
            INSERT INTO order_allocation (lot_id, line_id, allocated_at, allocated_by)
            SELECT l.id, ol.id, now(), 'bench'
            FROM (SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id
                                                             ORDER BY id) AS k
                  FROM lot WHERE lot_no LIKE 'W%%') AS l
            JOIN (SELECT ol.id, o.customer_id, row_number() OVER (
                         PARTITION BY o.customer_id ORDER BY ol.id) AS k,
                         count(*) OVER (PARTITION BY o.customer_id) AS n
                  FROM order_line ol JOIN purchase_order o ON o.id = ol.order_id) AS ol
              ON ol.customer_id = l.customer_id AND ol.k = 1 + (l.k - 1) %% ol.n""")
    engine.dispose()
    vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()


def recompute(url: str) -> None:
    """Time the distributions' rebuild and the recomputation of every forecast."""
    from mes import create_app
    from mes.db import get_db, session_scope
    from mes.forecast import outlook, services

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with app.app_context():
        with session_scope(app) as s:
            t0 = time.perf_counter()
            n = services.refresh_distributions(s)
            t1 = time.perf_counter()
        print(f"distributions    : {n} rebuilt from the history in {t1 - t0:.2f} s")
        for label in ("first (no forecast stored)", "again (every forecast stale)"):
            with session_scope(app) as s:
                if label.startswith("again"):
                    s.execute(text("UPDATE lot_forecast SET lot_version = 0"))
                    s.commit()
                t0 = time.perf_counter()
                count = services.refresh_stale_forecasts(s)
                t1 = time.perf_counter()
            print(f"forecasts {label}: {count} lots in {t1 - t0:.2f} s, with the lines' "
                  "statuses (target < 2 s for 100,000)")
        with session_scope(app) as s:
            t0 = time.perf_counter()
            lines = outlook.refresh_line_outlooks(s)
            t1 = time.perf_counter()
        print(f"line statuses    : every line recomputed in {t1 - t0:.2f} s ({lines} changed)")
    get_db(app).engine.dispose()


def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000


def measure(name: str, client: Client, paths: list[str]) -> None:
    latencies, statuses = [], {}
    for i, path in enumerate(paths):
        status, _body, latency = client.call("GET", path)
        statuses[status] = statuses.get(status, 0) + 1
        if i:  # the first call warms the worker up
            latencies.append(latency)
    print(f"{name:<17}: p50 {pct(latencies, 50):6.1f} ms  p95 {pct(latencies, 95):6.1f} ms  "
          f"statuses {statuses} (target p95 < 100)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    workers = 2 * multiprocessing.cpu_count() + 1

    with fresh_pg_database() as url:
        ctx = setup(url)
        t0 = time.time()
        fill(url, args.history, args.open, args.orders)
        print(f"filled {args.history} history lots, {args.open} open lots, {args.orders} "
              f"orders of {LINES} lines in {time.time() - t0:.0f} s")
        recompute(url)
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp()}
        rng = random.Random(11)
        with gunicorn("mes:create_app()", env, workers) as port:
            admin = Client(port, {"Authorization": f"Bearer {ctx['token']}"})
            pos = [f"PO-{rng.randint(1, args.orders):06d}" for _ in range(args.samples)]
            measure("GET /orders/{po}", admin, [f"/api/v1/orders/{po}" for po in pos])
            customer = page_client(port, "cust", PASSWORD)
            measure("portal orders", customer, ["/portal/orders"] * args.samples)
            # The feed as the customer's system reads it (its own lots, about half).
            status, _body, _latency = customer.call("GET", FEED_PATH)
            if status == 404:
                print(f"GET {FEED_PATH}: not in this application (nothing measured)")
            else:
                measure("GET /feeds/wip", customer, [FEED_PATH] * args.samples)


if __name__ == "__main__":
    main()
