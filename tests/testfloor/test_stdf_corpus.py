"""The reader against pystdf on every public tester file of tests/data/stdf (see its README),
on the shared real files when they are there, and on the external files listed in
tests/data/stdf/external.csv when the folder MES_STDF_CORPUS names holds them: part records,
PTR values, the MIR fields the import uses, and for the external files the reader's counts
as the manifest records them. pystdf (GPL-2) is a test-only oracle: these tests skip
without it."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import struct
from pathlib import Path

import pytest

from mes.testfloor import stdf
from tests.helpers import refused
from tests.testfloor.helpers import STDF_DIR, lot_at_final_test

CORPUS = Path(__file__).resolve().parents[1] / "data" / "stdf"
# Files pystdf reads: compared with it field by field.
COMPARED = ["credence_d10_ft.std", "credence_d10_blue33.std", "semiate_far_wir.stdf"]
# Shared real files (outside the repository), compared when present.
SHARED = ["lot3.stdf", "credence_ft.std"]
# pystdf 1.4 stops on this file (its reader of the V4 record types written by libstdf's
# makestdf raises TypeError at the 21st record): our reader is checked against a walk over
# the record headers instead.
PYSTDF_CANNOT = ["libstdf_all_records.stdf"]
# The MIR fields the import uses.
MIR_FIELDS = ("LOT_ID", "SBLOT_ID", "PART_TYP", "JOB_NAM", "JOB_REV", "MODE_COD", "RTST_COD",
              "TST_TEMP", "NODE_NAM", "TSTR_TYP")
OCTET = {"Content-Type": "application/octet-stream"}
# Real tester files that may not be redistributed: the manifest names each (with its SHA-256,
# source and the reader's counts); the folder MES_STDF_CORPUS names holds them.
MANIFEST = CORPUS / "external.csv"
COUNTS = ("parts", "ptrs", "records", "orphans")
# How a manifest row is checked: against pystdf, by the walk over the record headers (files
# pystdf cannot read), or as a file the reader refuses (at the byte offset of the row).
CHECKS = ("pystdf", "walk", "refused")


def path_of(name: str) -> Path:
    path = CORPUS / name if name not in SHARED else STDF_DIR / name
    if not path.is_file():
        pytest.skip(f"STDF file not found: {path}")
    return path


def text(value):
    """pystdf gives raw strings where our reader gives None for a missing value (docs/stdf.md):
    an empty string, or a C*1 that is a space or NUL; NULs in strings are dropped."""
    if isinstance(value, str):
        if len(value) == 1 and value in " \0":
            return None
        value = value.replace("\0", "")
        return value or None
    return value


def number(value):
    """A float compared bit for bit (NaN included) via its float32 bytes; None stays None."""
    if value is None:
        return None
    return struct.pack("<f", value).hex() if not math.isnan(value) else "nan"


def passed_of(flg):
    """PART_FLG bit 4: no pass/fail indication (None); else bit 3 clear = pass."""
    if flg is None or flg & 0x10:
        return None
    return not flg & 0x08


class Oracle:
    """A pystdf sink: PTRs go to the open part of their head/site, else to the part whose
    PRR closed last there (as the reader does for testers that write PIR after PRR)."""

    def __init__(self, v4):
        self.v4 = v4
        self.mir = {}
        self.open = {}
        self.closed = {}
        self.parts = []
        self.orphans = 0
        self.counts = {}

    def after_send(self, source, data):
        rec_type, fields = data
        name = type(rec_type).__name__.upper()
        self.counts[name] = self.counts.get(name, 0) + 1
        row = dict(zip(rec_type.fieldNames, fields, strict=False))
        key = (row.get("HEAD_NUM"), row.get("SITE_NUM"))
        if rec_type is self.v4.mir:
            self.mir = row
        elif rec_type is self.v4.pir:
            self.open[key] = []
        elif rec_type is self.v4.ptr:
            results = self.open.get(key)
            if results is None:
                results = self.closed.get(key)
            if results is None:
                self.orphans += 1
            else:
                results.append((row["TEST_NUM"], number(row["RESULT"]), row["TEST_FLG"]))
        elif rec_type is self.v4.prr:
            results = self.open.pop(key, [])
            self.closed[key] = results
            x, y = row["X_COORD"], row["Y_COORD"]
            flg = row["PART_FLG"]
            passed = passed_of(flg)
            hard = row["HARD_BIN"]
            self.parts.append({
                "head": row["HEAD_NUM"], "site": row["SITE_NUM"], "hard_bin": hard,
                "soft_bin": None if row["SOFT_BIN"] == 65535 else row["SOFT_BIN"],
                "x": None if x == -32768 else x, "y": None if y == -32768 else y,
                "part_id": text(row["PART_ID"]), "passed": passed,
                "good": passed if passed is not None else hard == 1,
                "results": results})


def pystdf_read(path: Path) -> Oracle:
    pystdf_io = pytest.importorskip("pystdf.IO")
    v4 = pytest.importorskip("pystdf.V4")
    oracle = Oracle(v4)
    with open(path, "rb") as fh:
        parser = pystdf_io.Parser(inp=fh)
        parser.addSink(oracle)
        parser.parse()
    return oracle


def ours(f: stdf.StdfFile) -> list[dict]:
    return [{"head": p.head, "site": p.site, "hard_bin": p.hard_bin, "soft_bin": p.soft_bin,
             "x": p.x, "y": p.y, "part_id": p.part_id, "passed": p.passed, "good": p.good,
             "results": [(r.test_num, number(r.value), r.test_flg) for r in p.results]}
            for p in f.parts]


def digest(parts: list[dict]) -> str:
    """One hash over every part's PTR results, for a readable failure message."""
    return hashlib.sha256(repr([p["results"] for p in parts]).encode()).hexdigest()


