"""Page benchmark: every page type of the web application on a plant of 1,000,000 lots and
about 6 million history events (PostgreSQL, production server, loopback only).

The plant, built with set-based SQL (generate_series and INSERT ... SELECT, a few minutes):
a year of 20,000 fab lots, one every 26 minutes, each received as 2 wafer lots that split
into 5 assembly lots each, which split into 5 test lots each (50 lots per fab lot, as in
bench/trace.py), over a 4-step route (DA, WB, FT, PACK) with a queue of 1 to 24 hours and
a process of 20 to 140 minutes at each step. From that timeline and the clock: step runs
(finished, or running now), track-in/out history events, rejects at 30 % of the runs, a
test run per final test, wire consumed at wire bond, 25 wafers per fab lot, splits and a
merge into the next fab lot, shipments of 4 or 5 lots (12 per fab lot, 5 days after its
start; a shipment waits for all its lots) to 20 customers, E10 state changes of 100 tools
(about four a day each), open holds on 5 % of the lots in WIP and on 0.5 % of the last
lots of each fab lot (held at PACK, for up to a year), released holds on 1 % of all lots.
One portal user per customer.

Measured through gunicorn (`mes serve`'s settings: 2 x cores + 1 threaded workers), logged-in
browser sessions (admin for the plant pages, an operator at the station, a customer user
for the portal), random lots and shipments:
1. one client: each page type in turn, p50/p95 (target p95 < 150 ms; report pages over
   30 days < 1 s);
2. 8 clients at once on each page type in turn, p50/p95 (target p95 < 500 ms).

Run: .venv/bin/python bench/pages.py [--lots 1000000] [--samples 60] [--seconds 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.common import (  # noqa: E402
    LoadResult,
    fresh_pg_database,
    gunicorn,
    page_client,
    run_load,
)

PER_FAB = 50
STEPS = (("DA", "assembly", "bonder"), ("WB", "assembly", "wirebonder"),
         ("FT", "test", "tester"), ("PACK", "pack", "taper"))
CUSTOMERS = 20
PRODUCTS = 50
TOOLS_PER_KIND = 25
MATERIAL_LOTS = 200
HOLD_CODES = ("H-ENG", "H-YLD", "H-CUST", "H-MAT")
REJECT_CODES = [f"R{i:02d}" for i in range(10)]
PASSWORD = "Bench-pass-123"
CLIENTS = 8
BULK_TABLES = ("lot", "step_run", "lot_reject", "test_run", "material_use", "lot_edge", "wafer",
               "lot_wafer", "shipment", "shipment_lot", "hold", "lot_event",
               "equipment_state_change")


def setup(url: str) -> None:
    """Schema from the migrations; master data and users through the services."""
    from mes import create_app, migrate
    from mes.auth import services as auth
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": tempfile.mkdtemp(),
                      "SECRET_KEY": "bench-" * 6})
    with get_db(app).engine.begin() as conn:
        migrate.upgrade(conn)
    with app.app_context(), session_scope(app) as s:
        cat.create_route(s, "bench", {"code": "QFN", "name": "QFN assembly and test", "steps": [
            {"code": code, "name": code, "kind": kind, "equipment_kind": eq,
             "min_yield": None, "materials": ["wire"] if code == "WB" else []}
            for code, kind, eq in STEPS]})
        for c in range(CUSTOMERS):
            cat.create_customer(s, "bench", {"code": f"C{c:02d}", "name": f"Customer {c}",
                                             "automotive": False})
        for p in range(PRODUCTS):
            cat.create_product(s, "bench", {"code": f"P{p:02d}", "name": f"Product {p}",
                                            "package": "QFN", "route": "QFN",
                                            "aec_grade": None, "msl": "1",
                                            "customer": f"C{p % CUSTOMERS:02d}"})
        for _code, _kind, eq in STEPS:
            for t in range(TOOLS_PER_KIND):
                cat.create_equipment(s, "bench", {"code": f"{eq}-{t:02d}", "kind": eq,
                                                  "name": "", "state": "productive"})
        for code in REJECT_CODES:
            cat.create_reason_code(s, "bench", {"code": code, "kind": "reject",
                                                "description": f"Reject {code}"})
        for code in HOLD_CODES:
            cat.create_reason_code(s, "bench", {"code": code, "kind": "hold",
                                                "description": f"Hold {code}"})
        cat.create_reason_code(s, "bench", {"code": "S-SCRAP", "kind": "scrap",
                                            "description": "Scrapped on disposition"})
        for m in range(MATERIAL_LOTS):
            cat.create_material_lot(s, "bench", {"code": f"AU{m:03d}", "material": "wire",
                                                 "description": "", "expires_at": None})
        auth.create_user(s, "bench", username="adm", role="admin", password=PASSWORD)
        auth.create_user(s, "bench", username="op", role="operator", password=PASSWORD)
        for c in range(CUSTOMERS):
            auth.create_user(s, "bench", username=f"cust{c:02d}", role="customer",
                             password=PASSWORD, customer=f"C{c:02d}")
    get_db(app).engine.dispose()


def _ids(conn: Any, sql: str) -> list[Any]:
    return [row[0] for row in conn.execute(sql)]


# The plant as set-based SQL. p_lot: one row per lot with its fab lot (f), its place in the
# fab lot's tree (k), the step it starts at (first: 0 for the wafer lots, 1 for assembly
# lots, 2 for test lots) and whether it is held in finished goods (stuck: it waits at PACK
# with an open hold since it arrived there). p_run: every step the lot's timeline plans
# with its arrival, start and finish; only those started by now become step runs.
PLAN = """
CREATE TEMP TABLE p_lot AS
SELECT f, k, id, first, fab_at, stuck,
       fab_at + first * interval '6 hours' + (k %% 5) * interval '1 minute' AS created
