"""STDF V4 reader for the test floor: pure Python, no Flask, no ORM.

`parse()` reads a whole file (plain or gzip, from memory or a memory-mapped file: `mapped`)
into a `StdfFile`; `summarise()` turns its part records into the counts of the test-run API
(PRR count, units, first-pass and final yield, bins) and cross-checks the tester's own
summary records. The import reads with ``ptr="values"``: each part keeps its usable values
in two arrays, not one object per PTR. Reading rules, in short (the full list is in
docs/stdf.md):

* Byte order comes from FAR.CPU_TYPE (1 big-endian, 2 little-endian); CPU_TYPE 0 (VAX) and
  any STDF_VER other than 4 are refused. A cut-short header or record body, a record type
  outside the STDF V4 list, and a file that ends without MRR while parts are still open are
  refused. Every refusal is a `StdfError` whose message and `.offset` give the byte offset
  (of the decompressed stream for gzip input).
* gzip input is inflated with a bounded output, whole or in pieces (`inflate`,
  `inflate_chunks`, `InflateLimitExceeded`).
* A record may end early: absent trailing fields are None. The standard's "missing" values
  (empty strings, U4 4294967295 counts, I2 -32768 coordinates, ...) are None as well.
* Counts come from the part records (PRR); HBR/SBR/PCR are only cross-checked.
"""

from __future__ import annotations

import gc
import mmap
import os
import struct
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from os import PathLike
from typing import Any, BinaryIO, Literal, NamedTuple

__all__ = [
    "RECORD_FIELDS",
    "MISSING",
    "StdfError",
    "InflateLimitExceeded",
    "PtrResult",
    "PartValues",
    "TestDef",
    "Part",
    "Wafer",
    "StdfFile",
    "Summary",
    "inflate",
    "inflate_chunks",
    "mapped",
    "parse",
    "paused_gc",
    "parse_file",
    "summarise",
    "unit_key",
]


class StdfError(ValueError):
    """The input is not a readable STDF V4 file; `offset` is the byte where reading failed."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class InflateLimitExceeded(ValueError):
    """gzip input that inflates to more than `limit` bytes (a file this large, or a gzip
    bomb); inflating stopped one byte past the limit, which is all it ever held."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the gzip stream inflates to more than {limit} bytes")
        self.limit = limit


def _layout(spec: str) -> tuple[tuple[str, str], ...]:
    words = spec.split()
    return tuple(zip(words[::2], words[1::2], strict=True))


# Field layouts of the decoded records, in file order, as in the STDF V4 specification.
# "kU1:SITE_CNT" is an array of U1 whose length is the named earlier field.
RECORD_FIELDS: dict[str, tuple[int, int, tuple[tuple[str, str], ...]]] = {
    "FAR": (0, 10, _layout("CPU_TYPE U1 STDF_VER U1")),
    "ATR": (0, 20, _layout("MOD_TIM U4 CMD_LINE Cn")),
    "MIR": (1, 10, _layout(
        "SETUP_T U4 START_T U4 STAT_NUM U1 MODE_COD C1 RTST_COD C1 PROT_COD C1 BURN_TIM U2"
        " CMOD_COD C1 LOT_ID Cn PART_TYP Cn NODE_NAM Cn TSTR_TYP Cn JOB_NAM Cn JOB_REV Cn"
        " SBLOT_ID Cn OPER_NAM Cn EXEC_TYP Cn EXEC_VER Cn TEST_COD Cn TST_TEMP Cn USER_TXT Cn"
        " AUX_FILE Cn PKG_TYP Cn FAMLY_ID Cn DATE_COD Cn FACIL_ID Cn FLOOR_ID Cn PROC_ID Cn"
        " OPER_FRQ Cn SPEC_NAM Cn SPEC_VER Cn FLOW_ID Cn SETUP_ID Cn DSGN_REV Cn ENG_ID Cn"
        " ROM_COD Cn SERL_NUM Cn SUPR_NAM Cn")),
    "MRR": (1, 20, _layout("FINISH_T U4 DISP_COD C1 USR_DESC Cn EXC_DESC Cn")),
    "PCR": (1, 30, _layout(
        "HEAD_NUM U1 SITE_NUM U1 PART_CNT U4 RTST_CNT U4 ABRT_CNT U4 GOOD_CNT U4 FUNC_CNT U4")),
    "HBR": (1, 40, _layout(
        "HEAD_NUM U1 SITE_NUM U1 HBIN_NUM U2 HBIN_CNT U4 HBIN_PF C1 HBIN_NAM Cn")),
    "SBR": (1, 50, _layout(
        "HEAD_NUM U1 SITE_NUM U1 SBIN_NUM U2 SBIN_CNT U4 SBIN_PF C1 SBIN_NAM Cn")),
    "SDR": (1, 80, _layout(
        "HEAD_NUM U1 SITE_GRP U1 SITE_CNT U1 SITE_NUM kU1:SITE_CNT HAND_TYP Cn HAND_ID Cn"
        " CARD_TYP Cn CARD_ID Cn LOAD_TYP Cn LOAD_ID Cn DIB_TYP Cn DIB_ID Cn CABL_TYP Cn"
        " CABL_ID Cn CONT_TYP Cn CONT_ID Cn LASR_TYP Cn LASR_ID Cn EXTR_TYP Cn EXTR_ID Cn")),
    "WIR": (2, 10, _layout("HEAD_NUM U1 SITE_GRP U1 START_T U4 WAFER_ID Cn")),
    "WRR": (2, 20, _layout(
        "HEAD_NUM U1 SITE_GRP U1 FINISH_T U4 PART_CNT U4 RTST_CNT U4 ABRT_CNT U4 GOOD_CNT U4"
        " FUNC_CNT U4 WAFER_ID Cn FABWF_ID Cn FRAME_ID Cn MASK_ID Cn USR_DESC Cn EXC_DESC Cn")),
    "WCR": (2, 30, _layout(
        "WAFR_SIZ R4 DIE_HT R4 DIE_WID R4 WF_UNITS U1 WF_FLAT C1 CENTER_X I2 CENTER_Y I2"
        " POS_X C1 POS_Y C1")),
    "PIR": (5, 10, _layout("HEAD_NUM U1 SITE_NUM U1")),
    "PRR": (5, 20, _layout(
        "HEAD_NUM U1 SITE_NUM U1 PART_FLG B1 NUM_TEST U2 HARD_BIN U2 SOFT_BIN U2 X_COORD I2"
        " Y_COORD I2 TEST_T U4 PART_ID Cn PART_TXT Cn PART_FIX Bn")),
    "TSR": (10, 30, _layout(
        "HEAD_NUM U1 SITE_NUM U1 TEST_TYP C1 TEST_NUM U4 EXEC_CNT U4 FAIL_CNT U4 ALRM_CNT U4"
        " TEST_NAM Cn SEQ_NAME Cn TEST_LBL Cn OPT_FLAG B1 TEST_TIM R4 TEST_MIN R4 TEST_MAX R4"
        " TST_SUMS R4 TST_SQRS R4")),
    "PTR": (15, 10, _layout(
        "TEST_NUM U4 HEAD_NUM U1 SITE_NUM U1 TEST_FLG B1 PARM_FLG B1 RESULT R4 TEST_TXT Cn"
        " ALARM_ID Cn OPT_FLAG B1 RES_SCAL I1 LLM_SCAL I1 HLM_SCAL I1 LO_LIMIT R4 HI_LIMIT R4"
        " UNITS Cn C_RESFMT Cn C_LLMFMT Cn C_HLMFMT Cn LO_SPEC R4 HI_SPEC R4")),
}