def matches_pystdf(path: Path) -> stdf.StdfFile:
    """The reader's parts, PTR values, record counts, orphans and MIR fields are pystdf's."""
    oracle = pystdf_read(path)
    f = stdf.parse_file(path)
    mine = ours(f)
    assert len(mine) == len(oracle.parts) == oracle.counts.get("PRR", 0)
    assert f.record_counts.get("PTR", 0) == oracle.counts.get("PTR", 0)
    assert f.orphan_ptrs == oracle.orphans
    assert digest(mine) == digest(oracle.parts)
    for i, (a, b) in enumerate(zip(mine, oracle.parts, strict=True)):
        assert a == b, f"part {i} of {path.name}"
    assert {k: text(f.mir.get(k)) for k in MIR_FIELDS} == \
        {k: text(oracle.mir.get(k)) for k in MIR_FIELDS}
    assert f.record_counts == oracle.counts
    return f


@pytest.mark.parametrize("name", COMPARED + SHARED)
def test_reader_matches_pystdf(name):
    matches_pystdf(path_of(name))


def walk(data: bytes, order: str) -> dict[str, int]:
    """Record counts from the record headers alone (REC_LEN, REC_TYP, REC_SUB)."""
    names = {(t, s): n for n, (t, s, _) in stdf.RECORD_FIELDS.items()} | stdf._OTHER_NAMES
    counts: dict[str, int] = {}
    pos = 0
    while pos < len(data):
        length, typ, sub = struct.unpack_from(("<" if order == "little" else ">") + "HBB",
                                              data, pos)
        counts[names[typ, sub]] = counts.get(names[typ, sub], 0) + 1
        pos += 4 + length
    assert pos == len(data)
    return counts


def read_consistently(data: bytes) -> stdf.StdfFile:
    """For a file pystdf cannot read: the reader's record counts are a walk over the record
    headers, every PTR is in a part or an orphan, and reading is repeatable."""
    f = stdf.parse(data)
    assert f.record_counts == walk(data, f.byte_order)
    assert len(f.parts) == f.record_counts["PRR"]
    # Every PTR is accounted for: in a part's results or counted as an orphan.
    assert sum(len(p.results) for p in f.parts) + f.orphan_ptrs == f.record_counts["PTR"]
    # Reading is deterministic, and summary mode gives the same parts.
    assert ours(stdf.parse(data)) == ours(f)
    brief = stdf.parse(data, ptr=False)
    assert [(p.hard_bin, p.soft_bin, p.passed) for p in brief.parts] == \
        [(p.hard_bin, p.soft_bin, p.passed) for p in f.parts]
    return f


@pytest.mark.parametrize("name", PYSTDF_CANNOT)
def test_file_pystdf_cannot_read_is_read_consistently(name):
    path = path_of(name)
    pystdf_io = pytest.importorskip("pystdf.IO")
    with open(path, "rb") as fh, pytest.raises(TypeError):
        pystdf_io.Parser(inp=fh).parse()
    read_consistently(path.read_bytes())


# --- external real files (MES_STDF_CORPUS) ---------------------------------------------------

def manifest() -> list[dict[str, str]]:
    with MANIFEST.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


EXTERNAL = manifest()