FROM (SELECT f, k, (f * 50 + k + 1)::bigint AS id,
             CASE WHEN k %% 25 = 0 THEN 0 WHEN k %% 5 = 0 THEN 1 ELSE 2 END AS first,
             %(start)s::timestamptz + f * %(gap)s::interval AS fab_at,
             k BETWEEN 40 AND 48 AND abs(hashint8(f * 50 + k + 3)) %% 200 = 0 AS stuck
      FROM generate_series(0, %(fabs)s - 1) AS f, generate_series(0, 49) AS k) AS g;

CREATE TEMP TABLE p_run AS
SELECT lot_id, f, k, step, arrived, arrived + q * interval '1 minute' AS started,
       arrived + (q + pt) * interval '1 minute' AS finished
FROM (SELECT l.id AS lot_id, l.f, l.k, s.step, d.q, d.pt,
             l.created + (sum(d.q + d.pt) OVER w - d.q - d.pt) * interval '1 minute'
                 AS arrived
      FROM p_lot l
      CROSS JOIN LATERAL generate_series(
          l.first, CASE WHEN l.k = 49 OR l.stuck THEN 2 ELSE 3 END) AS s(step)
      CROSS JOIN LATERAL (SELECT 60 + abs(hashint8(l.id * 8 + s.step)) %% 1380 AS q,
                                 20 + abs(hashint8(l.id * 8 + s.step + 4)) %% 120 AS pt) d
      WINDOW w AS (PARTITION BY l.id ORDER BY s.step)) AS t;
DELETE FROM p_run WHERE started > %(now)s;
ALTER TABLE p_run ADD COLUMN id bigint;
UPDATE p_run r SET id = n.id
FROM (SELECT lot_id, step, row_number() OVER (ORDER BY lot_id, step) AS id FROM p_run) n
WHERE n.lot_id = r.lot_id AND n.step = r.step;
ALTER TABLE p_run ADD COLUMN tool int, ADD COLUMN rej int;
UPDATE p_run SET tool = (%(tools)s::int[])[step * %(per_kind)s
                                           + abs(hashint8(lot_id + step)) %% %(per_kind)s + 1],
                 rej = CASE WHEN finished <= %(now)s AND abs(hashint8(id)) %% 10 < 3
                            THEN 1 + abs(hashint8(id + 1)) %% 30 END;
CREATE INDEX ON p_run (lot_id, step);
ANALYZE p_run;

-- Where each lot is now: running at the step of its unfinished run; else queued at the
-- step after its last finished run (or its first step); past its last planned step it was
-- merged (k = 49), waits at PACK on hold (stuck), was shipped (its shipment's time has
-- come) or is completed.
CREATE TEMP TABLE p_agg AS
SELECT lot_id, max(step) FILTER (WHERE finished <= %(now)s) AS last_step,
       max(finished) FILTER (WHERE finished <= %(now)s) AS last_finished,
       max(step) FILTER (WHERE finished > %(now)s) AS run_step,
       max(arrived) FILTER (WHERE finished > %(now)s) AS run_arrived,
       max(id) FILTER (WHERE finished > %(now)s) AS run_id,
       max(tool) FILTER (WHERE finished > %(now)s) AS run_tool
