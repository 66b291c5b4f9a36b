"""Reports benchmark (PostgreSQL, production server, loopback only).

Builds a year of plant history on a fresh database with COPY: 1,000,000 lots on a
three-step route (saw, final test, pack) started evenly over 365 days (queue time at each
step ~ exponential, mean 12 h; process time mean 2 h), ~3.0 million step runs (~6.0 million
track-in/out history events), their rejects (30 % of runs), ~1 % of lots held, one test run
per final test, completed lots shipped at noon the next day (~11 lots a shipment), and the
E10 state changes of 198 tools (about four a day each). Then, through gunicorn, times every
report endpoint (JSON and CSV) for the last 30 days as an admin and as a customer user, and
every report page as an admin, and prints p50 and max per call.

Run: .venv/bin/python bench/reports.py [--lots 1000000] [--samples 7]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import Client, fresh_pg_database, gunicorn, page_client  # noqa: E402

STEPS = (("SAW", "assembly", "saw"), ("FT", "test", "tester"), ("PACK", "pack", "taper"))
CUSTOMERS = 20
PRODUCTS = 50
TOOLS_PER_KIND = 66
REJECTS = [f"R{i:02d}" for i in range(10)]
DAYS = 365
QTY = 1000


def setup(url: str) -> dict[str, Any]:
    """Schema and master data through the services; tokens for an admin and a customer."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        for c in range(CUSTOMERS):
            cat.create_customer(s, "bench", {"code": f"C{c:02d}", "name": f"Customer {c}",
                                             "automotive": False})
        cat.create_route(s, "bench", {"code": "R", "name": "Bench route", "steps": [
            {"code": code, "name": code, "kind": kind, "equipment_kind": eq,
             "min_yield": None, "materials": []} for code, kind, eq in STEPS]})
        for p in range(PRODUCTS):
            cat.create_product(s, "bench", {"code": f"P{p:02d}", "name": f"P{p}",
                                            "package": "QFN", "route": "R", "aec_grade": None,
                                            "msl": "1", "customer": f"C{p % CUSTOMERS:02d}"})
        for _code, _kind, eq in STEPS:
            for t in range(TOOLS_PER_KIND):
                cat.create_equipment(s, "bench", {"code": f"{eq}-{t:02d}", "kind": eq,
                                                  "name": "", "state": "standby"})
        for code in REJECTS:
            cat.create_reason_code(s, "bench", {"code": code, "kind": "reject",
                                                "description": code, "description_zh": ""})
        for code, kind in (("H1", "hold"), ("H2", "hold"), ("S1", "scrap")):
            cat.create_reason_code(s, "bench", {"code": code, "kind": kind,
                                                "description": code, "description_zh": ""})
        admin = auth.create_user(s, "bench", username="adm", role="admin",
                                 password="Bench-pass-123")
        cust = auth.create_user(s, "bench", username="cust", role="customer",
                                password="Bench-pass-123", customer="C03")
        tokens = {"admin": auth.create_token(s, "bench", admin),
                  "customer": auth.create_token(s, "bench", cust)}
    get_db(app).engine.dispose()
    return tokens


def _ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S+00")


class Copier:
    """Rows for one table, written with COPY in chunks of text lines."""

    def __init__(self, conn: Any, table: str, columns: str) -> None:
        self.conn, self.table, self.columns = conn, table, columns
        self.buf = io.StringIO()
        self.n = self.total = 0

    def add(self, *values: Any) -> None:
        self.buf.write("\t".join(r"\N" if v is None else str(v) for v in values))
        self.buf.write("\n")
        self.n += 1
        if self.n >= 200_000:
            self.flush()

    def flush(self) -> None:
        if not self.n:
            return
        with self.conn.cursor() as cur, cur.copy(
                f"COPY {self.table} ({self.columns}) FROM STDIN") as cp:
            cp.write(self.buf.getvalue())
        self.total += self.n
        self.buf = io.StringIO()
        self.n = 0