def external_path(row: dict[str, str]) -> Path:
    folder = os.environ.get("MES_STDF_CORPUS")
    if not folder:
        pytest.skip("MES_STDF_CORPUS is not set: the external STDF files of "
                    "tests/data/stdf/external.csv are not compared")
    path = Path(folder) / row["file"]
    if not path.is_file():
        pytest.skip(f"external STDF file not found: {path} (tests/data/stdf/README.md says "
                    f"where to get it)")
    return path


def counts_of(f: stdf.StdfFile) -> dict[str, int]:
    return {"parts": len(f.parts), "ptrs": f.record_counts.get("PTR", 0),
            "records": sum(f.record_counts.values()), "orphans": f.orphan_ptrs}


@pytest.mark.parametrize("row", EXTERNAL, ids=[row["file"] for row in EXTERNAL])
def test_external_file(row):
    """The manifest's file, byte for byte, read with the reader's counts unchanged and as
    pystdf reads it (or consistently, or refused where the manifest says so)."""
    path = external_path(row)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["sha256"], \
        f"{path} is not the manifest's file (SHA-256 differs)"
    if row["check"] == "refused":
        with pytest.raises(stdf.StdfError) as refusal:
            stdf.parse(data)
        assert refusal.value.offset == int(row["refused_at"])
        return
    # The reader's counts first: they are checked with or without pystdf.
    assert counts_of(stdf.parse(data)) == {k: int(row[k]) for k in COUNTS}
    if row["check"] == "pystdf":
        matches_pystdf(path)
    else:
        read_consistently(data)


def test_external_manifest_is_complete():
    """Every row names a distinct file with its hash, size, how it is checked, the reader's
    counts and where it comes from; the README lists each with its source."""
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    names = [row["file"] for row in EXTERNAL]
    assert len(names) == len(set(names))
    assert not set(names) & {p.name for p in CORPUS.iterdir()}
    for row in EXTERNAL:
        assert len(row["sha256"]) == 64 and int(row["sha256"], 16) >= 0
        assert int(row["size"]) > 0
        assert row["check"] in CHECKS
        if row["check"] == "refused":
            assert int(row["refused_at"]) >= 0
        else:
            assert all(int(row[k]) >= 0 for k in COUNTS)
        assert row["platform"] and row["repo"] and row["path"] and row["licence"]
        assert len(row["commit"]) == 40 and int(row["commit"], 16) >= 0
        assert f"`{row['file']}`" in readme


# --- through the API ------------------------------------------------------------------------

@pytest.fixture
def op(api):
    return api("operator")


@pytest.mark.usefixtures("plant")
@pytest.mark.parametrize("name", ["credence_d10_ft.std", "libstdf_all_records.stdf"])
def test_corpus_file_imports_with_the_readers_counts(op, session, name):
    """A lot at final test of a product with no released program takes the file: 201, and
    the run's counts are the reader's."""
    lot_at_final_test(session, "LOT-C", 2000)
    data = path_of(name).read_bytes()
    resp = op.post("/lots/LOT-C/stdf", data=data, headers=OCTET)
    assert resp.status_code == 201, resp.get_json()
    run = resp.get_json()
    s = stdf.summarise(stdf.parse(data))
    assert (run["parts_tested"], run["units"], run["first_pass_good"], run["final_good"]) == \
        (s.parts_tested, s.units, s.first_pass_good, s.final_good)
    assert {int(k): v for k, v in run["hard_bins"].items()} == s.hard_bins
    assert {int(k): v for k, v in run["soft_bins"].items()} == s.soft_bins


@pytest.mark.usefixtures("plant")
def test_corpus_file_without_parts_is_refused_and_stores_nothing(op, session):
    lot_at_final_test(session, "LOT-C", 2000)
    data = path_of("semiate_far_wir.stdf").read_bytes()
    assert stdf.parse(data).parts == []
    refused(session, lambda: op.post("/lots/LOT-C/stdf", data=data, headers=OCTET), 422,
            "no_parts")


# --- the corpus itself ----------------------------------------------------------------------

def test_every_corpus_file_is_listed_in_the_readme_with_its_size_and_hash():
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    files = sorted(p for p in CORPUS.iterdir()
                   if p.is_file() and p.name not in ("README.md", MANIFEST.name))
    assert [p.name for p in files] == sorted(COMPARED + PYSTDF_CANNOT)
    for p in files:
        data = p.read_bytes()
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{p.name}`"))
        assert f"| {len(data):,} |" in row
        assert f"`{hashlib.sha256(data).hexdigest()}`" in row
        assert len(data) < 2_000_000
    assert sum(p.stat().st_size for p in files) < 15_000_000
