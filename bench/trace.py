"""Traceability benchmark: traces and containment in a plant of 1,000,000 lots.

The plant: 20,000 fab lots; each is received as 2 wafer lots, each split into 5 assembly
lots, each split into 5 test lots (50 lots per fab lot, the parent of a split continuing as
one of its lots, as MES-lite splits do); the last test lot of each fab lot is merged into a
lot of the next fab lot. 40 of each fab lot's 50 lots shipped, 4 to a shipment (200,000
shipments to 50 customers), 9 are still in the plant. Step runs from each lot's first step
to its current one (2.2 million), gold wire consumed at wire bond, a test run per assembly
lot, 25 wafers per fab lot. Bulk-loaded with COPY (PostgreSQL) or executemany (SQLite),
then analysed.

Measured, one client over HTTP against the real server (gunicorn, as `mes serve`; on SQLite
the same server against the database file):
1. forward trace from a fab lot, GET /api/v1/trace?fab_lot=..., 200 random fab lots;
2. backward trace from a shipment, GET /api/v1/shipments/{id}/trace, 200 random shipments;
3. the same traces in process through the service, and done the naive way (an ORM query
   per lot: its edges, then its records one lot at a time) for the ratio;
4. containment of one fab lot, POST /api/v1/containments (5 random fab lots).

Run: .venv/bin/python bench/trace.py [--lots 1000000] [--db pg|sqlite|both] [--starts 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, select, text  # noqa: E402

from bench.common import Client, fresh_pg_database, gunicorn  # noqa: E402

PER_FAB = 50
SHIPMENTS_PER_FAB = 10
LOTS_PER_SHIPMENT = 4
CUSTOMERS = 50
TOOLS = 100
WAFERS = 25
STEPS = ("DA", "WB", "FT", "PACK")
SHIPPED = SHIPMENTS_PER_FAB * LOTS_PER_SHIPMENT  # k < 40 shipped; 40..48 in plant; 49 merged
BASE = datetime(2025, 10, 1, tzinfo=UTC)
ZERO_HASH = "0" * 64


# --- master data -----------------------------------------------------------------------

def setup(url: str) -> tuple[Any, str, dict[str, Any]]:
    """Schema from the migrations; customers, products, route, tools, codes, materials and an
    admin with an API token, through the services."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_route(s, "bench", {"code": "QFN", "name": "QFN", "steps": [
            {"code": code, "name": code, "kind": kind, "equipment_kind": "tool",
             "min_yield": None, "materials": ["wire"] if code == "WB" else []}
            for code, kind in zip(STEPS, ("assembly", "assembly", "test", "pack"),
                                  strict=True)]})
        for i in range(CUSTOMERS):
            cat.create_customer(s, "bench", {"code": f"C{i:02d}", "name": f"Customer {i}",
                                             "automotive": False})
            cat.create_product(s, "bench", {"code": f"P{i:02d}", "name": f"Product {i}",
                                            "package": "QFN", "route": "QFN",
                                            "aec_grade": None, "msl": "1",
                                            "customer": f"C{i:02d}"})
        for i in range(TOOLS):
            cat.create_equipment(s, "bench", {"code": f"T{i:03d}", "kind": "tool",
                                              "name": "", "state": "productive"})
        cat.create_reason_code(s, "bench", {"code": "HOLD-ENG", "kind": "hold",
                                            "description": "Engineering"})
        for i in range(200):
            cat.create_material_lot(s, "bench", {"code": f"AU{i:03d}", "material": "wire",
                                                 "description": "", "expires_at": None})
        admin = auth.create_user(s, "bench", username="qa-admin", role="admin",
                                 password="Bench-pass-123")
        token = auth.create_token(s, "bench", admin)
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = {
            "route": conn.execute(text("SELECT id FROM route")).scalar_one(),
            "customers": [r[0] for r in conn.execute(text(
                "SELECT id FROM customer ORDER BY code"))],
            "products": [r[0] for r in conn.execute(text(
                "SELECT id FROM product ORDER BY code"))],
            "tools": [r[0] for r in conn.execute(text(
                "SELECT id FROM equipment ORDER BY code"))],
            "materials": [r[0] for r in conn.execute(text(
                "SELECT id FROM material_lot ORDER BY code"))],
        }
    engine.dispose()
    return app, token, ids