_U4_MISSING = 4294967295
# Numeric "missing" values per record and field. Besides these, an empty Cn and a C1 that is a
# space or NUL read as None. Any U4 count of 4294967295 is treated as missing, also where the
# standard names no missing value (PART_CNT, HBIN_CNT): no tester tests that many parts.
MISSING: dict[str, dict[str, int | float]] = {
    "MIR": {"BURN_TIM": 65535},
    "PCR": dict.fromkeys(("PART_CNT", "RTST_CNT", "ABRT_CNT", "GOOD_CNT", "FUNC_CNT"),
                         _U4_MISSING),
    "HBR": {"HBIN_CNT": _U4_MISSING},
    "SBR": {"SBIN_CNT": _U4_MISSING},
    "WRR": dict.fromkeys(("PART_CNT", "RTST_CNT", "ABRT_CNT", "GOOD_CNT", "FUNC_CNT"),
                         _U4_MISSING),
    "WCR": {"WAFR_SIZ": 0.0, "DIE_HT": 0.0, "DIE_WID": 0.0, "WF_UNITS": 0,
            "CENTER_X": -32768, "CENTER_Y": -32768},
    "PRR": {"SOFT_BIN": 65535, "X_COORD": -32768, "Y_COORD": -32768, "TEST_T": 0},
    "TSR": dict.fromkeys(("EXEC_CNT", "FAIL_CNT", "ALRM_CNT"), _U4_MISSING),
}

# Names of the other STDF V4 (and V4-2007) record types: with RECORD_FIELDS, the list of
# record types a file may hold (any other type is refused: it is a corrupted record length far
# more often than a vendor record, and skipping it walks invented records).
_OTHER_NAMES = {
    (0, 30): "VUR", (1, 60): "PMR", (1, 62): "PGR", (1, 63): "PLR", (1, 70): "RDR",
    (1, 90): "PSR", (1, 91): "NMR", (1, 92): "CNR", (1, 93): "SSR", (1, 94): "CDR",
    (15, 15): "MPR", (15, 20): "FTR", (15, 30): "STR", (20, 10): "BPS", (20, 20): "EPS",
    (50, 10): "GDR", (50, 30): "DTR",
}
_NAMES = {(t, s): n for n, (t, s, _) in RECORD_FIELDS.items()} | _OTHER_NAMES

# What the reader reads from: a file's content in memory, or mapped (`mapped`).
Buffer = bytes | bytearray | mmap.mmap

_FMT = {"U1": "B", "B1": "B", "U2": "H", "U4": "I", "I1": "b", "I2": "h", "I4": "i",
        "R4": "f", "R8": "d"}
_NUM, _C1, _CN, _BN, _KU1 = range(5)


def _compile(order: str) -> dict[str, tuple[tuple[str, int, Any], ...]]:
    """Turn RECORD_FIELDS into (name, kind, argument) steps for one byte order."""
    out: dict[str, tuple[tuple[str, int, Any], ...]] = {}
    for rec, (_, _, fields) in RECORD_FIELDS.items():
        steps: list[tuple[str, int, Any]] = []
        for name, code in fields:
            if code in _FMT:
                steps.append((name, _NUM, struct.Struct(order + _FMT[code])))
            elif code == "C1":
                steps.append((name, _C1, None))
            elif code == "Cn":
                steps.append((name, _CN, None))
            elif code == "Bn":
                steps.append((name, _BN, None))
            else:
                steps.append((name, _KU1, code.split(":", 1)[1]))
        out[rec] = tuple(steps)
    return out


class _Codec:
    """Precompiled unpackers for one byte order."""

    def __init__(self, order: str) -> None:
        self.header = struct.Struct(order + "HBB")
        # TEST_NUM HEAD_NUM SITE_NUM TEST_FLG PARM_FLG RESULT
        self.ptr_head = struct.Struct(order + "IBBBBf")
        # OPT_FLAG (RES_SCAL LLM_SCAL HLM_SCAL skipped: values are stored unscaled) LO HI
        self.ptr_opt = struct.Struct(order + "Bxxxff")
        # PRR fixed part: HEAD SITE PART_FLG NUM_TEST HARD_BIN SOFT_BIN X Y TEST_T
        self.prr = struct.Struct(order + "BBBHHHhhI")
        self.steps = _compile(order)


_CODECS = {"big": _Codec(">"), "little": _Codec("<")}


