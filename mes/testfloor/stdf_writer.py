"""A small STDF V4 writer for tests and demo data: pure Python, no Flask, no ORM.

`write_stdf` lays out a whole file (FAR, MIR, SDR, WIR/WRR, PIR, PTR..., PRR, HBR, SBR, PCR,
MRR) from plain part descriptions; `encode_record` and `raw_record` build single records,
for files that a test wants to bend (omitted trailing fields, "missing" values, unknown
record types, disagreeing summaries).
"""

from __future__ import annotations

import functools
import gzip
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO

from mes.testfloor.stdf import MISSING, RECORD_FIELDS

__all__ = ["TestSpec", "PartSpec", "encode_record", "raw_record", "write_stdf"]

_ORDER = {"big": ">", "little": "<"}
_CPU_TYPE = {"big": 1, "little": 2}
_FMT = {"U1": "B", "B1": "B", "U2": "H", "U4": "I", "I1": "b", "I2": "h", "I4": "i",
        "R4": "f", "R8": "d"}


@dataclass(frozen=True)
class TestSpec:
    """A parametric test's defaults, written into the first PTR of its test number."""

    __test__ = False  # not a pytest test class, despite the name

    name: str | None = None
    units: str | None = None
    lo: float | None = None
    hi: float | None = None
    spec_lo: float | None = None
    spec_hi: float | None = None


@dataclass(frozen=True)
class PartSpec:
    """One part to write as PIR, PTRs, PRR.

    passed: True/False set PART_FLG bit 3 accordingly, None sets bit 4 ("no pass/fail
    information"). soft_bin, x, y, part_id and test_time_ms None are written as the
    standard's missing values. results are (test_num, value) or (test_num, value, TEST_FLG);
    a bytes item is written verbatim in its place (any record, e.g. an unknown type).
    """

    hard_bin: int = 1
    soft_bin: int | None = None
    passed: bool | None = True
    head: int = 1
    site: int = 0
    x: int | None = None
    y: int | None = None
    part_id: str | None = None
    wafer: str | None = None
    test_time_ms: int | None = None
    results: Sequence[tuple[int, float] | tuple[int, float, int] | bytes] = ()


def raw_record(typ: int, sub: int, body: bytes, *, byte_order: str = "little") -> bytes:
    """Header (REC_LEN, REC_TYP, REC_SUB) plus `body`, for record types of any kind."""
    if len(body) > 0xFFFF:
        raise ValueError(f"record body of {len(body)} bytes exceeds the STDF limit of 65535")
    return struct.pack(_ORDER[byte_order] + "HBB", len(body), typ, sub) + body


def _cn(value: str | None) -> bytes:
    text = value or ""
    raw = text.encode("latin-1")
    if len(raw) > 255:
        raise ValueError(f"string field longer than 255 bytes: {text[:20]!r}...")
    return bytes([len(raw)]) + raw


def encode_record(name: str, fields: Mapping[str, Any], *, byte_order: str = "little") -> bytes:
    """One record of a type in RECORD_FIELDS, from a dict of STDF field names.

    The record ends with the last field present in `fields`: the fields after it are
    omitted, as the standard allows. A field before it that is absent or None is written as
    its missing value (MISSING, else 0, a space for C1, empty for Cn/Bn).
    """
    typ, sub, layout = RECORD_FIELDS[name]
    order = _ORDER[byte_order]
    present = [i for i, (fname, _) in enumerate(layout) if fname in fields]
    unknown = set(fields) - {fname for fname, _ in layout}
    if unknown:
        raise ValueError(f"{name} has no field(s) {sorted(unknown)}")
    body = bytearray()
    for fname, code in layout[:present[-1] + 1 if present else 0]:
        # Any: the field's kind (number, text, bytes) is known only from its code below.
        value: Any = fields.get(fname)
        if value is None:
            value = MISSING.get(name, {}).get(fname)
        if code in _FMT:
            body += struct.pack(order + _FMT[code], value if value is not None else 0)
        elif code == "C1":
            body += (value or " ").encode("latin-1")[:1]
        elif code == "Cn":
            body += _cn(value)
        elif code == "Bn":
            body += bytes([len(value or b"")]) + (value or b"")
        else:
            body += bytes(value or ())
    return raw_record(typ, sub, bytes(body), byte_order=byte_order)