# --- the plant, row by row -------------------------------------------------------------

def lot_id(fab: int, k: int) -> int:
    return fab * PER_FAB + k + 1


def _level(k: int) -> tuple[int, int]:
    """(first step index the lot ran, parent k or -1): roots k = 0, 25 start at DA;
    assembly lots (k % 5 == 0) split off their root at WB; test lots split off their
    assembly lot at FT."""
    a, rest = divmod(k, 25)
    b, c = divmod(rest, 5)
    if b == 0 and c == 0:
        return 0, -1
    if c == 0:
        return 1, a * 25
    return 2, a * 25 + b * 5


def _state(k: int) -> tuple[str, int]:
    """(state, index of the current step)."""
    if k < SHIPPED:
        return "shipped", 3
    if k == PER_FAB - 1:
        return "merged", 2
    return ("completed", 3) if k % 2 else ("queued", 3)


def _created(fab: int, k: int) -> datetime:
    first, _parent = _level(k)
    return BASE + timedelta(minutes=25 * fab + 180 * first + k % 5)


def lots(fabs: int, ids: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for fab in range(fabs):
        cust = fab % CUSTOMERS
        for k in range(PER_FAB):
            state, step = _state(k)
            created = _created(fab, k)
            first, parent = _level(k)
            yield (lot_id(fab, k), f"L{fab:05d}-{k:02d}", ids["products"][cust],
                   ids["customers"][cust], ids["route"], step + 1, STEPS[step], state,
                   0 if state == "merged" else 100, 1 if parent < 0 else 0, f"F{fab:05d}",
                   3, 0, created + timedelta(hours=8), created, created, 1, 0, ZERO_HASH,
                   True)


LOT_COLS = ("id", "lot_no", "product_id", "customer_id", "route_id", "step_seq", "step_code",
            "state", "quantity", "wafer_count", "fab_lot", "priority", "open_holds",
            "arrived_at", "created_at", "updated_at", "version", "audit_seq", "audit_hash",
            "in_genealogy")


def edges(fabs: int) -> Iterator[tuple[Any, ...]]:
    n = 0
    for fab in range(fabs):
        for k in range(PER_FAB):
            first, parent = _level(k)
            if parent >= 0:
                n += 1
                yield (n, lot_id(fab, parent), lot_id(fab, k), "split", 20, STEPS[first],
                       _created(fab, k), "bench")
        if fab + 1 < fabs:
            n += 1
            yield (n, lot_id(fab, PER_FAB - 1), lot_id(fab + 1, PER_FAB - 2), "merge", 100,
                   "FT", _created(fab + 1, PER_FAB - 2) + timedelta(hours=2), "bench")


EDGE_COLS = ("id", "parent_id", "child_id", "kind", "qty", "step_code", "at", "by")


def _runs(fabs: int) -> Iterator[tuple[int, int, int, int, datetime]]:
    """(run id, fab, k, step index, started_at) of every step run."""
    n = 0
    for fab in range(fabs):
        for k in range(PER_FAB):
            first, _parent = _level(k)
            state, current = _state(k)
            last = current if state in ("shipped", "completed") else current - 1
            for step in range(first, last + 1):
                n += 1
                yield n, fab, k, step, _created(fab, k) + timedelta(hours=2 * step + 1)


def step_runs(fabs: int, ids: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    tools = ids["tools"]
    for n, fab, k, step, started in _runs(fabs):
        lid = lot_id(fab, k)
        yield (n, lid, ids["route"], step + 1, STEPS[step], tools[(lid * 7 + step) % TOOLS],
               f"op{lid % 40:02d}", started, started, started + timedelta(minutes=40), 100,
               100, 0, f"op{(lid + 1) % 40:02d}")


RUN_COLS = ("id", "lot_id", "route_id", "step_seq", "step_code", "equipment_id", "operator",
            "arrived_at", "started_at", "finished_at", "qty_in", "good_qty", "reject_qty",
            "finished_by")


def material_uses(fabs: int, ids: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    mats = ids["materials"]
    m = 0
    for n, fab, k, step, started in _runs(fabs):
        if STEPS[step] == "WB":
            m += 1
            yield m, n, lot_id(fab, k), mats[fab % len(mats)], "WB", started


MATERIAL_COLS = ("id", "run_id", "lot_id", "material_lot_id", "step_code", "at")


def test_runs(fabs: int, ids: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    t = 0
    for _n, fab, k, step, started in _runs(fabs):
        if STEPS[step] == "FT" and k % 5 == 0:
            t += 1
            yield (t, lot_id(fab, k), ids["products"][fab % CUSTOMERS],
                   ids["customers"][fab % CUSTOMERS], "FT", "bins", 100, 100,
                   0, 98, 99, 98.0, 99.0, '{"1": 99, "5": 1}', '{"1": 99, "5": 1}',
                   '{"1": 99, "5": 1}', "[5]", "[]", "{}", "{}", started, "tester")


TEST_COLS = ("id", "lot_id", "product_id", "customer_id", "step_code", "source",
             "parts_tested", "units", "retests", "first_pass_good", "final_good",
             "first_pass_yield", "final_yield",
             "hard_bins", "soft_bins", "final_bins", "failing_bins", "warnings", "pat", "sba",
             "created_at", "created_by")


def wafers(fabs: int) -> Iterator[tuple[Any, ...]]:
    for fab in range(fabs):
        for w in range(WAFERS):
            yield (fab * WAFERS + w + 1, f"F{fab:05d}", f"W{w + 1:02d}", 1000,
                   lot_id(fab, 0 if w < 13 else 25))


WAFER_COLS = ("id", "fab_lot", "wafer_id", "die_qty", "received_lot_id")


def lot_wafers(fabs: int) -> Iterator[tuple[Any, ...]]:
    for row in wafers(fabs):
        yield row[4], row[0]


def shipments(fabs: int, ids: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for fab in range(fabs):
        for s in range(SHIPMENTS_PER_FAB):
            yield (fab * SHIPMENTS_PER_FAB + s + 1, ids["customers"][fab % CUSTOMERS],
                   f"PO-{fab:05d}-{s}", _created(fab, 0) + timedelta(days=3, hours=s),
                   "planner")


def shipment_lots(fabs: int) -> Iterator[tuple[Any, ...]]:
    for fab in range(fabs):
        for k in range(SHIPPED):
            yield fab * SHIPMENTS_PER_FAB + k // LOTS_PER_SHIPMENT + 1, lot_id(fab, k), 100


TABLES: list[tuple[str, tuple[str, ...], Callable[[int, dict[str, Any]], Iterator[Any]]]] = [
    ("lot", LOT_COLS, lots),
    ("lot_edge", EDGE_COLS, lambda f, _ids: edges(f)),
    ("step_run", RUN_COLS, step_runs),
    ("material_use", MATERIAL_COLS, material_uses),
    ("test_run", TEST_COLS, test_runs),
    ("wafer", WAFER_COLS, lambda f, _ids: wafers(f)),
    ("lot_wafer", ("lot_id", "wafer_pk"), lambda f, _ids: lot_wafers(f)),
    ("shipment", ("id", "customer_id", "po", "shipped_at", "shipped_by"), shipments),
    ("shipment_lot", ("shipment_id", "lot_id", "quantity"), lambda f, _ids: shipment_lots(f)),
]


def load_pg(url: str, fabs: int, ids: dict[str, Any]) -> int:
    engine = create_engine(url)
    raw = engine.raw_connection()
    rows = 0
    try:
        cur = raw.cursor()
        for table, cols, gen in TABLES:
            with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in gen(fabs, ids):
                    copy.write_row(row)
                    rows += 1
            if "id" in cols:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
    # A maintained plant's tables are vacuumed and analysed.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return rows


def _sqlite_value(value: Any) -> Any:
    # UTCDateTime keeps naive UTC on SQLite.
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return value


def load_sqlite(path: str, fabs: int, ids: dict[str, Any]) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    rows = 0
    for table, cols, gen in TABLES:
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        batch: list[tuple[Any, ...]] = []
        for row in gen(fabs, ids):
            batch.append(tuple(_sqlite_value(v) for v in row))
            if len(batch) >= 50_000:
                conn.executemany(sql, batch)
                rows += len(batch)
                batch.clear()
        conn.executemany(sql, batch)
        rows += len(batch)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return rows


# --- measuring -------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))] * 1000


def summary(values: list[float]) -> str:
    return (f"p50 {pct(values, 50):7.2f} ms  p95 {pct(values, 95):7.2f} ms  "
            f"max {max(values) * 1000:7.2f} ms")


def http_traces(port: int, token: str, fab_starts: list[int],
                ship_starts: list[int]) -> dict[str, Any]:
    client = Client(port, {"Authorization": f"Bearer {token}"})
    out: dict[str, Any] = {}
    for name, paths in [
            ("forward", [f"/api/v1/trace?fab_lot=F{f:05d}" for f in fab_starts]),
            ("backward", [f"/api/v1/shipments/{s}/trace" for s in ship_starts])]:
        for path in paths[:10]:  # warm-up: connections, statement caches
            client.call("GET", path)
        times, sizes = [], []
        for path in paths:
            status, body, seconds = client.call("GET", path)
            assert status == 200, (path, status, body[:300])
            times.append(seconds)
            sizes.append(len(body))
        out[name] = times
        out[name + "_bytes"] = statistics.mean(sizes)
    return out


def naive_forward(s: Any, fab_lot: str) -> dict[str, Any]:
    """Forward trace the naive way: the lots of the fab lot, then for each lot found, a
    query for its edges and one per child; a query for its shipment and one per shipment."""
    from mes.catalog.models import Customer
    from mes.floor.models import Lot, LotEdge
    from mes.shipping.models import Shipment, ShipmentLot

    found = {lot.id: lot for lot in s.scalars(select(Lot).where(Lot.fab_lot == fab_lot))}
    queue = list(found.values())
    while queue:
        lot = queue.pop()
        for edge in s.scalars(select(LotEdge).where(LotEdge.parent_id == lot.id)):
            if edge.child_id not in found:
                child = s.get(Lot, edge.child_id)
                found[child.id] = child
                queue.append(child)
    shipped: dict[int, list[str]] = {}
    for lot in found.values():
        link = s.scalar(select(ShipmentLot).where(ShipmentLot.lot_id == lot.id))
        if link is not None:
            shipment = s.get(Shipment, link.shipment_id)
            s.get(Customer, shipment.customer_id)
            shipped.setdefault(shipment.id, []).append(lot.lot_no)
    return {"lots": len(found), "shipments": len(shipped)}


def naive_backward(s: Any, shipment_id: int) -> dict[str, Any]:
    """Backward trace the naive way: for each lot, a query for the edges into it and one
    per parent, then one query per lot for each kind of record."""
    from mes.floor.models import Lot, LotEdge, LotWafer, MaterialUse, StepRun
    from mes.quality.models import Hold
    from mes.shipping.models import ShipmentLot
    from mes.testfloor.models import TestRun

    found = {}
    for link in s.scalars(select(ShipmentLot).where(ShipmentLot.shipment_id == shipment_id)):
        found[link.lot_id] = s.get(Lot, link.lot_id)
    queue = list(found.values())
    while queue:
        lot = queue.pop()
        for edge in s.scalars(select(LotEdge).where(LotEdge.child_id == lot.id)):
            if edge.parent_id not in found:
                parent = s.get(Lot, edge.parent_id)
                found[parent.id] = parent
                queue.append(parent)
    records = 0
    for lot in found.values():
        for model in (StepRun, MaterialUse, TestRun, Hold, LotWafer):
            records += len(s.scalars(select(model).where(model.lot_id == lot.id)).all())
    return {"lots": len(found), "records": records}


def in_process(app: Any, fab_starts: list[int], ship_starts: list[int]) -> dict[str, Any]:
    from mes.db import session_scope
    from mes.trace import services

    def each(fn: Callable[[Any, Any], Any], starts: list[Any]) -> tuple[list[float], Any]:
        times, last = [], None
        for start in starts:
            with session_scope(app) as s:
                t0 = time.perf_counter()
                last = fn(s, start)
                times.append(time.perf_counter() - t0)
        return times, last

    out: dict[str, Any] = {}
    with app.app_context():
        out["service_forward"], fwd = each(
            lambda s, f: services.forward_match(s, {"fab_lot": f"F{f:05d}"}), fab_starts)
        out["naive_forward"], nf = each(lambda s, f: naive_forward(s, f"F{f:05d}"), fab_starts)
        out["service_backward"], back = each(
            lambda s, sid: services.shipment_backward(s, sid), ship_starts)
        out["naive_backward"], nb = each(naive_backward, ship_starts)
    out["forward_size"] = (len(fwd["lots"]) + len(fwd["descendants"]), len(fwd["shipments"]),
                           nf)
    out["backward_size"] = (len(back["ancestors"]) + len(back["lots"]), len(back["steps"]), nb)
    return out


def containments(port: int, token: str, fabs: list[int]) -> list[tuple[float, int, int]]:
    client = Client(port, {"Authorization": f"Bearer {token}"})
    out = []
    for fab in fabs:
        status, body, seconds = client.call("POST", "/api/v1/containments", {
            "reason": "HOLD-ENG", "comment": "Fab excursion",
            "match": {"fab_lot": f"F{fab:05d}"}})
        assert status == 201, (status, body[:300])
        import json
        answer = json.loads(body)
        out.append((seconds, len(answer["lots_held"]), len(answer["shipped"])))
    return out


def run(kind: str, url: str, server_url: str, fabs: int, starts: int, workers: int) -> None:
    t0 = time.perf_counter()
    app, token, ids = setup(url)
    if kind == "postgresql":
        rows = load_pg(url, fabs, ids)
    else:
        rows = load_sqlite(url.removeprefix("sqlite:///"), fabs, ids)
    print(f"\n== {kind}: {fabs * PER_FAB:,} lots, {fabs:,} fab lots, "
          f"{fabs * SHIPMENTS_PER_FAB:,} shipments to {CUSTOMERS} customers; "
          f"{rows:,} rows bulk-loaded in {time.perf_counter() - t0:.0f} s")
    rnd = random.Random(7)
    fab_starts = [rnd.randrange(fabs) for _ in range(starts)]
    ship_starts = [rnd.randrange(fabs * SHIPMENTS_PER_FAB) + 1 for _ in range(starts)]
    env = {"MES_DATABASE_URL": server_url, "MES_SECRET_KEY": "bench-" * 6,
           "MES_INSTANCE_PATH": tempfile.mkdtemp()}
    with gunicorn("mes:create_app()", env, workers) as port:
        http = http_traces(port, token, fab_starts, ship_starts)
        local = in_process(app, fab_starts, ship_starts)
        print(f"forward trace from a fab lot, HTTP, {starts} starts, one client: "
              f"{summary(http['forward'])}  ({http['forward_bytes'] / 1000:.1f} kB)")
        print(f"backward trace from a shipment, HTTP, {starts} starts, one client: "
              f"{summary(http['backward'])}  ({http['backward_bytes'] / 1000:.1f} kB)")
        lots_f, ships_f, naive_f = local["forward_size"]
        lots_b, steps_b, naive_b = local["backward_size"]
        print(f"  (last start: forward {lots_f} lots, {ships_f} shipments; naive found "
              f"{naive_f['lots']} lots, {naive_f['shipments']} shipments; backward "
              f"{lots_b} lots, {steps_b} step runs; naive {naive_b['lots']} lots)")
        for direction in ("forward", "backward"):
            svc, naive = local[f"service_{direction}"], local[f"naive_{direction}"]
            print(f"{direction:8s} in process: service {summary(svc)}")
            print(f"{direction:8s} in process: naive   {summary(naive)}  -> naive / service "
                  f"p50 {pct(naive, 50) / pct(svc, 50):.1f}x, p95 "
                  f"{pct(naive, 95) / pct(svc, 95):.1f}x")
        contained = containments(port, token, [rnd.randrange(fabs) for _ in range(5)])
        for seconds, held, shipped in contained:
            print(f"containment of one fab lot, HTTP: {seconds * 1000:7.1f} ms "
                  f"({held} lots held, {shipped} shipments listed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("pg", "sqlite", "both"), default="both")
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fabs = max(2, args.lots // PER_FAB)
    if args.db in ("pg", "both"):
        with fresh_pg_database() as url:
            run("postgresql", url, url, fabs, args.starts, args.workers)
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/trace.db"
            run("sqlite", url, url, fabs, args.starts, args.workers)


if __name__ == "__main__":
    main()