def _decode(steps: tuple[tuple[str, int, Any], ...], buf: Buffer, p: int, end: int,
            rec: str) -> dict[str, Any]:
    """Decode one record body generically; fields past the end of the record are None."""
    out: dict[str, Any] = {}
    for name, kind, arg in steps:
        if p >= end:
            out[name] = None
            continue
        if kind == _NUM:
            q = p + arg.size
            value = arg.unpack_from(buf, p)[0] if q <= end else None
        elif kind == _C1:
            q = p + 1
            value = None if buf[p] in (0, 32) else chr(buf[p])
        elif kind in (_CN, _BN):
            q = p + 1 + buf[p]
            raw = buf[p + 1:q] if q <= end else b""
            value = raw.decode("latin-1") if kind == _CN else raw
            value = value or None
        else:
            q = p + (out.get(arg) or 0)
            value = list(buf[p:q]) if q <= end else None
        # A field that overruns its record ends the record: it and the rest are missing.
        p = q if q <= end else end
        out[name] = value
    for name, missing in MISSING.get(rec, {}).items():
        if out[name] == missing:
            out[name] = None
    return out


class PtrResult(NamedTuple):
    """One PTR of a part: the value with its flags and the limits in force for it."""

    test_num: int
    value: float | None
    test_flg: int | None
    parm_flg: int | None
    lo: float | None
    hi: float | None

    @property
    def valid(self) -> bool:
        """RESULT holds a value: TEST_FLG bit 1 ("RESULT not valid") is clear."""
        return self.value is not None and self.test_flg is not None and not self.test_flg & 0x02

    @property
    def usable(self) -> bool:
        """The standard's rule for a usable RESULT: TEST_FLG bits 0-5 (alarm, invalid,
        unreliable, timeout, not executed, aborted) and PARM_FLG bits 0-2 (scale error,
        drift, oscillation) are all clear. PAT should take only usable results."""
        return (self.value is not None and self.test_flg is not None
                and not self.test_flg & 0x3F and not (self.parm_flg or 0) & 0x07)

    @property
    def failed(self) -> bool | None:
        """TEST_FLG bit 7; None when bit 6 says there is no pass/fail indication."""
        if self.test_flg is None or self.test_flg & 0x40:
            return None
        return bool(self.test_flg & 0x80)


class PartValues(NamedTuple):
    """The usable results of one part, compactly (`parse(..., ptr="values")`): the test
    number and RESULT (float32, as stored) of each PTR that `PtrResult.usable` accepts and
    whose value is finite, in file order."""

    test_nums: array[int]
    values: array[float]


@dataclass(frozen=True, slots=True)
class TestDef:
    """A parametric test's defaults, set by the first PTR with its test number."""

    __test__ = False  # not a pytest test class, despite the name

    test_num: int
    name: str | None
    units: str | None
    lo: float | None
    hi: float | None
    spec_lo: float | None
    spec_hi: float | None


@dataclass(slots=True)
class Part:
    """One PRR with the PTR results that arrived between its PIR and itself."""

    head: int | None
    site: int | None
    flags: int | None
    num_tests: int | None
    hard_bin: int | None
    soft_bin: int | None
    x: int | None
    y: int | None
    test_time_ms: int | None
    part_id: str | None
    part_txt: str | None
    wafer_id: str | None
    passed: bool | None
    results: list[PtrResult] = field(default_factory=list)
    # The WIR/WRR the part was tested under (None outside any wafer), for the WRR check.
    wafer: Wafer | None = field(default=None, repr=False, compare=False)
    # The usable results, when read with ptr="values" (`results` is then empty).
    values: PartValues | None = field(default=None, repr=False)

    @property
    def good(self) -> bool:
        """Pass/fail of this PRR: PART_FLG bit 3 clear = pass; when bit 4 says "no pass/fail
        information" (passed is None) the hard bin decides, bin 1 = pass."""
        if self.passed is not None:
            return self.passed
        return self.hard_bin == 1


@dataclass(slots=True)
class Wafer:
    """A WIR with its WRR (None until the WRR is read)."""

    head: int | None
    wafer_id: str | None
    wir: dict[str, Any]
    wrr: dict[str, Any] | None = None


@dataclass(slots=True)
class StdfFile:
    """Everything `parse` keeps from a file. Records other than PIR/PRR/PTR are dicts keyed
    by their STDF field names with missing values as None; `tests` is filled when the PTRs
    were decoded (`ptr_decoded`: True or "values"), and `Part.results` (True) or
    `Part.values` ("values") with them."""

    byte_order: str
    size: int
    ptr_decoded: bool | str
    mir: dict[str, Any] = field(default_factory=dict)
    mrr: dict[str, Any] | None = None
    sdrs: list[dict[str, Any]] = field(default_factory=list)
    atrs: list[dict[str, Any]] = field(default_factory=list)
    wcr: dict[str, Any] | None = None
    wafers: list[Wafer] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    tests: dict[int, TestDef] = field(default_factory=dict)
    hbr: list[dict[str, Any]] = field(default_factory=list)
    sbr: list[dict[str, Any]] = field(default_factory=list)
    pcr: list[dict[str, Any]] = field(default_factory=list)
    tsr: list[dict[str, Any]] = field(default_factory=list)
    record_counts: dict[str, int] = field(default_factory=dict)
    orphan_ptrs: int = 0
    late_ptrs: int = 0
    warnings: list[str] = field(default_factory=list)


_GZIP_MAGIC = b"\x1f\x8b"


# Inflate in steps of at most this much output (and this much input): the temporary piece
# of each step is all the memory inflating takes beyond its output.
_STEP = 1 << 20


