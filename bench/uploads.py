"""Upload limits benchmark: what a gzip bomb and an oversized chunked upload cost a worker.

One gunicorn worker (as `mes serve` runs them, sync) on loopback, a fresh SQLite database in
a temporary folder, the default limits (UPLOAD_LIMIT_MIB 64, GZIP_INFLATE_LIMIT_MIB 512)
unless given. The worker's memory is read from /proc: its resident size before each request
and its high-water mark (VmHWM, reset before the request through clear_refs) after.

1. A warm-up import of a small valid file (code loaded, connections open).
2. A gzip bomb: a valid STDF file followed by --bomb-mib MiB (default 1024) of NUL padding,
   gzipped (about 1 MiB on the wire). Expected: 413 too_large naming the inflate limit; the
   worker's peak growth stays under the limit plus 100 MiB.
3. A chunked upload (no Content-Length) of UPLOAD_LIMIT_MIB + 1 MiB. Expected: 413 too_large;
   the body is read to one byte past the limit, spooled to disk beyond 1 MiB.

Run: .venv/bin/python bench/uploads.py [--bomb-mib 1024] [--inflate-limit-mib 512]
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import gunicorn, memory, reset_peak, worker_of_port  # noqa: E402
from bench.testfloor import receive, setup  # noqa: E402

MIB = 1024 * 1024


def bomb(valid: bytes, mib: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(valid)]
    zeros = bytes(MIB)
    out += [packer.compress(zeros) for _ in range(mib)]
    out.append(packer.flush())
    return b"".join(out)


def post(port: int, token: str, path: str, body: bytes | Iterator[bytes],
         chunked: bool = False) -> tuple[int, dict, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", path, body=body, encode_chunked=chunked,
                 headers={"Authorization": f"Bearer {token}",
                          "Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    answer = json.loads(resp.read() or b"{}")
    elapsed = time.perf_counter() - start
    conn.close()
    return resp.status, answer, elapsed


def measured(pid: int, label: str, call: Callable[[], tuple[int, dict, float]]) -> None:
    reset_peak(pid)
    before = memory(pid)["VmRSS"]
    status, answer, elapsed = call()
    peak = memory(pid)["VmHWM"]
    print(f"{label}: {status} {answer.get('error', {}).get('code', '')} in {elapsed:.2f} s; "
          f"worker {before / MIB:.0f} MiB before, peak {peak / MIB:.0f} MiB, "
          f"growth {(peak - before) / MIB:.0f} MiB")
    message = answer.get("error", {}).get("message")
    if message:
        print(f"   message: {message}")


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--bomb-mib", type=int, default=1024)
    cli.add_argument("--inflate-limit-mib", type=int, default=None)
    cli.add_argument("--upload-limit-mib", type=int, default=None)
    args = cli.parse_args(argv)

    from mes.config import DEFAULTS
    from mes.testfloor.stdf_writer import PartSpec, write_stdf

    inflate_limit = args.inflate_limit_mib or DEFAULTS["GZIP_INFLATE_LIMIT_MIB"]
    upload_limit = args.upload_limit_mib or DEFAULTS["UPLOAD_LIMIT_MIB"]
    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/bench.db"
    app, token = setup(url)
    for lot in ("U1", "U2", "U3"):
        receive(app, lot)
    valid = write_stdf(None, mir={"LOT_ID": "U"}, parts=[PartSpec(part_id=str(i))
                                                        for i in range(100)])
    packed = bomb(valid, args.bomb_mib)
    print(f"gzip bomb: {len(packed) / MIB:.2f} MiB inflating to {args.bomb_mib} MiB; "
          f"GZIP_INFLATE_LIMIT_MIB {inflate_limit}, UPLOAD_LIMIT_MIB {upload_limit}")

    env = {"MES_DATABASE_URL": url, "MES_SECRET_KEY": "bench-" * 6,
           "MES_INSTANCE_PATH": tempfile.mkdtemp(),
           "MES_GZIP_INFLATE_LIMIT_MIB": str(inflate_limit),
           "MES_UPLOAD_LIMIT_MIB": str(upload_limit)}
    with gunicorn("mes:create_app()", env, 1) as port:
        pid = worker_of_port(port)
        measured(pid, "1. warm-up import (201)",
                 lambda: post(port, token, "/api/v1/lots/U1/stdf", valid))
        measured(pid, f"2. gzip bomb, {args.bomb_mib} MiB inflated",
                 lambda: post(port, token, "/api/v1/lots/U2/stdf", packed))

        def chunks() -> Iterator[bytes]:
            block = b"\0" * MIB
            yield valid
            for _ in range(upload_limit + 1):
                yield block

        measured(pid, f"3. chunked upload of {upload_limit + 1} MiB",
                 lambda: post(port, token, "/api/v1/lots/U3/stdf", chunks(), chunked=True))
    print(f"target: growth under the inflate limit ({inflate_limit} MiB) + 100 MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