FROM p_run GROUP BY lot_id;
CREATE TEMP TABLE p_state AS
SELECT l.*, a.last_finished, a.run_id, a.run_tool,
       CASE WHEN l.k < 49 THEN l.fab_at + interval '5 days' + l.grp * interval '1 hour'
       END AS ship_at,
       CASE WHEN a.run_step IS NOT NULL THEN 'running'
            WHEN coalesce(a.last_step, -1) < l.planned_last OR l.stuck THEN 'queued'
            WHEN l.k = 49 THEN 'merged'
            WHEN l.k < 49 AND l.fab_at + interval '5 days' + l.grp * interval '1 hour'
                 <= %(now)s THEN 'shipped'
            ELSE 'completed' END AS state,
       1 + CASE WHEN a.run_step IS NOT NULL THEN a.run_step
                WHEN a.last_step IS NULL THEN l.first
                WHEN l.k = 49 THEN a.last_step
                ELSE least(a.last_step + 1, 3) END AS seq,
       coalesce(a.run_arrived, a.last_finished, l.created) AS at
FROM (SELECT *, CASE WHEN k = 49 OR stuck THEN 2 ELSE 3 END AS planned_last,
             least(k / 4, 11) AS grp FROM p_lot) l
LEFT JOIN p_agg a ON a.lot_id = l.id;
-- Open holds: 5 %% of the lots in WIP, and every lot held in finished goods.
ALTER TABLE p_state ADD COLUMN held boolean;
UPDATE p_state SET held = (state IN ('queued', 'running')
                           AND (stuck OR abs(hashint8(id + 11)) %% 20 = 0));
"""

FILL = """
INSERT INTO lot (id, lot_no, product_id, customer_id, route_id, step_seq, step_code, state,
                 quantity, wafer_count, fab_lot, priority, due_date, open_holds, equipment_id,
                 run_id, arrived_at, created_at, updated_at, version, audit_seq, audit_hash,
                 in_genealogy)
SELECT id, 'L' || lpad(f::text, 5, '0') || '-' || lpad(k::text, 2, '0'),
       (%(products)s::int[])[f %% %(n_products)s + 1],
       (%(customers)s::int[])[f %% %(n_products)s + 1], %(route)s, seq,
       (%(steps)s::text[])[seq], state, CASE WHEN state = 'merged' THEN 0 ELSE 1000 END,
       CASE k WHEN 0 THEN 13 WHEN 25 THEN 12 ELSE 0 END, 'F' || lpad(f::text, 5, '0'),
       1 + abs(hashint8(id + 7)) %% 5, (created + interval '4 days')::date,
       CASE WHEN held THEN 1 ELSE 0 END,
       CASE WHEN state = 'running' THEN run_tool END,
       CASE WHEN state = 'running' THEN run_id END,
       at, created,
       CASE WHEN state = 'shipped' THEN ship_at ELSE greatest(at, created) END,
       1, 0, repeat('0', 64), true
FROM p_state ORDER BY id;

INSERT INTO step_run (id, lot_id, route_id, step_seq, step_code, equipment_id, operator,
                      arrived_at, started_at, finished_at, qty_in, good_qty, reject_qty,
                      finished_by)
SELECT id, lot_id, %(route)s, step + 1, (%(steps)s::text[])[step + 1], tool,
       'op' || lpad((lot_id %% 40)::text, 2, '0'), arrived, started,
       CASE WHEN finished <= %(now)s THEN finished END, 1000,
       CASE WHEN finished <= %(now)s THEN 1000 - coalesce(rej, 0) END,
       CASE WHEN finished <= %(now)s THEN coalesce(rej, 0) END,
       CASE WHEN finished <= %(now)s THEN 'op' || lpad(((lot_id + 1) %% 40)::text, 2, '0') END
FROM p_run ORDER BY id;

INSERT INTO lot_reject (run_id, lot_id, step_code, reason_id, qty, at)
SELECT id, lot_id, (%(steps)s::text[])[step + 1],
       (%(rejects)s::int[])[abs(hashint8(id + 2)) %% %(n_rejects)s + 1], rej, finished
FROM p_run WHERE rej IS NOT NULL ORDER BY finished;

