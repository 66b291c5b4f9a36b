"""Process control benchmark (PostgreSQL, in process).

A wire-pull plan (n = 5, X̄–R, all four Western Electric rules) at the wire-bond step with
10,000 subgroups of history (bulk rows on 200 lots, judged by the frozen limits, which are
computed through the service from that history), vacuumed and analysed. Then times entering
one subgroup and judging the rules on both charts: through the service in its own
transaction (commit included), and through the HTTP API in process (the Flask test client:
authentication, parsing, the service, the JSON answer and the commit). Values are drawn
from the process the limits describe, so now and then a rule hits by chance as it does in a
plant: the first hit opens an event (tool stopped, lots held), later ones join it.

Run: .venv/bin/python bench/spc.py [--history 10000] [--samples 500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.common import fresh_pg_database  # noqa: E402

LOTS = 200
PLAN = "WB-PULL"


def setup(url: str) -> tuple[Any, str]:
    """Schema, master data, 200 lots run at WB on WB-1 (the last one still running), the
    plan, and an operator's API token."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope
    from mes.floor import services as floor
    from mes.spc import services as spc

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_customer(s, "bench", {"code": "C1", "name": "C1", "automotive": True})
        cat.create_route(s, "bench", {"code": "R", "name": "Bench route", "steps": [
            {"code": "DA", "name": "Die attach", "kind": "assembly",
             "equipment_kind": "die_bonder", "min_yield": None, "materials": []},
            {"code": "WB", "name": "Wire bond", "kind": "assembly",
             "equipment_kind": "wire_bonder", "min_yield": None, "materials": []},
            {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": None,
             "min_yield": None, "materials": []}]})
        cat.create_product(s, "bench", {"code": "P", "name": "P", "package": "QFN",
                                        "route": "R", "aec_grade": 1, "msl": "3",
                                        "customer": "C1"})
        for code, kind in (("DA-1", "die_bonder"), ("WB-1", "wire_bonder")):
            cat.create_equipment(s, "bench", {"code": code, "kind": kind, "name": code,
                                              "state": "productive"})
        cat.create_reason_code(s, "bench", {"code": "HOLD-SPC", "kind": "hold",
                                            "description": "Out of control"})
        user = auth.create_user(s, "bench", username="gauge", role="operator",
                                password="Bench-pass-123")
        token = auth.create_token(s, "bench", user)
        spc.create_plan(s, "bench", {
            "code": PLAN, "step": "WB", "characteristic": "Wire pull", "unit": "gf",
            "subgroup_size": 5, "frequency": "hours:8", "lsl": 6.0, "usl": 14.0,
            "target": 10.0, "equipment_kind": "wire_bonder"})
    for i in range(LOTS):
        with app.app_context(), session_scope(app) as s:
            lot = floor.receive_lot(s, "bench", {
                "product": "P", "customer": "C1", "quantity": 1000, "fab_lot": "F1",
                "wafers": [], "lot_no": f"B{i:04d}", "priority": 3, "due_date": None})
            floor.track_in(s, "bench", lot, step="DA", equipment="DA-1")
            floor.track_out(s, "bench", lot, step="DA", good_qty=1000)
            floor.track_in(s, "bench", lot, step="WB", equipment="WB-1")
            if i < LOTS - 1:
                floor.track_out(s, "bench", lot, step="WB", good_qty=1000)
    return app, token


def fill(app: Any, url: str, history: int) -> None:
    """`history` subgroups spread over the lots' WB runs (bulk rows: values drawn around
    10 gf), the limits frozen from them through the service, every one marked as judged
    in control by those limits; then VACUUM ANALYZE."""
    from sqlalchemy import create_engine

    from mes.db import session_scope
    from mes.spc import services as spc

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"""
            INSERT INTO spc_subgroup (plan_id, lot_id, equipment_id, run_id, values, mean,
                                      spread, out_of_spec, violations, at, by)
            SELECT p.id, r.lot_id, r.equipment_id, r.id, v.vals,
                   (SELECT avg(x::float) FROM json_array_elements_text(v.vals) x),
                   (SELECT max(x::float) - min(x::float)
                    FROM json_array_elements_text(v.vals) x),
                   '[]', '[]', now() - interval '60 days' + g * interval '8 minutes', 'bench'
            FROM generate_series(0, {history - 1}) AS g
            JOIN spc_plan p ON p.code = '{PLAN}'
            JOIN LATERAL (SELECT id, lot_id, equipment_id FROM step_run
                          WHERE step_code = 'WB'
                          ORDER BY id OFFSET (g * {LOTS} / {history}) LIMIT 1) r ON true
            CROSS JOIN LATERAL (
                SELECT json_agg(round((10 + 0.2 * sqrt(-2 * ln(random()))
                                       * cos(2 * pi() * random()))::numeric, 3)) AS vals
                FROM generate_series(1, 5) WHERE g >= 0) v""")
    with app.app_context(), session_scope(app) as s:
        limits = spc.freeze_limits(s, "bench", spc.get_plan(s, PLAN))
        print(f"limits v{limits.version} from {limits.subgroups} subgroups: X̿ "
              f"{limits.center:.4f}, UCL {limits.ucl:.4f}, LCL {limits.lcl:.4f}, R̄ "
              f"{limits.r_center:.4f}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE spc_subgroup SET limits_id = :l, in_control = true"),
                     {"l": limits.id})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def pct(data: list[float], p: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000


def report(name: str, times: list[float], hits: int) -> None:
    print(f"{name}: p50 {pct(times, 50):6.2f} ms  p95 {pct(times, 95):6.2f} ms  "
          f"max {max(times) * 1000:6.2f} ms  mean {statistics.mean(times) * 1000:6.2f} ms  "
          f"({len(times)} subgroups, {hits} with a rule hit; target p95 < 50 ms)")


def bench(app: Any, token: str, samples: int) -> None:
    from mes.db import session_scope
    from mes.spc import services as spc

    rng = random.Random(17)
    lot = f"B{LOTS - 1:04d}"

    def values() -> list[float]:
        return [round(rng.gauss(10, 0.2), 3) for _ in range(5)]

    times: list[float] = []
    hits = 0
    for _ in range(samples):
        with app.app_context():
            start = time.perf_counter()
            with session_scope(app) as s:
                judged = spc.add_sample(s, "gauge", spc.get_plan(s, PLAN), lot=lot,
                                        equipment="WB-1", values=values())
                hits += bool(judged.subgroup.violations)
            times.append(time.perf_counter() - start)
    report("subgroup via service ", times, hits)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    times, hits = [], 0
    for _ in range(samples):
        start = time.perf_counter()
        resp = client.post(f"/api/v1/spc/plans/{PLAN}/samples", headers=headers,
                           json={"lot": lot, "equipment": "WB-1", "values": values()})
        times.append(time.perf_counter() - start)
        if resp.status_code != 201:
            raise RuntimeError(f"sample answered {resp.status_code}: {resp.get_json()}")
        hits += bool(resp.get_json()["violations"])
    report("subgroup via HTTP API", times, hits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    with fresh_pg_database() as url:
        start = time.perf_counter()
        app, token = setup(url)
        fill(app, url, args.history)
        print(f"history of {args.history} subgroups on {LOTS} lots made in "
              f"{time.perf_counter() - start:.0f} s")
        bench(app, token, args.samples)
        from mes.db import get_db

        get_db(app).engine.dispose()


if __name__ == "__main__":
    main()