def _good(part: PartSpec) -> bool:
    return part.passed if part.passed is not None else part.hard_bin == 1


def _touchdowns(parts: Sequence[PartSpec], interleave: bool) -> Iterable[list[PartSpec]]:
    """Group consecutive parts into insertions: one part per head/site, same wafer."""
    group: list[PartSpec] = []
    for part in parts:
        clash = any((p.head, p.site) == (part.head, part.site) for p in group)
        if group and (not interleave or clash or group[0].wafer != part.wafer):
            yield group
            group = []
        group.append(part)
    if group:
        yield group


_NO_SPEC = TestSpec()
# A PTR without limits, up to RESULT: header (REC_LEN, REC_TYP, REC_SUB), TEST_NUM,
# HEAD_NUM, SITE_NUM, TEST_FLG, PARM_FLG, RESULT; TEST_TXT and ALARM_ID follow.
_SHORT_PTR = "HBBIBBBBf"


class _PtrWriter:
    """Writes PTRs: the first of each test number carries the defaults."""

    def __init__(self, tests: Mapping[int, TestSpec], repeat_limits: str, byte_order: str):
        if repeat_limits not in ("omit", "flag", "full"):
            raise ValueError("repeat_limits must be 'omit', 'flag' or 'full'")
        self.tests = tests
        self.repeat = repeat_limits
        self.byte_order = byte_order
        self.seen: set[int] = set()
        # A later PTR of a test without limits: header, the fixed fields, then TEST_TXT
        # and an empty ALARM_ID (`tails`, per test number).
        self.short = struct.Struct(_ORDER[byte_order] + _SHORT_PTR)
        self.tails: dict[int, bytes] = {}

    def record(self, part: PartSpec, result: tuple) -> bytes:
        test_num, value = result[0], result[1]
        test_flg = result[2] if len(result) > 2 else 0
        first = test_num not in self.seen
        if not first and self.repeat == "omit" and value is not None:
            # The common record, packed directly: the same bytes encode_record writes.
            tail = self.tails.get(test_num)
            if tail is None:
                tail = self.tails[test_num] = _cn(self.tests.get(test_num, _NO_SPEC).name) \
                    + b"\x00"
            return self.short.pack(12 + len(tail), 15, 10, test_num, part.head, part.site,
                                   test_flg, 0, value) + tail
        self.seen.add(test_num)
        spec = self.tests.get(test_num, _NO_SPEC)
        fields: dict[str, Any] = {
            "TEST_NUM": test_num, "HEAD_NUM": part.head, "SITE_NUM": part.site,
            "TEST_FLG": test_flg, "PARM_FLG": 0, "RESULT": value,
            "TEST_TXT": spec.name, "ALARM_ID": None,
        }
        if first or self.repeat == "full":
            opt = 0x02  # bit 1 is reserved and must be set
            opt |= 0x04 if spec.spec_lo is None else 0
            opt |= 0x08 if spec.spec_hi is None else 0
            opt |= 0x40 if spec.lo is None else 0
            opt |= 0x80 if spec.hi is None else 0
            fields.update(OPT_FLAG=opt, RES_SCAL=0, LLM_SCAL=0, HLM_SCAL=0,
                          LO_LIMIT=spec.lo or 0.0, HI_LIMIT=spec.hi or 0.0, UNITS=spec.units,
                          LO_SPEC=spec.spec_lo or 0.0, HI_SPEC=spec.spec_hi or 0.0)
        elif self.repeat == "flag":
            # Bits 4/5: "limits invalid, use the first PTR's"; the 0.0 here must be ignored.
            fields.update(OPT_FLAG=0x3E, RES_SCAL=0, LLM_SCAL=0, HLM_SCAL=0,
                          LO_LIMIT=0.0, HI_LIMIT=0.0)
        return encode_record("PTR", fields, byte_order=self.byte_order)