INSERT INTO test_run (lot_id, product_id, customer_id, step_code, source, parts_tested, units,
                      retests, first_pass_good, final_good, first_pass_yield, final_yield,
                      hard_bins, soft_bins, final_bins, failing_bins, warnings, pat, sba,
                      created_at, created_by)
SELECT r.lot_id, (%(products)s::int[])[r.f %% %(n_products)s + 1],
       (SELECT customer_id FROM lot WHERE lot.id = r.lot_id), 'FT', 'bins', 1000, 1000,
       fp.retest, fp.first, 1000 - coalesce(r.rej, 0), fp.first / 10.0,
       (1000 - coalesce(r.rej, 0)) / 10.0,
       json_build_object('1', fp.first, '5', 1000 - fp.first),
       json_build_object('1', fp.first, '5', 1000 - fp.first),
       json_build_object('1', 1000 - coalesce(r.rej, 0), '5', coalesce(r.rej, 0)),
       '[5]', '[]', '{}', '{}', r.finished, 'tester'
FROM p_run r
CROSS JOIN LATERAL (SELECT 1000 - coalesce(r.rej, 0) - abs(hashint8(r.id + 5)) %% 20 AS first,
                           abs(hashint8(r.id + 5)) %% 20 AS retest) fp
WHERE r.step = 2 AND r.finished <= %(now)s ORDER BY r.finished;

INSERT INTO material_use (run_id, lot_id, material_lot_id, step_code, at)
SELECT id, lot_id, (%(materials)s::int[])[f %% %(n_materials)s + 1], 'WB', started
FROM p_run WHERE step = 1 ORDER BY id;

INSERT INTO lot_edge (parent_id, child_id, kind, qty, step_code, at, by)
SELECT f * 50 + (CASE WHEN first = 1 THEN (k / 25) * 25 ELSE (k / 5) * 5 END) + 1, id,
       'split', 200, (%(steps)s::text[])[first + 1], created, 'op'
FROM p_lot WHERE first > 0
UNION ALL
SELECT s.id, s.id + %(per_fab)s - 1, 'merge', 1000, 'FT', s.last_finished, 'op'
FROM p_state s WHERE s.state = 'merged' AND s.f + 1 < %(fabs)s;

INSERT INTO wafer (id, fab_lot, wafer_id, die_qty, received_lot_id)
SELECT f * 25 + w, 'F' || lpad(f::text, 5, '0'), 'W' || lpad(w::text, 2, '0'), 1200,
       f * 50 + CASE WHEN w <= 13 THEN 0 ELSE 25 END + 1
FROM generate_series(0, %(fabs)s - 1) f, generate_series(1, 25) w;
INSERT INTO lot_wafer (lot_id, wafer_pk) SELECT received_lot_id, id FROM wafer;

INSERT INTO shipment (id, customer_id, po, vehicle_program, shipped_at, shipped_by)
SELECT f * 12 + grp + 1, (%(customers)s::int[])[f %% %(n_products)s + 1],
       'PO-' || lpad(f::text, 5, '0') || '-' || grp, NULL, ship_at, 'planner'
FROM p_state WHERE k < 48 AND k %% 4 = 0 AND ship_at <= %(now)s
  AND NOT EXISTS (SELECT 1 FROM p_state o WHERE o.f = p_state.f AND o.grp = p_state.grp
                  AND o.k < 49 AND o.state <> 'shipped');
INSERT INTO shipment_lot (shipment_id, lot_id, quantity)
SELECT s.f * 12 + s.grp + 1, s.id, 1000 FROM p_state s
JOIN shipment sh ON sh.id = s.f * 12 + s.grp + 1
WHERE s.k < 49;
UPDATE lot SET state = 'completed', updated_at = arrived_at
WHERE state = 'shipped' AND NOT EXISTS (SELECT 1 FROM shipment_lot sl WHERE sl.lot_id = lot.id);

-- Holds: the open ones of lots on hold now; released ones on 1 %% of the lots, placed when
-- one of their runs finished and released 1 to 72 hours later.
INSERT INTO hold (lot_id, reason_id, comment, source, status, step_code, placed_by,
                  placed_at, data)
SELECT id, (%(holds)s::int[])[abs(hashint8(id + 13)) %% %(n_holds)s + 1],
       'Held for review', CASE WHEN stuck THEN 'manual' ELSE
           (ARRAY['manual', 'yield', 'mass', 'manual'])[abs(hashint8(id + 17)) %% 4 + 1] END,
       'open', (%(steps)s::text[])[seq], 'qa',
       CASE WHEN stuck THEN at ELSE at + (%(now)s - at) / 2 END, '{}'
