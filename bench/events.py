"""Event latency: from the commit of a change to a local webhook receiver, with `mes worker`
running (a real process polling every WORKER_POLL_MS) and the application committing events
one at a time at a steady pace. Prints the latency percentiles (target: p95 under 1 s).

Run: .venv/bin/python bench/events.py [--events 200] [--interval-ms 50] [--db sqlite|pg]
     [--poll-ms 250]
(--db pg uses MES_BENCH_DATABASE_URL's server, a fresh database dropped afterwards.)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_pg_database  # noqa: E402

SECRET_KEY = "bench-secret-key-of-32-bytes-or-longer"


@contextmanager
def receiver(arrived: dict[int, float]) -> Iterator[str]:
    """A receiver on loopback noting when each event (by its data's `n`) arrived."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  # http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            now = time.time()
            with lock:
                arrived.setdefault(json.loads(body)["data"]["n"], now)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval-ms", type=int, default=50)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--poll-ms", type=int, default=250)
    args = parser.parse_args()

    from mes import create_app, migrate
    from mes.catalog import services as cat
    from mes.db import get_db, session_scope
    from mes.events import publish, services

    tmp = tempfile.TemporaryDirectory()
    database = fresh_pg_database() if args.db == "pg" else nullcontext(
        f"sqlite:///{tmp.name}/events.db")
    arrived: dict[int, float] = {}
    committed: dict[int, float] = {}
    with database as url, receiver(arrived) as hook_url:
        config = {"DATABASE_URL": url, "INSTANCE_PATH": f"{tmp.name}/instance",
                  "SECRET_KEY": SECRET_KEY, "WEBHOOK_ALLOW_PRIVATE_URLS": True}
        app = create_app(config)
        with get_db(app).engine.begin() as conn:
            migrate.upgrade(conn)
        with app.app_context(), session_scope(app) as session:
            customer = cat.create_customer(session, "bench", {"code": "OEM", "name": "OEM"})
            services.create_webhook(session, "bench", {
                "url": hook_url, "events": ["lot.hold.placed"], "customer": "OEM"},
                allow_private=True)
            session.flush()
            customer_id = customer.id
        env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
        env.update({f"MES_{k}": str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in config.items()}, MES_WORKER_POLL_MS=str(args.poll_ms))
        log = Path(os.environ.get("BENCH_WORKER_LOG") or Path(tmp.name) / "worker.log")
        with open(log, "wb") as out:
            worker = subprocess.Popen([str(Path(sys.executable).with_name("mes")), "worker"],
                                      env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            while b"Worker started" not in log.read_bytes():
                if worker.poll() is not None:
                    raise SystemExit(log.read_text())
                time.sleep(0.1)
            for n in range(args.events):
                with app.app_context(), session_scope(app) as session:
                    publish(session, "lot.hold.placed", customer_id=customer_id,
                            data={"n": n})
                committed[n] = time.time()
                time.sleep(args.interval_ms / 1000)
            deadline = time.time() + 30
            while len(arrived) < args.events and time.time() < deadline:
                time.sleep(0.05)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        get_db(app).engine.dispose()
    tmp.cleanup()
    latencies = [arrived[n] - committed[n] for n in committed if n in arrived]
    print(f"events: {args.events} on {args.db}, one every {args.interval_ms} ms, worker "
          f"polling every {args.poll_ms} ms; received {len(latencies)}")
    if latencies:
        print(f"commit to receiver: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {percentile(latencies, 95) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
