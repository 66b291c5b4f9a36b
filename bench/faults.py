"""Faults under load (loopback only): PostgreSQL restarted mid-run, and gunicorn workers
killed with SIGKILL mid-request.

The database is a private PostgreSQL cluster that this script creates (initdb as the
postgres user, a free port, a temporary folder) and removes, so stopping it disturbs no
one else's server. The application runs under gunicorn, as in production, with the mixed
load of bench/load.py (operators, QA, customers).

1. Restart: after --before seconds of load the cluster stops (fast shutdown), stays down
   --down seconds, and starts again. Requests during the outage must get 503 with a JSON
   error body (never another 5xx), and the application must recover by itself: the time
   to the first success after the restart is printed.
2. SIGKILL: every --kill-every seconds a random gunicorn worker is killed with SIGKILL
   while the load runs (most workers are busy, so most kills land mid-request); the
   master starts a new one. Clients see dropped connections, never a 5xx.
After each phase `mes check` must find every invariant intact: nothing half-written.

Run: .venv/bin/python bench/faults.py [--lots 600] [--before 10] [--down 6] [--after 15]
     [--kill-seconds 30] [--kill-every 3]
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import free_port, run_load  # noqa: E402
from bench.load import Mix, mes_check, server_env, setup  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(f"{name} not found (PostgreSQL server binaries)")
    return found[-1]


def _as_postgres(*cmd: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)


@contextmanager
def private_cluster() -> Iterator[tuple[str, Any, Any]]:
    """A PostgreSQL cluster of our own: yields (url, stop(), start())."""
    folder = tempfile.mkdtemp(prefix="mes-faults-")
    data = os.path.join(folder, "data")
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    _as_postgres(_pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                 "--no-sync")
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def start() -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", data, "-o", opts, "-w", "-l",
                     os.path.join(folder, "log"), "start")

    def stop() -> None:
        _as_postgres(_pg_bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")

    start()
    try:
        base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        from sqlalchemy import create_engine, text

        admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE mes"))
        admin.dispose()
        yield f"{base}/mes", stop, start
    finally:
        with suppress(subprocess.CalledProcessError):
            stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def gunicorn_server(env: dict[str, str], workers: int) -> Iterator[tuple[int, int]]:
    """gunicorn on loopback; yields (port, master pid)."""
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b",
           f"127.0.0.1:{port}", "--timeout", "60", "--log-level", "warning",
           "mes:create_app()"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                            start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield port, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _workers_of(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


class Timeline:
    """Every answer with the time it came back."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int]] = []
        self.lock = threading.Lock()

    def wrap(self, worker: Any) -> Any:
        def work(report: Any, running: Any) -> None:
            def timed(status: int, latency: float) -> None:
                with self.lock:
                    self.events.append((time.monotonic(), status))
                report(status, latency)
            worker(timed, running)
        return work


def restart_phase(args: argparse.Namespace, url: str, ctx: dict[str, Any], stop: Any,
                  start: Any) -> bool:
    env = server_env(url)
    timeline = Timeline()
    marks: dict[str, float] = {}
    with gunicorn_server(env, args.workers) as (port, _master):
        mix = Mix(port, ctx, seed=11)

        def fault() -> None:
            time.sleep(args.before)
            marks["down"] = time.monotonic()
            stop()
            marks["stopped"] = time.monotonic()
            time.sleep(args.down)
            start()
            marks["up"] = time.monotonic()

        thread = threading.Thread(target=fault)
        thread.start()
        result = run_load([timeline.wrap(w) for w in mix.workers()],
                          args.before + args.down + args.after)
        thread.join()
    during = Counter(s for t, s in timeline.events if marks["down"] <= t < marks["up"])
    after = sorted(t for t, s in timeline.events if t >= marks["up"] and 200 <= s < 300)
    other_5xx = {s: n for s, n in result.statuses.items() if s >= 500 and s != 503}
    print(f"[restart] PostgreSQL down {marks['up'] - marks['down']:.1f} s "
          f"(stop took {marks['stopped'] - marks['down']:.1f} s)")
    print(f"[restart] requests {result.requests}, by status "
          f"{dict(sorted(result.statuses.items()))}")
    print(f"[restart] during the outage: {dict(sorted(during.items()))}")
    recovered = after[0] - marks["up"] if after else None
    print(f"[restart] first success {recovered:.2f} s after the restart" if recovered is not None
          else "[restart] NO success after the restart")
    for line in mix.bad_bodies[:10]:
        print(f"[restart] unexpected: {line}")
    code, lines = mes_check(env)
    print(f"[restart] mes check exit {code}: {lines[-1] if lines else ''}")
    for line in lines[2:8] if code else []:
        print(f"    {line}")
    return not other_5xx and not mix.bad_bodies and recovered is not None and code == 0 \
        and during.get(503, 0) > 0


def kill_phase(args: argparse.Namespace, url: str, ctx: dict[str, Any]) -> bool:
    env = server_env(url)
    kills: list[int] = []
    with gunicorn_server(env, args.workers) as (port, master):
        mix = Mix(port, ctx, seed=13)
        rng = random.Random(5)

        def killer() -> None:
            end = time.monotonic() + args.kill_seconds - args.kill_every
            while time.monotonic() < end:
                time.sleep(args.kill_every)
                workers = _workers_of(master)
                if workers:
                    victim = rng.choice(workers)
                    try:
                        os.kill(victim, signal.SIGKILL)
                        kills.append(victim)
                    except ProcessLookupError:
                        pass

        thread = threading.Thread(target=killer)
        thread.start()
        result = run_load(mix.workers(), args.kill_seconds)
        thread.join()
    errors = {s: n for s, n in result.statuses.items() if s >= 500}
    print(f"[sigkill] {len(kills)} workers killed; requests {result.requests}, by status "
          f"{dict(sorted(result.statuses.items()))} (0 = connection dropped by the kill)")
    for line in mix.bad_bodies[:10]:
        print(f"[sigkill] unexpected: {line}")
    code, lines = mes_check(env)
    print(f"[sigkill] mes check exit {code}: {lines[-1] if lines else ''}")
    for line in lines[2:8] if code else []:
        print(f"    {line}")
    return not errors and not mix.bad_bodies and code == 0 and bool(kills)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lots", type=int, default=600)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--before", type=float, default=10)
    parser.add_argument("--down", type=float, default=6)
    parser.add_argument("--after", type=float, default=15)
    parser.add_argument("--kill-seconds", type=float, default=30)
    parser.add_argument("--kill-every", type=float, default=3)
    args = parser.parse_args()
    with private_cluster() as (url, stop, start):
        ctx = setup(url, args.lots)
        print(f"private PostgreSQL cluster, {args.lots} lots, gunicorn with {args.workers} "
              "workers")
        ok_restart = restart_phase(args, url, ctx, stop, start)
        ok_kill = kill_phase(args, url, ctx)
    print(f"faults survived: restart {'yes' if ok_restart else 'NO'}, "
          f"SIGKILL {'yes' if ok_kill else 'NO'}")
    sys.exit(0 if ok_restart and ok_kill else 1)


if __name__ == "__main__":
    main()