FROM p_state WHERE held ORDER BY id;
INSERT INTO hold (lot_id, reason_id, comment, source, status, step_code, placed_by,
                  placed_at, released_by, released_at, disposition, release_comment,
                  rework_step, scrap_qty, scrap_reason_id, data)
SELECT r.lot_id, (%(holds)s::int[])[abs(hashint8(r.id + 13)) %% %(n_holds)s + 1],
       'Held for review', 'yield', 'released', (%(steps)s::text[])[r.step + 1], 'qa',
       r.finished, 'qa2', r.finished + h.hours * interval '1 hour', h.disp, 'Reviewed',
       CASE WHEN h.disp = 'rework' THEN (%(steps)s::text[])[r.step + 1] END,
       CASE WHEN h.disp = 'scrap' THEN 5 END,
       CASE WHEN h.disp = 'scrap' THEN %(scrap)s END, '{}'
FROM p_run r
CROSS JOIN LATERAL (SELECT 1 + abs(hashint8(r.id + 19)) %% 72 AS hours,
                           (ARRAY['release', 'rework', 'scrap', 'use_as_is'])
                               [abs(hashint8(r.id + 23)) %% 4 + 1] AS disp) h
WHERE abs(hashint8(r.lot_id + 29)) %% 100 = 0 AND r.step = 2
  AND r.finished + h.hours * interval '1 hour' <= %(now)s ORDER BY r.finished;

-- History, in time order within each lot (the lot page reads it by (lot_id, id)).
INSERT INTO lot_event (lot_id, kind, at, by, step_code, equipment, qty_in, qty_out, data)
SELECT lot_id, kind, at, by, step_code, equipment, qty_in, qty_out, data::json FROM (
    SELECT id AS lot_id, CASE WHEN first = 0 THEN 'receive' ELSE 'split_from' END AS kind,
           created AS at, 'op' AS by, (%(steps)s::text[])[first + 1] AS step_code,
           NULL AS equipment, NULL::int AS qty_in, 1000 AS qty_out, '{}' AS data, 0 AS o
    FROM p_lot
    UNION ALL
    SELECT r.lot_id, 'track_in', r.started, 'op', (%(steps)s::text[])[r.step + 1], e.code,
           1000, NULL, '{}', 1
    FROM p_run r JOIN equipment e ON e.id = r.tool
    UNION ALL
    SELECT r.lot_id, 'track_out', r.finished, 'op', (%(steps)s::text[])[r.step + 1], e.code,
           1000, 1000 - coalesce(r.rej, 0), '{}', 2
    FROM p_run r JOIN equipment e ON e.id = r.tool WHERE r.finished <= %(now)s
    UNION ALL
    SELECT h.lot_id, 'hold', h.placed_at, h.placed_by, h.step_code, NULL, NULL, NULL,
           json_build_object('hold', h.id)::text, 3
    FROM hold h
    UNION ALL
    SELECT h.lot_id, 'release', h.released_at, h.released_by, h.step_code, NULL, NULL, NULL,
           json_build_object('hold', h.id, 'disposition', h.disposition)::text, 4
    FROM hold h WHERE h.status = 'released'
    UNION ALL
    SELECT l.id, 'ship', l.updated_at, 'planner', 'PACK', NULL, 1000, 1000,
           json_build_object('shipment', sl.shipment_id)::text, 5
    FROM lot l JOIN shipment_lot sl ON sl.lot_id = l.id
) AS e ORDER BY lot_id, at, o;

-- E10 states of every tool, a change every 6 hours on average over the year.
INSERT INTO equipment_state_change (equipment_id, from_state, to_state, at, by, comment)
SELECT equipment_id, lag(to_state) OVER (PARTITION BY equipment_id ORDER BY at), to_state,
       at, 'eng', ''
FROM (SELECT e.id AS equipment_id,
             %(start)s::timestamptz + n * interval '6 hours'
                 + abs(hashint8(e.id * 10000 + n)) %% 300 * interval '1 minute' AS at,
             (ARRAY['productive', 'productive', 'productive', 'standby', 'engineering',
                    'scheduled_down', 'unscheduled_down', 'non_scheduled'])
                 [abs(hashint8(e.id * 10000 + n + 1)) %% 8 + 1] AS to_state
      FROM equipment e, generate_series(0, 365 * 4 - 1) n) AS c