def write_stdf(
    dest: str | PathLike[str] | BinaryIO | None,
    *,
    byte_order: str = "little",
    mir: Mapping[str, Any],
    parts: Sequence[PartSpec],
    tests: Mapping[int, TestSpec] | None = None,
    sdrs: Sequence[Mapping[str, Any]] = (),
    summaries: bool = True,
    repeat_limits: str = "omit",
    interleave: bool = False,
    extra_records: Sequence[bytes] = (),
    compress: bool = False,
    good_units: Sequence[Sequence[float]] = (),
    unit_tests: Sequence[int] = (),
) -> bytes:
    """Write an STDF V4 file and return its bytes (also written to `dest` unless None).

    Layout: FAR, MIR, SDRs, then per wafer (PartSpec.wafer; none for None) WIR ... WRR around
    the parts, each part as PIR, PTRs, PRR; with `interleave` consecutive parts on distinct
    heads/sites are written as one parallel insertion (all PIRs, PTRs round-robin, all PRRs).
    Then HBR/SBR/PCR for all sites (HEAD_NUM 255), computed from the parts when `summaries`,
    then `extra_records` verbatim, then MRR. PTR defaults are written in the first PTR of each
    test; `repeat_limits` says what later PTRs carry: "omit" (nothing after ALARM_ID), "flag"
    (OPT_FLAG bits 4/5 "use the defaults" with dummy limits) or "full" (the defaults again).
    `compress` gzips the output.

    `good_units` are passing units written after `parts`, packed in bulk (a whole lot's
    worth at a few microseconds a unit): each the values of `unit_tests` in that order, on
    head 1 site 0 outside any wafer, hard and soft bin 1, PART_ID numbered on from the
    parts' count; the summaries count them.
    """
    order = byte_order
    if order not in _ORDER:
        raise ValueError("byte_order must be 'big' or 'little'")
    out = bytearray(raw_record(0, 10, bytes([_CPU_TYPE[order], 4]), byte_order=order))
    out += encode_record("MIR", {"SETUP_T": 0, "START_T": 0, "STAT_NUM": 1, "MODE_COD": "P",
                                 "BURN_TIM": None, "CMOD_COD": None, **mir}, byte_order=order)
    for sdr in sdrs:
        out += encode_record("SDR", sdr, byte_order=order)
    ptrs = _PtrWriter(tests or {}, repeat_limits, order)
    wafer_parts: list[PartSpec] = []  # parts of the wafer whose WIR is open
    for group in _touchdowns(parts, interleave):
        wafer = group[0].wafer
        if wafer_parts and wafer != wafer_parts[0].wafer:
            out += _wrr(wafer_parts, order)
            wafer_parts = []
        if wafer is not None:
            if not wafer_parts:
                out += encode_record("WIR", {"HEAD_NUM": group[0].head, "SITE_GRP": 255,
                                             "START_T": 0, "WAFER_ID": wafer},
                                     byte_order=order)
            wafer_parts += group
        for part in group:
            out += _pir(part.head, part.site, order)
        for i in range(max(len(part.results) for part in group)):
            for part in group:
                if i < len(part.results):
                    item = part.results[i]
                    out += item if isinstance(item, bytes) else ptrs.record(part, item)
        for part in group:
            out += _prr(part, order)
    if wafer_parts:
        out += _wrr(wafer_parts, order)
    if good_units:
        out += _good_units(good_units, unit_tests, ptrs, len(parts) + 1, order)
    if summaries:
        out += _summaries(parts, order, len(good_units))
    for record in extra_records:
        out += record
    out += encode_record("MRR", {"FINISH_T": 0}, byte_order=order)
    data = gzip.compress(bytes(out), mtime=0) if compress else bytes(out)
    if isinstance(dest, str | PathLike):
        Path(dest).write_bytes(data)
    elif dest is not None:
        dest.write(data)
    return data


@functools.cache
def _pir(head: int, site: int, order: str) -> bytes:
    return encode_record("PIR", {"HEAD_NUM": head, "SITE_NUM": site}, byte_order=order)


_PRR = {order: struct.Struct(_ORDER[order] + "HBBBBBHHHhhI") for order in _ORDER}