def fill(url: str, lots: int, now: datetime) -> dict[str, int]:
    """The year of history, generated lot by lot with a fixed seed and written by COPY."""
    import psycopg

    rng = random.Random(42)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        prods = [(i, cust) for i, cust in conn.execute(
            "SELECT id, customer_id FROM product ORDER BY code")]
        route_id = conn.execute("SELECT id FROM route WHERE code = 'R'").fetchone()[0]
        tools = {kind: [i for (i,) in conn.execute(
            "SELECT id FROM equipment WHERE kind = %s ORDER BY code", (kind,))]
            for _c, _k, kind in STEPS}
        tool_code = dict(conn.execute("SELECT id, code FROM equipment"))
        reasons = dict(conn.execute("SELECT code, id FROM reason_code"))
        t_now = now.timestamp()
        lot_c = Copier(conn, "lot", "id, lot_no, product_id, customer_id, route_id, step_seq, "
                       "step_code, state, quantity, wafer_count, fab_lot, priority, due_date, "
                       "open_holds, equipment_id, run_id, arrived_at, created_at, updated_at, "
                       "version, audit_seq, audit_hash, in_genealogy")
        run_c = Copier(conn, "step_run", "id, lot_id, route_id, step_seq, step_code, "
                       "equipment_id, operator, arrived_at, started_at, finished_at, qty_in, "
                       "good_qty, reject_qty, finished_by")
        ev_c = Copier(conn, "lot_event", "lot_id, kind, at, by, step_code, equipment, qty_in, "
                      "qty_out, data")
        rej_c = Copier(conn, "lot_reject", "run_id, lot_id, step_code, reason_id, qty, at")
        hold_c = Copier(conn, "hold", "lot_id, reason_id, comment, source, status, step_code, "
                        "placed_by, placed_at, released_by, released_at, disposition, "
                        "scrap_qty, scrap_reason_id, data")
        test_c = Copier(conn, "test_run", "lot_id, product_id, customer_id, step_code, "
                        "source, "
                        "parts_tested, units, retests, first_pass_good, final_good, "
                        "first_pass_yield, final_yield, hard_bins, soft_bins, final_bins, "
                        "failing_bins, warnings, pat, sba, created_at, created_by")
        ship_c = Copier(conn, "shipment", "id, customer_id, po, shipped_at, shipped_by")
        sl_c = Copier(conn, "shipment_lot", "shipment_id, lot_id, quantity")
        run_id = 0
        ship_id = 0
        shipments: dict[tuple[int, int, int], int] = {}
        span = DAYS * 86400
        for lot_id in range(1, lots + 1):
            created = t_now - span + span * (lot_id - 0.5) / lots
            pid, cust = prods[rng.randrange(PRODUCTS)]
            qty = QTY
            t = created
            seq, state, step_code, arrived, eq_now, cur_run = 1, "queued", "SAW", t, None, None
            holds = 0
            for i, (code, kind, eq) in enumerate(STEPS, start=1):
                seq, step_code, arrived = i, code, t
                start = t + rng.expovariate(1 / (12 * 3600))
                if start >= t_now:
                    state = "queued"
                    break
                tool = rng.choice(tools[eq])
                end = start + rng.expovariate(1 / (2 * 3600))
                run_id += 1
                if end >= t_now:
                    state, eq_now, cur_run = "running", tool, run_id
                    run_c.add(run_id, lot_id, route_id, i, code, tool, "op", _ts(t), _ts(start),
                              None, qty, None, None, None)
                    ev_c.add(lot_id, "track_in", _ts(start), "op", code, tool_code[tool], qty,
                             None, "{}")
                    break
                rej = rng.randint(1, 30) if rng.random() < 0.3 else 0
                good = qty - rej
                run_c.add(run_id, lot_id, route_id, i, code, tool, "op", _ts(t), _ts(start),
                          _ts(end), qty, good, rej, "op")
                ev_c.add(lot_id, "track_in", _ts(start), "op", code, tool_code[tool], qty, None,
                         "{}")
                ev_c.add(lot_id, "track_out", _ts(end), "op", code, tool_code[tool], qty, good,
                         "{}")
                if rej:
                    rej_c.add(run_id, lot_id, code, reasons[rng.choice(REJECTS)], rej, _ts(end))
                if kind == "test":
                    fp = good - rng.randint(0, 20)
                    test_c.add(lot_id, pid, cust, code, "bins", qty, qty, 0, fp, good,
                               100.0 * fp / qty, 100.0 * good / qty, "{}", "{}", "{}", "[]",
                               "[]", "{}", "{}", _ts(end), "op")
                qty, t = good, end
            else:
                state, seq, step_code, arrived = "completed", 3, "PACK", t
            last = t if state != "running" else start
            if rng.random() < 0.01:
                placed = created + (t - created) * rng.random()
                last = max(last, placed)
                if state in ("queued", "running") and rng.random() < 0.5:
                    holds = 1
                    hold_c.add(lot_id, reasons["H1"], "bench", "manual", "open", step_code,
                               "qa", _ts(placed), None, None, None, None, None, "{}")
                else:
                    released = min(placed + rng.expovariate(1 / (30 * 3600)), t_now - 1)
                    last = max(last, released)
                    disp = rng.choice(("release", "rework", "scrap", "use_as_is"))
                    hold_c.add(lot_id, reasons["H2"], "bench", "yield", "released",
                               step_code, "qa", _ts(placed), "qa2", _ts(released), disp,
                               5 if disp == "scrap" else None,
                               reasons["S1"] if disp == "scrap" else None, "{}")
            # Completed lots ship at noon the next day, a customer's in about twelve
            # shipments a day.
            ship_at = (t // 86400 + 1) * 86400 + 12 * 3600
            if state == "completed" and ship_at < t_now:
                state = "shipped"
                key = (cust, int(ship_at), int(t // 3600) % 12)
                if key not in shipments:
                    ship_id += 1
                    shipments[key] = ship_id
                    ship_c.add(ship_id, cust, f"PO{ship_id}", _ts(ship_at), "planner")
                sl_c.add(shipments[key], lot_id, qty)
                last = max(last, ship_at)
            due = datetime.fromtimestamp(created + 10 * 86400, UTC).date().isoformat()
            lot_c.add(lot_id, f"X{lot_id:07d}", pid, cust, route_id, seq, step_code, state, qty,
                      0, f"F{lot_id // 25}", 3, due, holds, eq_now, cur_run, _ts(arrived),
                      _ts(created), _ts(last), 1, 0, "0" * 64, "f")
            if lot_id % 20_000 == 0:
                # Lots first: the other tables refer to them.
                lot_c.flush()
                for c in (run_c, ev_c, rej_c, hold_c, test_c, ship_c, sl_c):
                    c.flush()
        lot_c.flush()
        for c in (run_c, ev_c, rej_c, hold_c, test_c, ship_c, sl_c):
            c.flush()
        esc = Copier(conn, "equipment_state_change", "equipment_id, from_state, to_state, at, "
                     "by, comment")
        states = ("productive", "productive", "productive", "standby", "engineering",
                  "scheduled_down", "unscheduled_down", "non_scheduled")
        for tool_list in tools.values():
            for tool in tool_list:
                t, prev = t_now - span, None
                while t < t_now:
                    st = rng.choice(states)
                    esc.add(tool, prev, st, _ts(t), "eng", "")
                    prev = st
                    t += rng.expovariate(1 / (6 * 3600))
        esc.flush()
        for table in ("lot", "step_run", "shipment"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        conn.commit()
        counts = {"lots": lot_c.total, "step runs": run_c.total, "history events": ev_c.total,
                  "rejects": rej_c.total, "holds": hold_c.total, "test runs": test_c.total,
                  "shipments": ship_c.total, "shipped lots": sl_c.total,
                  "E10 changes": esc.total}
    vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()
    return counts


API = ["wip", "wip/late", "yield", "yield/trend", "rejects", "cycle-time", "cycle-time/lots",
       "holds", "holds/dispositions", "equipment", "delivery"]
PAGES = ["wip", "yield", "rejects", "cycle-time", "holds", "equipment", "delivery"]


def measure(port: int, token: str, path: str, samples: int) -> tuple[float, float, int]:
    c = Client(port, {"Authorization": f"Bearer {token}"})
    times, status = [], 0
    for i in range(samples + 1):
        status, _body, lat = c.call("GET", path)
        if i:  # the first call of each warms the worker's statement cache
            times.append(lat * 1000)
    times.sort()
    return times[len(times) // 2], times[-1], status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    workers = 2 * multiprocessing.cpu_count() + 1
    now = datetime.now(UTC)
    to = now.date()
    rng = f"from={(to - timedelta(days=29)).isoformat()}&to={to.isoformat()}"
    with fresh_pg_database() as url:
        tokens = setup(url)
        t0 = time.time()
        counts = fill(url, args.lots, now)
        print(f"filled in {time.time() - t0:.0f} s: " +
              ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp()}
        print(f"server: gunicorn, {workers} workers; range {rng}; p50 and max of "
              f"{args.samples} calls after one warm-up call, milliseconds")
        with gunicorn("mes:create_app()", env, workers) as port:
            for who in ("admin", "customer"):
                for name in API:
                    for fmt in ("", "&format=csv"):
                        path = f"/api/v1/reports/{name}?{rng}{fmt}"
                        p50, worst, status = measure(port, tokens[who], path, args.samples)
                        print(f"{who:8s} GET /api/v1/reports/{name + (' csv' if fmt else ''):22s}"
                              f" p50 {p50:7.1f}  max {worst:7.1f}  status {status}")
            pages = page_client(port, "adm", "Bench-pass-123")
            for name in PAGES:
                times = []
                for i in range(args.samples + 1):
                    status, _b, lat = pages.call("GET", f"/reports/{name}?{rng}")
                    if i:
                        times.append(lat * 1000)
                times.sort()
                print(f"admin    page /reports/{name:26s} p50 {times[len(times) // 2]:7.1f}  "
                      f"max {times[-1]:7.1f}  status {status}")


if __name__ == "__main__":
    main()