WHERE at <= %(now)s;
"""


def fill(url: str, lots: int, now: datetime) -> dict[str, int]:
    """The plant's year, set-based, in one transaction; then VACUUM ANALYZE."""
    import psycopg

    fabs = max(2, lots // PER_FAB)
    span = timedelta(days=365)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("SET work_mem = '256MB'")
        ids = {
            "route": conn.execute("SELECT id FROM route").fetchone()[0],
            "products": _ids(conn, "SELECT id FROM product ORDER BY code"),
            "customers": _ids(conn, "SELECT customer_id FROM product ORDER BY code"),
            "tools": _ids(conn, "SELECT id FROM equipment ORDER BY "
                                "array_position(ARRAY['bonder', 'wirebonder', 'tester', "
                                "'taper']::text[], kind::text), code"),
            "rejects": _ids(conn, "SELECT id FROM reason_code WHERE kind = 'reject' "
                                  "ORDER BY code"),
            "holds": _ids(conn, "SELECT id FROM reason_code WHERE kind = 'hold' ORDER BY code"),
            "scrap": conn.execute("SELECT id FROM reason_code WHERE kind = 'scrap'"
                                  ).fetchone()[0],
            "materials": _ids(conn, "SELECT id FROM material_lot ORDER BY code"),
        }
        params = {**ids, "now": now, "start": now - span,
                  # The last fab lot starts 13 hours ago, so that its test lots exist.
                  "gap": (span - timedelta(hours=13)) / fabs, "fabs": fabs,
                  "per_kind": TOOLS_PER_KIND, "per_fab": PER_FAB,
                  "steps": [code for code, _k, _e in STEPS],
                  "n_products": len(ids["products"]), "n_rejects": len(ids["rejects"]),
                  "n_holds": len(ids["holds"]), "n_materials": len(ids["materials"])}
        for sql in PLAN.split(";\n"):
            if sql.strip():
                conn.execute(sql, params)
        # Bulk-load as a restore does: the secondary indexes are built after the rows
        # (from the migrations' own definitions), and the rows, consistent by construction,
        # skip the foreign-key triggers.
        indexes = [row[0] for row in conn.execute(
            "SELECT indexdef FROM pg_indexes i WHERE schemaname = 'public' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) "
            "AND tablename = ANY(%(tables)s)", {"tables": list(BULK_TABLES)})]
        for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes i WHERE schemaname = 'public' AND NOT EXISTS"
                " (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) "
                "AND tablename = ANY(%(tables)s)", {"tables": list(BULK_TABLES)}).fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("SET session_replication_role = replica")
        for sql in FILL.split(";\n"):
            if sql.strip():
                conn.execute(sql, params)
        conn.execute("SET session_replication_role = DEFAULT")
        # The triggers that keep lot_closed_total did not fire in replica mode: count it.
        conn.execute("DELETE FROM lot_closed_total")
        conn.execute(
            "INSERT INTO lot_closed_total (state, step_code, product_id, customer_id, held, "
            "lots, quantity) SELECT state, step_code, product_id, customer_id, open_holds > 0, "
            "count(*), sum(quantity) FROM lot WHERE state IN ('completed', 'shipped', "
            "'scrapped', 'merged') GROUP BY state, step_code, product_id, customer_id, "
            "open_holds > 0")
        conn.execute("SET maintenance_work_mem = '256MB'")
        for sql in indexes:
            conn.execute(sql)
        for table in BULK_TABLES:
            if table in ("lot_wafer", "shipment_lot"):
                continue
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"(SELECT max(id) FROM {table}))")
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("lot", "lot_event", "step_run", "lot_reject", "test_run",
                                "hold", "shipment", "shipment_lot", "lot_edge",
                                "equipment_state_change")}
        counts["open holds"] = conn.execute(
            "SELECT count(*) FROM hold WHERE status = 'open'").fetchone()[0]
        counts["lots in WIP"] = conn.execute(
            "SELECT count(*) FROM lot WHERE state IN ('queued', 'running')").fetchone()[0]
        conn.commit()
    vacuum = create_engine(url, isolation_level="AUTOCOMMIT")
    with vacuum.connect() as c:
        c.execute(text("VACUUM ANALYZE"))
    vacuum.dispose()
    return counts


# --- measuring ---------------------------------------------------------------------------