def _prr(part: PartSpec, order: str) -> bytes:
    """The PRR of `part`: the bytes encode_record writes, packed directly."""
    flags = 0x10 if part.passed is None else 0 if part.passed else 0x08
    missing = MISSING["PRR"]
    part_id = _cn(part.part_id)
    return _PRR[order].pack(
        19 + len(part_id), 5, 20, part.head, part.site, flags,
        sum(not isinstance(r, bytes) for r in part.results), part.hard_bin,
        missing["SOFT_BIN"] if part.soft_bin is None else part.soft_bin,
        missing["X_COORD"] if part.x is None else part.x,
        missing["Y_COORD"] if part.y is None else part.y,
        missing["TEST_T"] if part.test_time_ms is None else part.test_time_ms,
    ) + part_id + b"\x00\x00"


def _wrr(parts: Sequence[PartSpec], order: str) -> bytes:
    return encode_record("WRR", {
        "HEAD_NUM": parts[0].head, "SITE_GRP": 255, "FINISH_T": 0, "PART_CNT": len(parts),
        "RTST_CNT": None, "ABRT_CNT": None, "GOOD_CNT": sum(map(_good, parts)),
        "FUNC_CNT": None, "WAFER_ID": parts[0].wafer,
    }, byte_order=order)


def _good_units(units: Sequence[Sequence[float]], tests: Sequence[int], ptrs: _PtrWriter,
                first_id: int, order: str) -> bytes:
    """`write_stdf`'s good_units: PIR, a PTR per test, PRR each."""
    out = bytearray()
    done = 0
    # Until each test has its first PTR (which carries the defaults) the usual way.
    while done < len(units) and (ptrs.repeat != "omit" or not ptrs.seen.issuperset(tests)):
        results = list(zip(tests, units[done], strict=True))
        part = PartSpec(hard_bin=1, soft_bin=1, part_id=str(first_id + done), results=results)
        out += _pir(1, 0, order)
        for result in results:
            out += ptrs.record(part, result)
        out += _prr(part, order)
        done += 1
    tails = [_cn(ptrs.tests.get(num, _NO_SPEC).name) + b"\x00" for num in tests]
    heads = [(12 + len(tail), 15, 10, num, 1, 0, 0, 0)
             for num, tail in zip(tests, tails, strict=True)]
    ptr = struct.Struct(_ORDER[order] + "".join(f"{_SHORT_PTR}{len(t)}s" for t in tails)).pack
    prr = _PRR[order].pack
    pir = _pir(1, 0, order)
    for number, values in enumerate(units[done:], first_id + done):
        args: list[Any] = []
        for head, value, tail in zip(heads, values, tails, strict=True):
            args += (*head, value, tail)
        part_id = _cn(str(number))
        out += pir
        out += ptr(*args)
        out += prr(19 + len(part_id), 5, 20, 1, 0, 0, len(tests), 1, 1, -32768, -32768, 0)
        out += part_id + b"\x00\x00"
    return bytes(out)


def _summaries(parts: Sequence[PartSpec], order: str, good_units: int = 0) -> bytes:
    out = bytearray()
    for name, attr in (("HBR", "hard_bin"), ("SBR", "soft_bin")):
        counts: dict[int, list[int]] = {1: [good_units, good_units]} if good_units else {}
        for part in parts:
            bin_no = getattr(part, attr)
            if bin_no is not None:
                tally = counts.setdefault(bin_no, [0, 0])
                tally[0] += 1
                tally[1] += _good(part)
        p = name[0]
        for bin_no, (count, good) in sorted(counts.items()):
            out += encode_record(name, {
                "HEAD_NUM": 255, "SITE_NUM": 0, f"{p}BIN_NUM": bin_no, f"{p}BIN_CNT": count,
                f"{p}BIN_PF": "P" if good else "F", f"{p}BIN_NAM": f"bin {bin_no}",
            }, byte_order=order)
    out += encode_record("PCR", {
        "HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": len(parts) + good_units, "RTST_CNT": None,
        "ABRT_CNT": None, "GOOD_CNT": sum(map(_good, parts)) + good_units, "FUNC_CNT": None,
    }, byte_order=order)
    return bytes(out)
