"""Quality benchmark (PostgreSQL, in process, loopback only).

1. Mass hold: 1,000,000 lots, one fab lot of which has 5,000 descendants (10 lots received,
   split three levels deep, 400 of the last level merged into lots of other fab lots),
   vacuumed and analysed as a maintained database is.
   Times the mass hold of that fab lot through the service in one transaction (commit
   included), and through the HTTP API (the same, plus parsing and the JSON of the holds).
2. Future holds: track-outs with 1,000 active future-hold rules (at every step of the route,
   matching by fab lot, wafer, material lot, equipment window and lot lists) against the
   same track-outs with no active rule. Blocks of track-outs alternate between the two so
   that drift (caches, autovacuum) falls on both alike; prints the per-track-out difference.

Run: .venv/bin/python bench/quality.py [--lots 1000000] [--track-outs 400]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text  # noqa: E402

from bench.common import fresh_pg_database  # noqa: E402

STEPS = 25
TOOLS = 4
SUSPECT = "FSUS"
RULES = 1000
BLOCK = 25


def setup(url: str) -> Any:
    """Schema and master data: a 25-step route, tools, codes, material lots, an admin."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope
    from mes.db import utcnow as now

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_customer(s, "bench", {"code": "C1", "name": "C1", "automotive": True})
        cat.create_route(s, "bench", {"code": "R", "name": "Bench route", "steps": [
            {"code": f"S{i:03d}", "name": f"Step {i}", "kind": "assembly",
             "equipment_kind": "tool", "min_yield": None, "materials": []}
            for i in range(1, STEPS + 1)]})
        cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                        "route": "R", "aec_grade": 1, "msl": "3",
                                        "customer": "C1"})
        for i in range(TOOLS):
            cat.create_equipment(s, "bench", {"code": f"T{i:02d}", "kind": "tool", "name": "",
                                              "state": "productive"})
        cat.create_reason_code(s, "bench", {"code": "HOLD-ENG", "kind": "hold",
                                            "description": "Engineering"})
        for i in range(1000):
            cat.create_material_lot(s, "bench", {"code": f"M{i:04d}", "material": "wire",
                                                 "description": "",
                                                 "expires_at": now() + timedelta(days=365)})
        admin = auth.create_user(s, "bench", username="qa-admin", role="admin",
                                 password="Bench-pass-123")
        token = auth.create_token(s, "bench", admin)
    return app, token