@dataclass
class Samples:
    """What the pages are asked about: random lots and shipments of the plant and of each
    portal customer."""

    lots: list[str]
    wip_lots: list[str]
    shipments: list[int]
    customer_lots: dict[int, list[str]]
    customer_shipments: dict[int, list[int]]


def samples(url: str, rng: random.Random) -> Samples:
    engine = create_engine(url)
    with engine.connect() as conn:
        def pick(sql: str, n: int = 400) -> list[Any]:
            return [r[0] for r in conn.execute(text(
                f"SELECT * FROM ({sql}) AS s ORDER BY random() LIMIT {n}"))]
        conn.execute(text(f"SELECT setseed({rng.random()})"))
        lots = pick("SELECT lot_no FROM lot")
        wip = pick("SELECT lot_no FROM lot WHERE state IN ('queued', 'running')")
        ships = pick("SELECT id FROM shipment")
        c_lots, c_ships = {}, {}
        for c in range(CUSTOMERS):
            code = f"C{c:02d}"
            c_lots[c] = pick("SELECT lot_no FROM lot JOIN customer ON customer.id = "
                             f"lot.customer_id WHERE customer.code = '{code}'", 50)
            c_ships[c] = pick("SELECT shipment.id FROM shipment JOIN customer ON customer.id"
                              f" = shipment.customer_id WHERE customer.code = '{code}'", 50)
    engine.dispose()
    return Samples(lots, wip, ships, c_lots, c_ships)


@dataclass
class Page:
    name: str
    who: str  # "admin", "operator" or "customer"
    path: Callable[[random.Random, Samples, int], str]
    report: bool = False


def pages(range_args: str) -> list[Page]:
    def fixed(path: str) -> Callable[[random.Random, Samples, int], str]:
        return lambda _rng, _s, _c: path

    def report(name: str) -> Page:
        return Page(f"report {name} (30 days)", "admin", fixed(f"/reports/{name}?{range_args}"),
                    report=True)

    return [
        Page("lot page", "admin", lambda r, s, _c: f"/lots/{r.choice(s.lots)}"),
        Page("lot page, lot in WIP", "admin", lambda r, s, _c: f"/lots/{r.choice(s.wip_lots)}"),
        Page("station, lot scanned", "operator",
             lambda r, s, _c: f"/station?lot={r.choice(s.wip_lots)}"),
        Page("WIP board", "admin", fixed("/wip")),
        Page("WIP board, on hold", "admin", fixed("/wip?on_hold=true")),
        Page("WIP board, one step", "admin", lambda r, _s, _c: "/wip?step="
             + r.choice([code for code, _k, _e in STEPS])),
        Page("holds queue", "admin", fixed("/holds/queue")),
        Page("trace, lot", "admin", lambda r, s, _c: f"/trace/lots/{r.choice(s.lots)}"),
        Page("trace, shipment", "admin",
             lambda r, s, _c: f"/trace/shipments/{r.choice(s.shipments)}"),
        Page("shipments list", "admin", fixed("/shipments")),
        Page("shipment", "admin", lambda r, s, _c: f"/shipments/{r.choice(s.shipments)}"),
        Page("reports index", "admin", fixed("/reports")),
        *[report(name) for name in ("wip", "yield", "rejects", "cycle-time", "holds",
                                    "equipment", "delivery")],
        Page("portal: lots (WIP)", "customer", fixed("/portal/")),
        Page("portal: holds", "customer", fixed("/portal/holds")),
        Page("portal: shipments", "customer", fixed("/portal/shipments")),
        Page("portal: shipment", "customer",
             lambda r, s, c: f"/portal/shipments/{r.choice(s.customer_shipments[c])}"),
        Page("portal: CoC", "customer",
             lambda r, s, c: f"/portal/shipments/{r.choice(s.customer_shipments[c])}/coc"),
        Page("portal: labels", "customer",
             lambda r, s, c: f"/portal/shipments/{r.choice(s.customer_shipments[c])}/labels"),
        Page("portal: yields", "customer", fixed("/portal/yields")),
        Page("portal: a lot's trace", "customer",
             lambda r, s, c: f"/trace/lots/{r.choice(s.customer_lots[c])}"),
    ]


class Browser:
    """One person at a browser: a logged-in session per role it plays (client number i
    plays the portal user of customer i)."""

    def __init__(self, port: int, i: int) -> None:
        self.customer = i % CUSTOMERS
        self.sessions = {"admin": page_client(port, "adm", PASSWORD),
                         "operator": page_client(port, "op", PASSWORD),
                         "customer": page_client(port, f"cust{self.customer:02d}", PASSWORD)}

    def get(self, page: Page, rng: random.Random, s: Samples) -> tuple[int, float]:
        status, _body, seconds = self.sessions[page.who].call(
            "GET", page.path(rng, s, self.customer))
        return status, seconds