def inflate_chunks(chunks: Iterable[bytes | bytearray | memoryview], *,
                   limit: int | None = None) -> Iterator[bytes | bytearray | memoryview]:
    """The STDF stream of an upload that arrives in `chunks`, in pieces: plain input passes
    through as it is; gzip input (magic 1f 8b) has every member inflated, trailing NUL
    padding after the last one ignored. Nothing is held beyond one chunk and one piece of
    output (at most 1 MiB), so an upload of any size streams through.

    The output is bounded: more than `limit` bytes of gzip output (None: no limit) raises
    InflateLimitExceeded as soon as the limit is passed, after at most `limit` + 1 bytes.
    A corrupt, cut-short or trailing-garbage gzip stream raises StdfError with the offset in
    the compressed input.
    """
    source = iter(chunks)
    pending: bytes | bytearray | memoryview = b""
    more: bytes | bytearray | memoryview | None
    for chunk in source:
        pending = bytes(pending) + bytes(chunk) if pending else chunk
        if len(pending) >= 2:
            break
    if bytes(pending[:2]) != _GZIP_MAGIC:
        if pending:
            yield pending
        yield from source
        return
    pos = 0  # offset in the compressed input of pending's first byte
    out = 0
    while True:
        # Between members: another member, or NUL padding to the end.
        while len(pending) < 2:
            more = next(source, None)
            if more is None:
                break
            pending = bytes(pending) + bytes(more)
        if not pending:
            return
        if bytes(pending[:2]) != _GZIP_MAGIC:
            if bytes(pending).strip(b"\0") or any(bytes(c).strip(b"\0") for c in source):
                raise StdfError(f"unexpected data after the gzip stream at byte {pos}", pos)
            return
        member = pos
        inflater = zlib.decompressobj(wbits=31)
        while not inflater.eof:
            if not pending:
                more = next(source, None)
                if more is None:
                    raise StdfError(f"truncated gzip stream at byte {pos}", pos)
                pending = more
            room = _STEP if limit is None else min(_STEP, limit - out + 1)
            try:
                piece = inflater.decompress(pending, room)
            except zlib.error as exc:
                raise StdfError(
                    f"corrupt gzip stream in the member starting at byte {member}: {exc}",
                    member) from exc
            rest = inflater.unconsumed_tail or inflater.unused_data
            pos += len(pending) - len(rest)
            pending = rest
            out += len(piece)
            if limit is not None and out > limit:
                raise InflateLimitExceeded(limit)
            if piece:
                yield piece


def inflate(data: Buffer | memoryview, *, limit: int | None = None) -> Buffer:
    """The STDF stream of an upload held whole: `data` itself, or for gzip input every member
    inflated (`inflate_chunks`: trailing NUL padding ignored, the output bounded by `limit`,
    errors with the offset in the compressed input). The output grows in steps of at most
    1 MiB and never holds more than `limit` + 1 bytes.
    """
    if bytes(data[:2]) != _GZIP_MAGIC:
        return data if isinstance(data, bytes | bytearray | mmap.mmap) else bytes(data)
    out = bytearray()
    for piece in inflate_chunks((data[i:i + _STEP] for i in range(0, len(data), _STEP)),
                                limit=limit):
        out += piece
    return out


def _load(data: Buffer | memoryview | BinaryIO, limit: int | None) -> Buffer:
    if isinstance(data, str | PathLike):
        raise TypeError("parse() takes the file's content; use parse_file() for a path")
    raw = data if isinstance(data, bytes | bytearray | memoryview | mmap.mmap) else data.read()
    return inflate(raw, limit=limit)


def _byte_order(buf: Buffer) -> str:
    """Check the FAR and return the byte order it declares."""
    if not buf:
        raise StdfError("empty input: no FAR record at byte 0, not an STDF file", 0)
    if len(buf) < 4:
        raise StdfError("truncated record header at byte 0", 0)
    if buf[2] != 0 or buf[3] != 10:
        raise StdfError(
            f"not an STDF file: the record at byte 0 is type {buf[2]}/{buf[3]}, not a FAR (0/10)",
            0,
        )
    if len(buf) < 6:
        raise StdfError("truncated FAR record at byte 0", 0)
    cpu, version = buf[4], buf[5]
    if cpu == 0:
        raise StdfError("CPU_TYPE 0 (VAX/PDP byte order) at byte 4 is not supported", 4)
    if cpu not in (1, 2):
        raise StdfError(f"unknown CPU_TYPE {cpu} at byte 4", 4)
    if version != 4:
        raise StdfError(f"STDF version {version} at byte 5: only STDF V4 is supported", 5)
    return "big" if cpu == 1 else "little"


Reading = bool | Literal["values"]


