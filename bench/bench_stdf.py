"""Benchmark the STDF reader against pystdf.

    python bench/bench_stdf.py [path] [--runs N]

Parses the file (default: the shared lot3.stdf) from memory with mes.testfloor.stdf in
summary mode (PTR bodies skipped), values mode (the import's: each part's usable values in
arrays) and full mode (every PTR decoded), and with pystdf
(a full parse into a no-op sink), best of N runs each, and prints MB/s of STDF and the
ratios to pystdf. pystdf is optional: without it only our figures are printed.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mes.testfloor.stdf import parse, summarise

DEFAULT = Path(os.environ.get("MES_STDF_DATA")
               or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stdf")
DEFAULT_FILE = DEFAULT / "lot3.stdf"


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest wall time of `runs` calls, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def pystdf_parse(stdf: bytes) -> Callable[[], object] | None:
    """A full pystdf parse of `stdf` with no sink attached, or None without pystdf."""
    try:
        from pystdf.IO import Parser
    except ImportError:
        return None
    return lambda: Parser(inp=io.BytesIO(stdf)).parse()


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("path", nargs="?", type=Path, default=DEFAULT_FILE)
    cli.add_argument("--runs", type=int, default=3)
    args = cli.parse_args(argv)
    if not args.path.is_file():
        print(f"no such file: {args.path}", file=sys.stderr)
        return 2
    data = args.path.read_bytes()
    # pystdf reads plain STDF only; MB/s are always of the uncompressed STDF.
    stdf = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    f = parse(data)
    s = summarise(f)
    print(f"{args.path.name}: {len(stdf) / 1e6:.2f} MB of STDF ({f.byte_order}-endian), "
          f"{s.parts_tested:,} PRR, {f.record_counts.get('PTR', 0):,} PTR, "
          f"{s.units:,} units; best of {args.runs}")

    rows = [("mes summary (ptr=False)", best_of(args.runs, lambda: parse(data, ptr=False))),
            ('mes values (ptr="values")', best_of(args.runs, lambda: parse(data, ptr="values"))),
            ("mes full (ptr=True)", best_of(args.runs, lambda: parse(data)))]
    reference = pystdf_parse(stdf)
    if reference is None:
        print("pystdf is not installed: no comparison")
        baseline = None
    else:
        baseline = best_of(args.runs, reference)
        rows.append(("pystdf full, no-op sink", baseline))

    print(f"{'reader':<26}{'seconds':>9}{'MB/s':>9}{'vs pystdf':>11}")
    for name, seconds in rows:
        ratio = f"{baseline / seconds:10.1f}x" if baseline else f"{'-':>11}"
        print(f"{name:<26}{seconds:9.3f}{len(stdf) / seconds / 1e6:9.1f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