def one_client(browser: Browser, page: Page, s: Samples, n: int, rng: random.Random
               ) -> LoadResult:
    for _ in range(3):  # warm-up: every worker's statement cache, the page's first reads
        browser.get(page, rng, s)
    result = LoadResult()
    t0 = time.perf_counter()
    for _ in range(n):
        status, seconds = browser.get(page, rng, s)
        result.requests += 1
        result.latencies.append(seconds)
        result.statuses[status] = result.statuses.get(status, 0) + 1
    result.seconds = time.perf_counter() - t0
    return result


def many_clients(browsers: list[Browser], page: Page, s: Samples, seconds: float,
                 seed: int) -> LoadResult:
    def worker(i: int) -> Callable[..., None]:
        rng = random.Random(seed * 100 + i)

        def work(report: Callable[[int, float], None], running: Callable[[], bool]) -> None:
            while running():
                report(*browsers[i].get(page, rng, s))
        return work
    return run_load([worker(i) for i in range(len(browsers))], seconds)


def load() -> str:
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=60,
                        help="requests per page type with one client (reports: a third)")
    parser.add_argument("--seconds", type=float, default=8,
                        help="seconds of 8 clients per page type")
    parser.add_argument("--only", default="", help="measure only page types whose name "
                        "contains this text")
    parser.add_argument("--keep", action="store_true",
                        help="keep the filled database (its URL is printed)")
    parser.add_argument("--database", help="measure this database, filled by an earlier "
                        "run with --keep, instead of building a new one")
    parser.add_argument("--range", help="the report range of that run (it prints it)")
    args = parser.parse_args()
    workers = 2 * multiprocessing.cpu_count() + 1
    now = datetime.now(UTC)
    to = now.date()
    range_args = f"from={(to - timedelta(days=29)).isoformat()}&to={to.isoformat()}"
    with (nullcontext(args.database) if args.database
          else fresh_pg_database(keep=args.keep)) as url:
        if args.database:
            # Reports and pages read relative to the clock: the range of the fill's day.
            range_args = args.range or range_args
        else:
            setup(url)
            t0 = time.time()
            counts = fill(url, args.lots, now)
            print(f"filled in {time.time() - t0:.0f} s: "
                  + ", ".join(f"{v:,} {k}" for k, v in counts.items()), flush=True)
            if args.keep:
                print(f"kept: --database {url} --range '{range_args}'")
        rng = random.Random(7)
        s = samples(url, rng)
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp()}
        chosen = [p for p in pages(range_args) if args.only in p.name]
        with gunicorn("mes:create_app()", env, workers) as port:
            browsers = [Browser(port, i) for i in range(CLIENTS)]
            print(f"server: gunicorn, {workers} threaded workers, loopback; reports over "
                  f"{range_args}; {load()}", flush=True)
            print(f"\n1. one client, {args.samples} requests per page type "
                  f"({max(10, args.samples // 3)} per report page), after 3 warm-up requests",
                  flush=True)
            single: dict[str, LoadResult] = {}
            for page in chosen:
                n = max(10, args.samples // 3) if page.report else args.samples
                r = single[page.name] = one_client(browsers[0], page, s, n, rng)
                target = 1000 if page.report else 150
                print(f"  {page.name:30s} p50 {r.pct(50):7.1f} ms  p95 {r.pct(95):7.1f} ms  "
                      f"(target {target}: {'met' if r.pct(95) < target else 'MISSED'})  "
                      f"statuses {r.statuses}", flush=True)
            print(f"\n2. {CLIENTS} clients at once, {args.seconds:.0f} s per page type; {load()}",
                  flush=True)
            for seed, page in enumerate(chosen):
                r = many_clients(browsers, page, s, args.seconds, seed)
                print(f"  {page.name:30s} p50 {r.pct(50):7.1f} ms  p95 {r.pct(95):7.1f} ms  "
                      f"{r.rate:6.1f} req/s  (target 500: "
                      f"{'met' if r.pct(95) < 500 else 'MISSED'})  statuses {r.statuses}",
                      flush=True)
            print(f"\nafter the run: {load()}")


if __name__ == "__main__":
    main()