def parse(data: Buffer | memoryview | BinaryIO, *, ptr: Reading = True,
          inflate_limit: int | None = None) -> StdfFile:
    """Read a whole STDF V4 file (plain or gzip) from bytes, a memory map (`mapped`) or a
    binary stream.

    With ``ptr=False`` (summary mode) PTR bodies are skipped by their length and only counted,
    so `tests` is empty and parts carry no results. With ``ptr="values"`` each part keeps
    only its usable results, compactly, in `Part.values` (the import's mode: a few bytes per
    PTR instead of an object); `tests` is filled as in full mode. PTRs belong to the part
    opened by the last PIR with the same HEAD_NUM/SITE_NUM and not yet closed by its PRR; a
    PTR while no part is open on its head and site belongs to the part whose PRR closed last
    there (testers that write the PIR after the PRR, counted in `late_ptrs`); one with no
    such part is counted in `orphan_ptrs`. Raises StdfError (with the byte offset) for input
    that is not STDF V4, is truncated, or holds a record type outside the V4 list;
    InflateLimitExceeded for gzip input inflating to more than `inflate_limit` bytes.
    """
    if ptr not in (True, False, "values"):
        raise ValueError(f"ptr must be True, False or 'values', not {ptr!r}")
    buf = _load(data, inflate_limit)
    order = _byte_order(buf)
    with paused_gc():
        return _read(buf, order, ptr)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector, as `parse` does while the reader runs. What it
    builds holds no reference cycles, so a collection finds nothing in it, but the objects
    of a big file (a few per part) would trigger full collections of the whole process'
    heap: 0.3 s and more for 100 MB. The collector runs again afterwards, unless it was off
    before (during another thread's read, say, which turns it back on when it ends)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_file(path: str | PathLike[str], *, ptr: Reading = True) -> StdfFile:
    """`parse` the file at `path` (plain files through a memory map, `mapped`)."""
    with open(path, "rb") as fh, mapped(fh) as buf:
        return parse(buf, ptr=ptr)


@contextmanager
def mapped(file: BinaryIO) -> Iterator[mmap.mmap | bytes]:
    """The whole content of a binary file on disk, mapped read-only for `parse` (b"" when
    the file is empty). Pages are read as the reader reaches them and handed back once it
    has passed them, so a file of any size costs a bounded resident memory."""
    if os.fstat(file.fileno()).st_size == 0:
        yield b""
        return
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        yield buf


# The reader hands the pages of a memory-mapped file back to the system in steps of this
# many bytes, once it has read past them (they stay in the page cache).
_RELEASE_STEP = 16 << 20


def _hand_back(buf: Buffer, start: int, pos: int) -> int:
    """Hand the pages of a mapped file from `start` up to `pos` back to the system (they
    stay in the page cache, and are read again from there if needed); returns where the
    next hand-back starts."""
    upto = pos - pos % mmap.PAGESIZE
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        buf.madvise(mmap.MADV_DONTNEED, start, upto - start)
    return upto


def _only_padding(buf: Buffer, pos: int) -> bool:
    """Everything from `pos` on is NUL bytes (block padding after the last record), looked
    at in steps (the padding may be long)."""
    return not any(buf[start:start + _STEP].strip(b"\0")
                   for start in range(pos, len(buf), _STEP))


def _ptr_slow(steps: tuple, buf: Buffer, body: int, end: int,
              tests: dict[int, TestDef]) -> tuple:
    """Decode an unusual or first-of-its-test PTR field by field.

    The first PTR of a test number sets the test's defaults (name, units, limits, spec
    limits). Later PTRs use the defaults unless they carry their own limits; OPT_FLAG bit 4/5
    ("LO/HI limit invalid") means "use the default", bit 6/7 means "no low/high limit".
    """
    d = _decode(steps, buf, body, end, "PTR")
    test_num = d["TEST_NUM"]
    opt = d["OPT_FLAG"]
    tdef = tests.get(test_num) if test_num is not None else None
    if tdef is None:
        lo = hi = None
        if opt is not None:
            lo = None if opt & 0x50 else d["LO_LIMIT"]
            hi = None if opt & 0xA0 else d["HI_LIMIT"]
        units = d["UNITS"]
        # The standard's "null override" for strings is one NUL byte.
        units = None if units == "\0" else units
        if test_num is not None:
            tests[test_num] = TestDef(
                test_num, d["TEST_TXT"], units, lo, hi,
                None if opt is None or opt & 0x04 else d["LO_SPEC"],
                None if opt is None or opt & 0x08 else d["HI_SPEC"],
            )
    elif opt is None:
        lo, hi = tdef.lo, tdef.hi
    else:
        rec_lo, rec_hi = d["LO_LIMIT"], d["HI_LIMIT"]
        lo = None if opt & 0x40 else tdef.lo if opt & 0x10 or rec_lo is None else rec_lo
        hi = None if opt & 0x80 else tdef.hi if opt & 0x20 or rec_hi is None else rec_hi
    return (test_num, d["HEAD_NUM"], d["SITE_NUM"], d["TEST_FLG"], d["PARM_FLG"], d["RESULT"],
            lo, hi)


def _read(buf: Buffer, order: str, ptr: Reading) -> StdfFile:
    """The record loop. Hot path: PTR (most records) then PIR/PRR; the rest is generic."""
    codec = _CODECS[order]
    steps = codec.steps
    header = codec.header.unpack_from
    ptr_head = codec.ptr_head.unpack_from
    ptr_opt = codec.ptr_opt.unpack_from
    prr_fixed = codec.prr.unpack_from
    ptr_steps = steps["PTR"]
    new_result = tuple.__new__
    full = ptr is True
    compact = ptr == "values"

    # What a part collects from its PTRs: PtrResults, or in compact mode PartValues.
    def new_slot() -> Any:
        return PartValues(array("I"), array("f")) if compact else []

    f = StdfFile(byte_order=order, size=len(buf), ptr_decoded=ptr)
    tests = f.tests
    tests_get = tests.get
    parts = f.parts
    counts: dict[tuple[int, int], int] = {}
    open_parts: dict[tuple[int | None, int | None], Any] = {}
    open_get = open_parts.get
    # The open parts that received a PTR since their PIR.
    with_ptr: set[tuple[int | None, int | None]] = set()
    # What the part each head/site closed last collects, for PTRs after their PRR.
    closed_parts: dict[tuple[int | None, int | None], Any] = {}
    wafer_of_head: dict[int | None, Wafer] = {}
    n_ptr = 0
    orphans = 0
    late = 0
    n = len(buf)
    # A memory-mapped file's pages are handed back once read (mapped()).
    released = 0
    release_at = _RELEASE_STEP if isinstance(buf, mmap.mmap) else n
    pos = 0
    while pos < n:
        if pos >= release_at:
            released = _hand_back(buf, released, pos)
            release_at = pos + _RELEASE_STEP
        if pos + 4 > n:
            if _only_padding(buf, pos):
                break  # block padding after the last record
            raise StdfError(f"truncated record header at byte {pos}", pos)
        rec_len, typ, sub = header(buf, pos)
        body = pos + 4
        end = body + rec_len
        if end > n:
            name = _NAMES.get((typ, sub))
            if name is None:
                raise StdfError(
                    f"record type {typ}/{sub} at byte {pos} is not an STDF V4 record type "
                    "(a corrupted record length?)", pos)
            raise StdfError(
                f"truncated {name} record at byte {pos}: {rec_len} bytes declared, "
                f"{n - body} present",
                pos,
            )
        if typ == 15 and sub == 10:
            n_ptr += 1
            if full:
                tdef = None
                if rec_len >= 12:
                    test_num, head, site, tflg, pflg, value = ptr_head(buf, body)
                    tdef = tests_get(test_num)
                if tdef is None:
                    test_num, head, site, tflg, pflg, value, lo, hi = _ptr_slow(
                        ptr_steps, buf, body, end, tests)
                else:
                    # Skip TEST_TXT and ALARM_ID without decoding them.
                    p = body + 12
                    if p < end:
                        p += 1 + buf[p]
                        if p < end:
                            p += 1 + buf[p]
                    if p == end:
                        lo = tdef.lo
                        hi = tdef.hi
                    elif p + 12 <= end:
                        opt, lo, hi = ptr_opt(buf, p)
                        if opt & 0x50:
                            lo = None if opt & 0x40 else tdef.lo
                        if opt & 0xA0:
                            hi = None if opt & 0x80 else tdef.hi
                    else:
                        test_num, head, site, tflg, pflg, value, lo, hi = _ptr_slow(
                            ptr_steps, buf, body, end, tests)
            elif compact:
                # The limits in force do not matter here: only the first PTR of a test
                # (its defaults) and unusual short ones are decoded field by field.
                if rec_len >= 12:
                    test_num, head, site, tflg, pflg, value = ptr_head(buf, body)
                    if test_num not in tests:
                        test_num, head, site, tflg, pflg, value, _, _ = _ptr_slow(
                            ptr_steps, buf, body, end, tests)
                else:
                    test_num, head, site, tflg, pflg, value, _, _ = _ptr_slow(
                        ptr_steps, buf, body, end, tests)
            else:
                pos = end
                continue
            site_key = (head, site)
            slot = open_get(site_key)
            if slot is None:
                slot = closed_parts.get(site_key)
                if slot is None:
                    orphans += 1
                else:
                    late += 1
            else:
                with_ptr.add(site_key)
            if slot is not None:
                if full:
                    slot.append(new_result(PtrResult, (test_num, value, tflg, pflg, lo, hi)))
                # PtrResult.usable, and a finite value (value - value is NaN otherwise).
                elif (value is not None and tflg is not None and not tflg & 0x3F
                      and not (pflg or 0) & 0x07 and test_num is not None
                      and value - value == 0.0):
                    slot[0].append(test_num)
                    slot[1].append(value)
            pos = end
            continue
        key = (typ, sub)
        counts[key] = counts.get(key, 0) + 1
        if typ == 5 and sub == 20:
            pid_end = body + 18 + buf[body + 17] if rec_len >= 18 else end + 1
            if pid_end <= end:
                head, site, flg, ntest, hbin, sbin, x, y, ttime = prr_fixed(buf, body)
                part_id = buf[body + 18:pid_end].decode("latin-1") or None
                txt_end = pid_end + 1 + buf[pid_end] if pid_end < end else end + 1
                part_txt = None
                if txt_end <= end:
                    part_txt = buf[pid_end + 1:txt_end].decode("latin-1") or None
                sbin = None if sbin == 65535 else sbin
                x = None if x == -32768 else x
                y = None if y == -32768 else y
                ttime = ttime or None
            else:
                d = _decode(steps["PRR"], buf, body, end, "PRR")
                head, site, flg, ntest = d["HEAD_NUM"], d["SITE_NUM"], d["PART_FLG"], d["NUM_TEST"]
                hbin, sbin, x, y = d["HARD_BIN"], d["SOFT_BIN"], d["X_COORD"], d["Y_COORD"]
                ttime, part_id, part_txt = d["TEST_T"], d["PART_ID"], d["PART_TXT"]
            # PART_FLG bit 4: no pass/fail information (Part.good then uses the hard bin).
            passed = None if flg is None or flg & 0x10 else not flg & 0x08
            wafer = wafer_of_head.get(head)
            site_key = (head, site)
            slot = open_parts.pop(site_key, None)
            if slot is None:
                slot = new_slot()
            with_ptr.discard(site_key)
            closed_parts[site_key] = slot
            parts.append(Part(
                head, site, flg, ntest, hbin, sbin, x, y, ttime, part_id, part_txt,
                wafer.wafer_id if wafer is not None else None, passed,
                [] if compact else slot, wafer, slot if compact else None,
            ))
        elif typ == 5 and sub == 10:
            if rec_len >= 2:
                site_key = (buf[body], buf[body + 1])
            else:
                d = _decode(steps["PIR"], buf, body, end, "PIR")
                site_key = (d["HEAD_NUM"], d["SITE_NUM"])
            if site_key in open_parts:
                f.warnings.append(
                    f"PIR at byte {pos} reopens head {site_key[0]} site {site_key[1]} "
                    "before its PRR: the earlier part's results are dropped")
            open_parts[site_key] = new_slot()
            with_ptr.discard(site_key)
        else:
            known = _NAMES.get(key)
            if known in steps:
                _store(f, known, _decode(steps[known], buf, body, end, known), wafer_of_head,
                       pos)
            elif key == (0, 0) and rec_len == 0 and _only_padding(buf, pos):
                counts.pop(key)
                break  # block padding after the last record
            elif known is None:
                raise StdfError(
                    f"record type {typ}/{sub} at byte {pos} is not an STDF V4 record type "
                    "(a corrupted record length?)", pos)
        pos = end

    f.orphan_ptrs = orphans
    f.late_ptrs = late
    # A tester that writes the PIR after the PRR leaves its last PIR open, with no results.
    unclosed = sum(1 for site_key in open_parts if site_key in with_ptr or not late)
    if f.mrr is None and unclosed:
        raise StdfError(
            f"truncated: no MRR, {unclosed} part{'s' if unclosed > 1 else ''} without a "
            f"result (PIR without PRR) at the end of the file, byte {n}", n)
    if unclosed:
        f.warnings.append(f"{unclosed} part(s) opened by PIR have no PRR")
    if f.mrr is None:
        f.warnings.append("no MRR: the file may be incomplete")
    record_counts = {"PTR": n_ptr} if n_ptr else {}
    for key, count in counts.items():
        name = _NAMES.get(key, f"REC_{key[0]}_{key[1]}")
        record_counts[name] = record_counts.get(name, 0) + count
    f.record_counts = dict(sorted(record_counts.items()))
    return f


def _store(f: StdfFile, name: str, rec: dict[str, Any], wafer_of_head: dict[int | None, Wafer],
           pos: int) -> None:
    """Keep one decoded summary/header record on the StdfFile."""
    if name == "MIR":
        if f.mir:
            f.warnings.append(f"second MIR at byte {pos} ignored")
        else:
            f.mir = rec
    elif name in ("HBR", "SBR"):
        pf = rec[name[0] + "BIN_PF"]
        # Only P and F mean something; lot3.stdf, for one, writes a NUL byte here.
        rec[name[0] + "BIN_PF"] = pf if pf in ("P", "F") else None
        (f.hbr if name == "HBR" else f.sbr).append(rec)
    elif name == "PCR":
        f.pcr.append(rec)
    elif name == "TSR":
        opt = rec["OPT_FLAG"]
        if opt is not None:
            for bit, fld in ((0x01, "TEST_MIN"), (0x02, "TEST_MAX"), (0x04, "TEST_TIM"),
                             (0x10, "TST_SUMS"), (0x20, "TST_SQRS")):
                if opt & bit:
                    rec[fld] = None
        f.tsr.append(rec)
    elif name == "SDR":
        f.sdrs.append(rec)
    elif name == "WIR":
        wafer = Wafer(rec["HEAD_NUM"], rec["WAFER_ID"], rec)
        f.wafers.append(wafer)
        wafer_of_head[rec["HEAD_NUM"]] = wafer
    elif name == "WRR":
        open_wafer = wafer_of_head.get(rec["HEAD_NUM"])
        if open_wafer is None or open_wafer.wrr is not None:
            f.warnings.append(f"WRR at byte {pos} without an open WIR")
        else:
            open_wafer.wrr = rec
    elif name == "WCR":
        f.wcr = rec
    elif name == "MRR":
        f.mrr = rec
    elif name == "ATR":
        f.atrs.append(rec)


def unit_key(part: Part, index: int) -> tuple:
    """The identity of the physical unit a PRR tested, to recognise retests.

    X/Y within the wafer (WAFER_ID of the open WIR, None without one) when both coordinates
    are present; else PART_ID within the head and site; else the PRR's own position `index`,
    so that an unidentifiable PRR is a unit of its own.
    """
    if part.x is not None and part.y is not None:
        return ("xy", part.wafer_id, part.x, part.y)
    if part.part_id is not None:
        return ("id", part.head, part.site, part.part_id)
    return ("prr", index)


@dataclass(frozen=True, slots=True)
class Summary:
    """The test-run counts of API.md, computed from the part records (PRR)."""

    lot_id: str | None
    sublot_id: str | None
    part_type: str | None
    job_name: str | None
    test_code: str | None
    temperature: str | None
    parts_tested: int
    good_results: int
    units: int
    retests: int
    first_pass_good: int
    final_good: int
    first_pass_fraction: Fraction | None
    final_fraction: Fraction | None
    first_pass_yield: float | None
    final_yield: float | None
    hard_bins: dict[int, int]
    soft_bins: dict[int, int]
    warnings: list[str]


def _percent(fraction: Fraction | None) -> float | None:
    return None if fraction is None else round(float(fraction * 100), 2)


class _Tally:
    """Counts of one set of part results, per summary scope: None = all sites, (head, site),
    and per wafer (WIR/WRR). `noun` names the set in warnings. Results are added grouped:
    `count` parts alike in bins, pass/fail, scope and wafer."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self.hard: dict[tuple, int] = {}
        self.soft: dict[tuple, int] = {}
        self.sites: dict[tuple | None, list[int]] = {}
        self.wafers: dict[int, list[int]] = {}

    def add(self, hard_bin: int | None, soft_bin: int | None, good: bool,
            scope: tuple | None, wafer: int | None, count: int) -> None:
        for where in (None, scope) if scope is not None else (None,):
            tally = self.sites.setdefault(where, [0, 0])
            tally[0] += count
            tally[1] += good * count
            for counter, bin_no in ((self.hard, hard_bin), (self.soft, soft_bin)):
                if bin_no is not None:
                    counter[(where, bin_no)] = counter.get((where, bin_no), 0) + count
        if wafer is not None:
            tally = self.wafers.setdefault(wafer, [0, 0])
            tally[0] += count
            tally[1] += good * count

    @classmethod
    def of(cls, noun: str, results: Iterable[tuple[Part, tuple | None]]) -> _Tally:
        """The tally of `results` (each a part and its scope); wafers are told apart by
        identity (`id`), as `wafers` keys them."""
        groups = Counter((part.hard_bin, part.soft_bin, part.good, scope,
                          None if part.wafer is None else id(part.wafer))
                         for part, scope in results)
        tally = cls(noun)
        for (hard_bin, soft_bin, good, scope, wafer), count in groups.items():
            tally.add(hard_bin, soft_bin, good, scope, wafer, count)
        return tally


def _site_scopes(f: StdfFile) -> dict[int | None, int | None]:
    """For PRRs whose HEAD_NUM is 255 (no head): the head the summary records name for
    their site, when they name exactly one; such PRRs count for that head and site."""
    heads: dict[int | None, set[int | None]] = {}
    for rec in (*f.hbr, *f.sbr, *f.pcr):
        if rec["HEAD_NUM"] != 255:
            heads.setdefault(rec["SITE_NUM"], set()).add(rec["HEAD_NUM"])
    return {site: next(iter(hs)) for site, hs in heads.items() if len(hs) == 1}


def summarise(f: StdfFile) -> Summary:
    """Count a file's part results the way the test-run API reports them.

    parts_tested = PRR count; good_results = PRRs that pass (`Part.good`); units = distinct
    `unit_key`s; first-pass good counts units whose first PRR passes, final good units whose
    last PRR passes; yields are percent of units rounded to 2 decimals (None without parts),
    the exact fractions are kept alongside. hard_bins/soft_bins count every PRR (a missing
    soft bin is not counted).

    `warnings` lists the tester's summary values (HBR/SBR counts, PCR and WRR PART_CNT and
    GOOD_CNT) that disagree with the part records. Testers count retested parts one of two
    ways, every PRR or each unit's final result: each summary field is compared with both,
    and warns only when it matches neither (the warning then names the closer one). Summary
    values that are "missing" are not compared. A PRR with HEAD_NUM 255 counts for the head
    the summaries name for its site.
    """
    first: dict[tuple, bool] = {}
    last: dict[tuple, tuple[Part, tuple | None]] = {}
    scoped: list[tuple[Part, tuple | None]] = []
    head_for_site = _site_scopes(f)
    for index, part in enumerate(f.parts):
        key = unit_key(part, index)
        head = part.head
        if head == 255:
            head = head_for_site.get(part.site, 255)
        result = (part, None if head == 255 else (head, part.site))
        if key not in first:
            first[key] = part.good
        last[key] = result
        scoped.append(result)
    every = _Tally.of("part records", scoped)

    units = len(first)
    first_good = sum(first.values())
    final_good = sum(part.good for part, _ in last.values())
    first_fraction = Fraction(first_good, units) if units else None
    final_fraction = Fraction(final_good, units) if units else None
    good_results = every.sites.get(None, [0, 0])[1]

    retested = units != len(f.parts)
    # Each unit's final result: the same as every part record when no unit was retested.
    final = _Tally.of("final results", last.values()) if retested else every
    warnings: list[str] = []
    for check in (lambda t: _check_bins("HBR", f.hbr, t.hard, t.noun),
                  lambda t: _check_bins("SBR", f.sbr, t.soft, t.noun),
                  lambda t: _check_pcr(f, t, "PART_CNT"),
                  lambda t: _check_pcr(f, t, "GOOD_CNT"),
                  lambda t: _check_wrr(f, t, "PART_CNT"),
                  lambda t: _check_wrr(f, t, "GOOD_CNT")):
        found = check(every)
        if found and retested:
            on_final = check(final)
            found = [] if not on_final else on_final if len(on_final) <= len(found) else found
        warnings += found

    mir = f.mir
    hard, soft = every.hard, every.soft
    return Summary(
        lot_id=mir.get("LOT_ID"),
        sublot_id=mir.get("SBLOT_ID"),
        part_type=mir.get("PART_TYP"),
        job_name=mir.get("JOB_NAM"),
        test_code=mir.get("TEST_COD"),
        temperature=mir.get("TST_TEMP"),
        parts_tested=len(f.parts),
        good_results=good_results,
        units=units,
        retests=len(f.parts) - units,
        first_pass_good=first_good,
        final_good=final_good,
        first_pass_fraction=first_fraction,
        final_fraction=final_fraction,
        first_pass_yield=_percent(first_fraction),
        final_yield=_percent(final_fraction),
        hard_bins={b: c for (s, b), c in sorted(hard.items(), key=_bin_order) if s is None},
        soft_bins={b: c for (s, b), c in sorted(soft.items(), key=_bin_order) if s is None},
        warnings=warnings,
    )


def _bin_order(item: tuple[tuple, int]) -> int:
    return item[0][1]


def _scope_text(scope: tuple | None) -> str:
    return "all sites" if scope is None else f"head {scope[0]} site {scope[1]}"


def _count_of(tally: _Tally, name: str) -> tuple[int, str]:
    """Index into a [tested, good] tally for PART_CNT / GOOD_CNT, and its words."""
    return (0, tally.noun) if name == "PART_CNT" else (1, "passing " + tally.noun)


def _check_pcr(f: StdfFile, tally: _Tally, name: str) -> list[str]:
    """Compare PCR PART_CNT or GOOD_CNT with the tally, per head/site or all sites."""
    index, what = _count_of(tally, name)
    warnings = []
    for rec in f.pcr:
        scope = None if rec["HEAD_NUM"] == 255 else (rec["HEAD_NUM"], rec["SITE_NUM"])
        actual = tally.sites.get(scope, (0, 0))[index]
        if rec[name] is not None and rec[name] != actual:
            warnings.append(f"PCR {_scope_text(scope)}: {name} {rec[name]}, {what} {actual}")
    return warnings


def _check_wrr(f: StdfFile, tally: _Tally, name: str) -> list[str]:
    """Compare WRR PART_CNT or GOOD_CNT with the tally of the parts under its WIR."""
    index, what = _count_of(tally, name)
    warnings = []
    for wafer in f.wafers:
        rec = wafer.wrr
        if rec is None or rec[name] is None:
            continue
        actual = tally.wafers.get(id(wafer), (0, 0))[index]
        if rec[name] != actual:
            warnings.append(f"WRR wafer {wafer.wafer_id or '(no id)'}: {name} {rec[name]}, "
                            f"{what} {actual}")
    return warnings


def _check_bins(label: str, records: list[dict[str, Any]],
                counted: Mapping[tuple, int], noun: str) -> list[str]:
    """Compare HBR/SBR counts with the counted results, per head/site and for HEAD_NUM 255
    (all)."""
    prefix = label[0] + "BIN_"
    claimed: dict[tuple, int] = {}
    for rec in records:
        if rec[prefix + "CNT"] is None or rec[prefix + "NUM"] is None:
            continue
        scope = None if rec["HEAD_NUM"] == 255 else (rec["HEAD_NUM"], rec["SITE_NUM"])
        # Several records for one bin and scope (e.g. one per wafer) add up.
        k = (scope, rec[prefix + "NUM"])
        claimed[k] = claimed.get(k, 0) + rec[prefix + "CNT"]
    warnings = []
    for (scope, bin_no), count in sorted(claimed.items(), key=_warning_order):
        actual = counted.get((scope, bin_no), 0)
        if count != actual:
            warnings.append(f"{label} {_scope_text(scope)} bin {bin_no}: "
                            f"summary {count}, {noun} {actual}")
    scopes = {scope for scope, _ in claimed}
    for (scope, bin_no), actual in sorted(counted.items(), key=_warning_order):
        if scope in scopes and (scope, bin_no) not in claimed:
            warnings.append(f"{label} {_scope_text(scope)} bin {bin_no}: "
                            f"no summary record, {noun} {actual}")
    return warnings


def _warning_order(item: tuple[tuple, int]) -> tuple:
    scope, bin_no = item[0]
    return (scope is not None, scope or (0, 0), bin_no)
