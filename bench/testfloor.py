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

With --big, instead: a big file through the HTTP API (gunicorn, one worker, on loopback;
UPLOAD_LIMIT_MIB raised to take it): lot3's wafer repeated under distinct WAFER_IDs up to
--size-mb MB of STDF (default 100; 22 wafers, 35,618 parts, 1.19 million PTR, no summary
records), imported as the raw body, as the raw body gzipped and as the multipart field
`file`, each into its own lot (no history: PAT is dynamic, SBA has none). Prints per import
the time, MB/s of STDF end to end (request sent to answer read), the CPU time the worker
spent (the machine is shared) and the worker's resident memory growth: its high-water mark
(VmHWM, reset through clear_refs before the request) less its resident size before.
Target: 20 MB/s or more, growth at most 256 MiB. Linux only.

Run: .venv/bin/python bench/testfloor.py [--runs 5] [path to lot3.stdf]
     .venv/bin/python bench/testfloor.py --big [--size-mb 100] [path to lot3.stdf]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_stdf import DEFAULT_FILE  # noqa: E402
from bench.bench_stdf import main as parse_benchmark  # noqa: E402
from bench.common import (  # noqa: E402
    fresh_pg_database,
    gunicorn,
    memory,
    reset_peak,
    worker_of_port,
)

HISTORY = 12
MB = 1_000_000
MIB = 1024 * 1024


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


def big_file(lot3: bytes, size: int) -> tuple[bytes, int]:
    """lot3.stdf (big-endian, one wafer) grown to at least `size` bytes: its header records,
    its wafer's records repeated under WIR/WRR with distinct WAFER_IDs (so every copy's dies
    are units of their own), then its MRR (its summary records, which would disagree, are
    left out). Returns the file and the number of wafers."""
    from mes.testfloor.stdf import parse
    from mes.testfloor.stdf_writer import encode_record

    head: list[bytes] = []
    body: list[bytes] = []
    tail: list[bytes] = []
    into = head
    pos = 0
    while pos < len(lot3):
        length, typ, sub = struct.unpack_from(">HBB", lot3, pos)
        record = lot3[pos:pos + 4 + length]
        pos += 4 + length
        if (typ, sub) == (2, 10):
            into = body
        elif (typ, sub) == (2, 20):
            into = tail
        elif into is not tail or (typ, sub) == (1, 20):
            into.append(record)
    wafer = parse(lot3, ptr=False).wafers[0]
    if wafer.wrr is None:
        raise ValueError("lot3.stdf's wafer has no WRR")
    wafer_body = b"".join(body)
    copies = -(-(size - len(b"".join(head))) // len(wafer_body))
    out = head[:]
    for k in range(copies):
        wafer_id = f"W{k + 1:03d}"
        out += [encode_record("WIR", {**wafer.wir, "WAFER_ID": wafer_id}, byte_order="big"),
                wafer_body,
                encode_record("WRR", {**wafer.wrr, "WAFER_ID": wafer_id}, byte_order="big")]
    return b"".join(out + tail), copies


def streamed(path: Path, before: bytes = b"", after: bytes = b"") -> Iterator[bytes]:
    """The file at `path` in pieces of 1 MiB, between `before` and `after` (a request body
    sent without ever being held whole)."""
    yield before
    with path.open("rb") as fh:
        while piece := fh.read(MIB):
            yield piece
    yield after


def big_import(port: int, token: str, lot_no: str, path: Path, *,
               multipart: bool = False) -> tuple[float, dict[str, Any]]:
    """POST the file at `path` to the lot (raw body, or the multipart field `file`),
    streamed from disk; returns the seconds to the answer and the answer."""
    boundary = "bench-boundary-7f3a"
    before = after = b""
    content_type = "application/octet-stream"
    if multipart:
        before = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                  f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream"
                  "\r\n\r\n").encode()
        after = f"\r\n--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
    length = len(before) + path.stat().st_size + len(after)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", f"/api/v1/lots/{lot_no}/stdf", body=streamed(path, before, after),
                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type,
                          "Content-Length": str(length)})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    elapsed = time.perf_counter() - start
    conn.close()
    if resp.status != 201:
        raise RuntimeError(f"import answered {resp.status}: {answer}")
    return elapsed, answer


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used, from /proc (Linux): on a shared
    machine, what the import cost, whatever else ran beside it."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def big(lot3: Path, size_mb: float) -> int:
    """Section 4 (--big): the big file through the HTTP API, time and worker memory."""
    folder = Path(tempfile.mkdtemp())
    data, wafers = big_file(lot3.read_bytes(), int(size_mb * MB))
    stdf_size = len(data) + 1
    # Each upload different by its NUL padding after the last record (which the reader
    # ignores): the same content would be refused as a duplicate.
    (folder / "big.stdf").write_bytes(data + b"\0")
    (folder / "big.stdf.gz").write_bytes(gzip.compress(data + b"\0\0", compresslevel=6))
    (folder / "big-multipart.stdf").write_bytes(data + b"\0\0\0")
    del data
    uploads = [("raw body", "BIG1", folder / "big.stdf", False),
               ("raw body, gzip", "BIG2", folder / "big.stdf.gz", False),
               ("multipart", "BIG3", folder / "big-multipart.stdf", True)]
    print(f"4. big file: {stdf_size / MB:.1f} MB of STDF, lot3's wafer {wafers} times; "
          f"gzipped {(folder / 'big.stdf.gz').stat().st_size / MB:.1f} MB")
    with fresh_pg_database() as url:
        app, token = setup(url)
        for lot_no in ("WARM", "BIG1", "BIG2", "BIG3"):
            receive(app, lot_no)
        limit_mib = int(stdf_size * 2 / MIB) + 2
        env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
               "MES_INSTANCE_PATH": tempfile.mkdtemp(),
               "MES_UPLOAD_LIMIT_MIB": str(limit_mib),
               "MES_GZIP_INFLATE_LIMIT_MIB": str(limit_mib)}
        with gunicorn("mes:create_app()", env, 1) as port:
            pid = worker_of_port(port)
            big_import(port, token, "WARM", lot3)  # warm-up: code loaded, connections open
            for label, lot_no, path, multipart in uploads:
                reset_peak(pid)
                before = memory(pid)["VmRSS"]
                cpu = cpu_seconds(pid)
                elapsed, answer = big_import(port, token, lot_no, path, multipart=multipart)
                cpu = cpu_seconds(pid) - cpu
                growth = memory(pid)["VmHWM"] - before
                print(f"   {label:<15} {path.stat().st_size / MB:6.1f} MB sent  "
                      f"{elapsed:6.2f} s  {stdf_size / elapsed / MB:5.1f} MB/s of STDF  "
                      f"(worker CPU {cpu:.2f} s)  worker {before / MIB:.0f} MiB before, "
                      f"growth {growth / MIB:+.0f} MiB  ({answer['parts_tested']:,} parts, "
                      f"PAT {answer['pat']['mode']}, {answer['pat']['failures']} PAT "
                      "failures)")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    print("target: 20 MB/s or more end to end, worker growth at most 256 MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("path", nargs="?", type=Path, default=DEFAULT_FILE)
    cli.add_argument("--runs", type=int, default=5)
    cli.add_argument("--big", action="store_true",
                     help="import a big file through the API instead (section 4)")
    cli.add_argument("--size-mb", type=float, default=100,
                     help="the big file's size in MB of STDF (with --big)")
    args = cli.parse_args(argv)
    if not args.path.is_file():
        print(f"no such file: {args.path}", file=sys.stderr)
        return 2
    if args.big:
        return big(args.path, args.size_mb)
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