def fill(url: str, lots: int) -> None:
    """Bulk rows with generate_series: `lots` background lots (a fifth of them split
    children), one step run each, wafers, material uses; then the suspect fab lot's tree."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        ids = {name: conn.execute(text(sql)).scalar_one() for name, sql in [
            ("route", "SELECT id FROM route WHERE code = 'R'"),
            ("product", "SELECT id FROM product WHERE code = 'P'"),
            ("customer", "SELECT id FROM customer WHERE code = 'C1'"),
            ("tool", "SELECT min(id) FROM equipment")]}
        lot_cols = ("lot_no, product_id, customer_id, route_id, step_seq, step_code, state, "
                    "quantity, wafer_count, fab_lot, priority, open_holds, arrived_at, "
                    "created_at, updated_at, version, audit_seq, audit_hash, in_genealogy")
        common = (f"{ids['product']}, {ids['customer']}, {ids['route']}")

        def lots_sql(name: str, count: int, fab: str, state: str, genealogy: str) -> str:
            return f"""
                INSERT INTO lot ({lot_cols})
                SELECT {name}, {common}, s, 'S' || lpad(s::text, 3, '0'), {state}, 1000, 1,
                       {fab}, 1 + g %% 5, 0, now() - (g %% 500) * interval '1 hour',
                       now() - interval '40 days', now(), 1, 0, repeat('0', 64), {genealogy}
                FROM generate_series(0, {count - 1}) AS g,
                     LATERAL (SELECT 1 + (g::bigint * 7919) %% {STEPS} AS s) AS st"""

        # Background: every tenth lot done, a few shipped or scrapped; the odd lots among the
        # first 400,000 are split children of the lot before them.
        conn.exec_driver_sql(lots_sql(
            "'X' || lpad(g::text, 7, '0')", lots, "'FX' || (g / 50)",
            "CASE WHEN g %% 10 = 1 THEN 'completed' WHEN g %% 50 = 3 THEN 'shipped' "
            "WHEN g %% 97 = 5 THEN 'scrapped' ELSE 'queued' END", "g < 400000"))
        conn.exec_driver_sql("""
            INSERT INTO lot_edge (parent_id, child_id, kind, qty, step_code, at, by)
            SELECT p.id, c.id, 'split', 500, c.step_code, now() - interval '30 days', 'bench'
            FROM lot p JOIN lot c ON c.id = p.id + 1
            WHERE p.lot_no LIKE 'X%%' AND p.lot_no < 'X0400000'
              AND right(p.lot_no, 1) IN ('0', '2', '4', '6', '8')""")
        conn.exec_driver_sql(f"""
            INSERT INTO step_run (lot_id, route_id, step_seq, step_code, equipment_id,
                                  operator, arrived_at, started_at, finished_at, qty_in,
                                  good_qty, reject_qty, finished_by)
            SELECT id, route_id, step_seq, step_code, {ids['tool']} + id %% {TOOLS}, 'op',
                   now() - interval '40 days' + (id %% 900) * interval '1 hour',
                   now() - interval '40 days' + (id %% 900) * interval '1 hour',
                   now() - interval '40 days' + (id %% 900) * interval '1 hour'
                       + interval '40 minutes', 1000, 1000, 0, 'op'
            FROM lot""")
        conn.exec_driver_sql("""
            INSERT INTO material_use (run_id, lot_id, material_lot_id, step_code, at)
            SELECT r.id, r.lot_id, m.id, r.step_code, r.started_at
            FROM step_run r JOIN material_lot m ON m.code = 'M' || lpad((r.id %% 1000)::text,
                                                                       4, '0')
            WHERE r.id %% 3 = 0""")
        conn.exec_driver_sql("""
            INSERT INTO wafer (fab_lot, wafer_id, die_qty, received_lot_id)
            SELECT fab_lot, 'W' || lpad((substr(lot_no, 2)::int %% 50 + 1)::text, 2, '0'),
                   1000, id
            FROM lot WHERE lot_no LIKE 'X%%' AND substr(lot_no, 2)::int %% 50 < 25""")
        conn.exec_driver_sql("INSERT INTO lot_wafer (lot_id, wafer_pk) "
                             "SELECT received_lot_id, id FROM wafer")

        # The suspect fab lot: 10 lots, each split into 9, each of those into 10, each of
        # those into 4 (5,000 lots with the roots); 400 grandchildren merged into lots of
        # other fab lots. States as a real tree has them: most in WIP, some completed,
        # shipped or scrapped.
        tree_state = ("CASE WHEN g % 23 = 0 THEN 'completed' WHEN g % 29 = 0 THEN 'shipped' "
                      "WHEN g % 31 = 0 THEN 'scrapped' ELSE 'queued' END").replace("%", "%%")
        for level, count in [(0, 10), (1, 90), (2, 900), (3, 3600)]:
            conn.exec_driver_sql(lots_sql(f"'SUS{level}-' || lpad(g::text, 5, '0')", count,
                                          f"'{SUSPECT}'", tree_state, "true"))
        conn.exec_driver_sql(lots_sql("'MRG-' || lpad(g::text, 5, '0')", 400,
                                      "'FMRG' || (g / 20)", "'queued'", "true"))
        for level, fan in [(1, 9), (2, 10), (3, 4)]:
            conn.exec_driver_sql(f"""
                INSERT INTO lot_edge (parent_id, child_id, kind, qty, step_code, at, by)
                SELECT p.id, c.id, 'split', 100, c.step_code, now() - interval '20 days',
                       'bench'
                FROM lot c JOIN lot p ON p.lot_no = 'SUS{level - 1}-' ||
                    lpad((substr(c.lot_no, 6)::int / {fan})::text, 5, '0')
                WHERE c.lot_no LIKE 'SUS{level}-%%'""")
        conn.exec_driver_sql("""
            INSERT INTO lot_edge (parent_id, child_id, kind, qty, step_code, at, by)
            SELECT c.id, m.id, 'merge', 100, m.step_code, now() - interval '10 days', 'bench'
            FROM lot c JOIN lot m ON m.lot_no = 'MRG-' ||
                lpad((substr(c.lot_no, 6)::int / 9)::text, 5, '0')
            WHERE c.lot_no LIKE 'SUS3-%%' AND substr(c.lot_no, 6)::int %% 9 = 0""")
        conn.exec_driver_sql("""
            UPDATE lot SET state = 'merged', quantity = 0
            WHERE lot_no LIKE 'SUS3-%%' AND substr(lot_no, 6)::int %% 9 = 0""")
    # A plant's database is vacuumed: freshly bulk-loaded rows would otherwise have every
    # first read write their hint bits, and autovacuum would run during the measurements.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def mass_hold_bench(app: Any, token: str) -> None:
    from mes.auth.models import User
    from mes.db import session_scope
    from mes.quality import services as quality

    match = {"fab_lot": SUSPECT}
    with app.app_context(), session_scope(app) as s:
        seconds, preview = timed(lambda: quality.match_lots(s, match))
    print(f"suspect fab lot   : {sum(len(v) for v in preview.values())} lots in its tree: "
          f"{len(preview['to_hold'])} in the plant, {len(preview['shipped'])} shipped, "
          f"{len(preview['skipped'])} scrapped or merged")
    print(f"preview (match)   : {seconds * 1000:7.0f} ms")

    def through_service() -> int:
        with app.app_context(), session_scope(app) as s:
            admin = s.scalar(select(User).where(User.username == "qa-admin"))
            result = quality.mass_hold(s, admin, reason="HOLD-ENG", comment="Fab excursion",
                                       match=match)
            return len(result.holds)
    for run in range(1, 4):
        seconds, held = timed(through_service)
        print(f"mass hold service : {seconds * 1000:7.0f} ms  ({held} holds, one transaction,"
              f" commit included; run {run}; target < 2000 ms)")

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    for run in range(1, 3):
        seconds, resp = timed(lambda: client.post("/api/v1/holds", headers=headers, json={
            "reason": "HOLD-ENG", "comment": "Fab excursion", "match": match}))
        body = resp.get_json()
        print(f"mass hold HTTP API: {seconds * 1000:7.0f} ms  (status {resp.status_code}, "
              f"{len(body.get('holds', []))} holds in the answer; run {run})")


def make_rules(app: Any, rng: random.Random, lots: int) -> None:
    """1,000 active rules through the service, spread over every step of the route."""
    from mes.db import session_scope
    from mes.db import utcnow as now
    from mes.quality import services as quality

    with app.app_context(), session_scope(app) as s:
        for i in range(RULES):
            kind = rng.choices(["fab_lot", "material_lot", "equipment", "wafer", "lots"],
                               weights=[40, 20, 15, 15, 10])[0]
            if kind == "fab_lot":
                match: dict[str, Any] = {"fab_lot": f"FX{rng.randrange(lots // 50)}"}
            elif kind == "material_lot":
                match = {"material_lot": f"M{rng.randrange(1000):04d}"}
            elif kind == "equipment":
                since = now() - timedelta(days=rng.uniform(1, 45))
                match = {"equipment": f"T{rng.randrange(TOOLS):02d}", "since": since,
                         "until": since + timedelta(hours=rng.uniform(0.5, 3))}
            elif kind == "wafer":
                match = {"wafer": f"W{rng.randrange(1, 26):02d}",
                         "fab_lot": f"FX{rng.randrange(lots // 50)}"}
            else:
                match = {"lots": [f"X{rng.randrange(lots):07d}" for _ in range(5)]}
            quality.create_future_hold(s, "bench", reason="HOLD-ENG", comment=f"Rule {i}",
                                       at_step=f"S{1 + i % STEPS:03d}", match=match)


def track_out_bench(app: Any, url: str, samples: int, lots: int) -> None:
    from sqlalchemy import create_engine

    from mes.db import session_scope
    from mes.floor import services as floor
    from mes.floor.models import Lot

    rng = random.Random(11)
    seconds, _ = timed(lambda: make_rules(app, rng, lots))
    print(f"{RULES} future-hold rules made through the service in {seconds:.1f} s")
    engine = create_engine(url)
    with engine.connect() as conn:
        # Queued lots not at the last step, half of them split children (their ancestors
        # are read when rules exist), half without genealogy.
        pool = [row[0] for row in conn.execute(text(
            f"SELECT lot_no FROM lot WHERE lot_no LIKE 'X%' AND state = 'queued' "
            f"AND open_holds = 0 AND step_seq < {STEPS} ORDER BY random() LIMIT {samples * 2}"))]
    times: dict[str, list[float]] = {"none": [], "rules": []}
    placed = 0
    blocks = [mode for _ in range(samples // BLOCK) for mode in ("none", "rules")]
    for block, mode in enumerate(blocks):
        with engine.begin() as conn:
            # Retiring and reactivating the same rules in place: both modes see the same
            # table, only the number of active rules differs.
            conn.execute(text("UPDATE future_hold SET status = :s"),
                         {"s": "active" if mode == "rules" else "retired"})
        for lot_no in pool[block * BLOCK:(block + 1) * BLOCK]:
            with app.app_context(), session_scope(app) as s:
                lot = floor.get_lot(s, lot_no)
                floor.track_in(s, "op", lot, step=lot.step_code,
                               equipment=f"T{rng.randrange(TOOLS):02d}")
            with app.app_context():
                start = time.perf_counter()
                with session_scope(app) as s:
                    lot = s.scalar(select(Lot).where(Lot.lot_no == lot_no))
                    floor.track_out(s, "op", lot, step=lot.step_code, good_qty=lot.quantity)
                    held = lot.open_holds
                times[mode].append(time.perf_counter() - start)
                placed += bool(held) and mode == "rules"
    with engine.begin() as conn:
        conn.execute(text("UPDATE future_hold SET status = 'active'"))
    engine.dispose()
    none, rules = (statistics.mean(times[m]) * 1000 for m in ("none", "rules"))
    med_none, med_rules = (statistics.median(times[m]) * 1000 for m in ("none", "rules"))
    print(f"track-out, no rule active : mean {none:6.2f} ms  median {med_none:6.2f} ms  "
          f"({len(times['none'])} track-outs)")
    print(f"track-out, {RULES} rules  : mean {rules:6.2f} ms  median {med_rules:6.2f} ms  "
          f"({len(times['rules'])} track-outs, {placed} held by a rule)")
    print(f"difference per track-out  : mean {rules - none:+6.2f} ms  median "
          f"{med_rules - med_none:+6.2f} ms  (target < 5 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--track-outs", type=int, default=400,
                        help="per mode (with and without rules)")
    args = parser.parse_args()
    with fresh_pg_database() as url:
        app, token = setup(url)
        seconds, _ = timed(lambda: fill(url, args.lots))
        print(f"filled {args.lots} background lots + the suspect tree in {seconds:.0f} s")
        mass_hold_bench(app, token)
        track_out_bench(app, url, args.track_outs, args.lots)
        from mes.db import get_db

        get_db(app).engine.dispose()


if __name__ == "__main__":
    main()
