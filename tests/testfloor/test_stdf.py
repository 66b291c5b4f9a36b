"""STDF V4 reader and writer: files written here, plus the two real files of shared/data/stdf."""

from __future__ import annotations

import dataclasses
import gc
import gzip
import io
import math
import mmap
import random
import struct
import tracemalloc

import pytest

from mes.testfloor.stdf import (
    InflateLimitExceeded,
    StdfError,
    inflate,
    inflate_chunks,
    mapped,
    parse,
    parse_file,
    paused_gc,
    summarise,
    unit_key,
)
from mes.testfloor.stdf_writer import (
    PartSpec,
    TestSpec,
    encode_record,
    raw_record,
    write_stdf,
)
from tests.testfloor.helpers import STDF_DIR, where_stdf

MIR = {"LOT_ID": "L1", "PART_TYP": "DEV", "JOB_NAM": "prog", "SBLOT_ID": "S1",
       "TEST_COD": "FT1", "TST_TEMP": "125"}
TESTS = {100: TestSpec("vout", "V", 1.0, 2.0, 0.5, 2.5), 200: TestSpec("idd", "A", None, 0.01)}


def stdf(parts, **kw):
    kw.setdefault("mir", MIR)
    kw.setdefault("tests", TESTS)
    return write_stdf(None, parts=parts, **kw)


def ptr_tail(*, byte_order="little", **fields):
    """A PTR record with the mandatory leading fields filled in."""
    base = {"TEST_NUM": 100, "HEAD_NUM": 1, "SITE_NUM": 0, "TEST_FLG": 0, "PARM_FLG": 0,
            "RESULT": 1.5}
    return encode_record("PTR", base | fields, byte_order=byte_order)


def mrr_len(byte_order="little"):
    return len(encode_record("MRR", {"FINISH_T": 0}, byte_order=byte_order))


def records(data, byte_order="little"):
    """(offset, REC_TYP, REC_SUB) of every record, walking the headers."""
    order = "<" if byte_order == "little" else ">"
    out, pos = [], 0
    while pos < len(data):
        length, typ, sub = struct.unpack_from(order + "HBB", data, pos)
        out.append((pos, typ, sub))
        pos += 4 + length
    return out


# --- the real files -------------------------------------------------------------------------

def real(name):
    path = STDF_DIR / name
    if not path.is_file():
        pytest.skip(where_stdf(name))
    return path


@pytest.fixture(scope="module")
def lot3():
    return parse_file(real("lot3.stdf"))


@pytest.fixture(scope="module")
def credence():
    return parse_file(real("credence_ft.std"))


def test_lot3_header_and_counts_match_the_reference(lot3):
    mir = lot3.mir
    assert (mir["LOT_ID"], mir["SBLOT_ID"], mir["PART_TYP"], mir["JOB_NAM"], mir["TEST_COD"]) \
        == ("GAL-LOT", "03", "GOLD8BAR", "mobile-05", "E38")
    assert lot3.byte_order == "big"
    assert lot3.record_counts["PTR"] == 54123
    assert lot3.record_counts["PRR"] == 1619
    s = summarise(lot3)
    assert s.parts_tested == 1619
    assert s.good_results == 1378
    assert s.hard_bins == {1: 1378, 2: 58, 4: 8, 5: 16, 7: 2, 8: 71, 9: 1, 10: 20, 16: 2,
                           17: 8, 20: 55}
    assert s.units == 1456
    assert (s.first_pass_good, s.first_pass_yield) == (1294, 88.87)
    assert (s.final_good, s.final_yield) == (1377, 94.57)
    # PCR/WRR GOOD_CNT are "missing" and HBR's pass/fail is NUL: nothing to disagree with.
    assert s.warnings == []
    assert lot3.pcr[0]["GOOD_CNT"] is None
    assert {r["HBIN_PF"] for r in lot3.hbr} == {None}


def test_lot3_every_ptr_belongs_to_a_part(lot3):
    assert lot3.orphan_ptrs == 0
    assert sum(len(p.results) for p in lot3.parts) == 54123
    assert lot3.wafers[0].wafer_id == "GAL-LOT-03"
    assert lot3.wafers[0].wrr["GOOD_CNT"] is None


def test_lot3_summary_mode_counts_the_same_without_ptr_results(lot3):
    fast = parse_file(real("lot3.stdf"), ptr=False)
    assert fast.record_counts == lot3.record_counts
    assert fast.tests == {}
    assert all(not p.results for p in fast.parts)
    assert summarise(fast) == summarise(lot3)


def test_credence_final_test_file_matches_the_reference(credence):
    mir = credence.mir
    assert (mir["LOT_ID"], mir["SBLOT_ID"], mir["PART_TYP"], mir["JOB_NAM"], mir["TST_TEMP"],
            mir["PKG_TYP"]) == ("F6N910.1", "301805009", "spm3f_dual", "spm3f_final", "25",
                                "QFN")
    assert credence.byte_order == "little"
    s = summarise(credence)
    assert s.parts_tested == 22
    assert sorted({p.site for p in credence.parts}) == [0, 1]
    assert all(p.x is None and p.y is None and p.part_id for p in credence.parts)
    assert s.units == 22
    assert (s.first_pass_good, s.final_good, s.final_yield) == (0, 0, 0.0)
    assert s.hard_bins == {2: 12, 4: 10}
    assert s.soft_bins == {2: 10, 30: 12}
    assert s.warnings == []


def test_credence_ptrs_follow_their_site(credence):
    first_two = credence.parts[:2]
    assert [(p.site, len(p.results)) for p in first_two] == [(0, 26), (1, 26)]
    assert credence.tests[10].name == "Contact_C1"
    assert credence.tests[10].units == "V"


def test_ptr_results_agree_with_pystdf(lot3):
    pystdf_io = pytest.importorskip("pystdf.IO")
    v4 = pytest.importorskip("pystdf.V4")

    class Sink:
        def __init__(self):
            self.open = {}
            self.parts = []

        def after_send(self, source, data):
            rec_type, fields = data
            row = dict(zip(rec_type.fieldNames, fields, strict=False))
            key = (row.get("HEAD_NUM"), row.get("SITE_NUM"))
            if rec_type is v4.pir:
                self.open[key] = []
            elif rec_type is v4.ptr:
                self.open[key].append((row["TEST_NUM"], row["RESULT"], row["TEST_FLG"]))
            elif rec_type is v4.prr:
                self.parts.append((row["HARD_BIN"], row["X_COORD"], self.open.pop(key)))

    sink = Sink()
    with open(real("lot3.stdf"), "rb") as fh:
        parser = pystdf_io.Parser(inp=fh)
        parser.addSink(sink)
        parser.parse()
    ours = [(p.hard_bin, p.x, [(r.test_num, r.value, r.test_flg) for r in p.results])
            for p in lot3.parts]
    assert ours == sink.parts


# --- byte order, sites, parts ---------------------------------------------------------------

@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_both_byte_orders_read_the_same(byte_order):
    parts = [PartSpec(hard_bin=1, soft_bin=1, x=1, y=2, part_id="7",
                      results=[(100, 1.25), (200, -0.5)]),
             PartSpec(hard_bin=3, soft_bin=31, passed=False, x=-4, y=5, results=[(100, 3.0)])]
    f = parse(stdf(parts, byte_order=byte_order))
    assert f.byte_order == byte_order
    assert f.mir["LOT_ID"] == "L1"
    assert [(p.x, p.y, p.hard_bin, p.soft_bin, p.passed) for p in f.parts] == \
        [(1, 2, 1, 1, True), (-4, 5, 3, 31, False)]
    assert [(r.test_num, r.value) for r in f.parts[0].results] == [(100, 1.25), (200, -0.5)]
    assert f.parts[1].results[0].lo == 1.0
    assert f.tests[100].spec_lo == 0.5
    assert f.tests[200].lo is None and f.tests[200].hi == pytest.approx(0.01)


def test_interleaved_sites_get_their_own_ptrs():
    parts = [PartSpec(site=s, head=h, part_id=f"{h}-{s}", results=[(100, h * 10 + s),
                                                                    (200, -(h * 10 + s))])
             for h in (1, 2) for s in (0, 1, 2)]
    data = stdf(parts, interleave=True)
    f = parse(data)
    assert [(p.head, p.site) for p in f.parts] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    for p in f.parts:
        assert [r.value for r in p.results] == [p.head * 10 + p.site, -(p.head * 10 + p.site)]
    # One parallel insertion: all PIRs, the PTRs round-robin over the sites, then all PRRs.
    kinds = {(5, 10): "PIR", (15, 10): "PTR", (5, 20): "PRR"}
    order = [kinds[t, s] for _, t, s in records(data) if (t, s) in kinds]
    assert order == ["PIR"] * 6 + ["PTR"] * 12 + ["PRR"] * 6


def test_retest_at_same_xy_counts_first_result_for_first_pass_and_last_for_final():
    parts = [PartSpec(x=0, y=0, hard_bin=5, passed=False),
             PartSpec(x=1, y=0),
             PartSpec(x=2, y=0, hard_bin=5, passed=False),
             PartSpec(x=0, y=0),                        # retest passes
             PartSpec(x=2, y=0, hard_bin=6, passed=False),  # retest fails again
             PartSpec(x=1, y=0)]                        # a good die tested twice
    s = summarise(parse(stdf(parts)))
    assert (s.parts_tested, s.units, s.retests) == (6, 3, 3)
    assert (s.first_pass_good, s.final_good) == (1, 2)
    assert (s.first_pass_yield, s.final_yield) == (33.33, 66.67)
    assert s.first_pass_fraction * 3 == 1
    assert s.hard_bins == {1: 3, 5: 2, 6: 1}


def test_same_xy_on_another_wafer_is_another_unit():
    parts = [PartSpec(x=0, y=0, wafer="W1", passed=False, hard_bin=2),
             PartSpec(x=0, y=0, wafer="W2"),
             PartSpec(x=0, y=0, wafer="W1")]            # W1 probed again
    f = parse(stdf(parts))
    assert [w.wafer_id for w in f.wafers] == ["W1", "W2", "W1"]
    assert [w.wrr["PART_CNT"] for w in f.wafers] == [1, 1, 1]
    s = summarise(f)
    assert (s.units, s.first_pass_good, s.final_good) == (2, 1, 2)


def test_retest_by_part_id_is_per_head_and_site():
    parts = [PartSpec(site=0, part_id="A", passed=False, hard_bin=2),
             PartSpec(site=1, part_id="A"),             # same ID, other site: other unit
             PartSpec(site=0, part_id="A")]             # retest of site 0's part A
    f = parse(stdf(parts))
    assert unit_key(f.parts[0], 0) == unit_key(f.parts[2], 2) != unit_key(f.parts[1], 1)
    s = summarise(f)
    assert (s.units, s.first_pass_good, s.final_good) == (2, 1, 2)


def test_xy_wins_over_part_id_and_unidentified_parts_are_units_of_their_own():
    parts = [PartSpec(x=3, y=3, part_id="1"), PartSpec(x=3, y=3, part_id="2"),
             PartSpec(), PartSpec()]
    s = summarise(parse(stdf(parts)))
    assert (s.parts_tested, s.units) == (4, 3)


def test_no_pass_fail_bit_falls_back_to_hard_bin_1():
    parts = [PartSpec(passed=None, hard_bin=1), PartSpec(passed=None, hard_bin=7),
             PartSpec(passed=False, hard_bin=1)]  # bit 3 wins over the bin when valid
    f = parse(stdf(parts))
    assert [p.passed for p in f.parts] == [None, None, False]
    assert [p.flags & 0x18 for p in f.parts] == [0x10, 0x10, 0x08]
    assert [p.good for p in f.parts] == [True, False, False]
    assert summarise(f).good_results == 1


def test_zero_yield_lot():
    s = summarise(parse(stdf([PartSpec(x=i, y=0, passed=False, hard_bin=9) for i in range(5)])))
    assert (s.units, s.first_pass_good, s.final_good) == (5, 0, 0)
    assert (s.first_pass_yield, s.final_yield) == (0.0, 0.0)


def test_file_without_parts_has_no_yield():
    s = summarise(parse(stdf([])))
    assert (s.parts_tested, s.units, s.first_pass_yield, s.final_yield) == (0, 0, None, None)


def test_summary_mode_skips_ptr_bodies_but_counts_them():
    parts = [PartSpec(results=[(100, 1.5), (200, 0.0)]), PartSpec(results=[(100, 1.6)])]
    f = parse(stdf(parts), ptr=False)
    assert f.record_counts["PTR"] == 3
    assert f.tests == {} and all(p.results == [] for p in f.parts)
    assert [p.num_tests for p in f.parts] == [2, 1]


# --- refusals -------------------------------------------------------------------------------

def test_truncated_record_body_names_its_offset():
    data = stdf([PartSpec(results=[(100, 1.5)])])
    cut = data[:-2]
    start = len(data) - mrr_len()
    with pytest.raises(StdfError, match=f"truncated MRR record at byte {start}") as exc:
        parse(cut)
    assert exc.value.offset == start


def test_truncated_inside_a_ptr():
    data = stdf([PartSpec(results=[(100, 1.5)])], byte_order="big")
    start = next(pos for pos, typ, sub in records(data, "big") if (typ, sub) == (15, 10))
    with pytest.raises(StdfError, match=f"truncated PTR record at byte {start}") as exc:
        parse(data[:start + 9])
    assert exc.value.offset == start


def test_truncated_record_header():
    data = stdf([])
    with pytest.raises(StdfError, match=f"truncated record header at byte {len(data)}") as exc:
        parse(data + b"\x05\x00")
    assert exc.value.offset == len(data)


def test_trailing_nul_padding_is_accepted():
    data = stdf([PartSpec()])
    assert len(parse(data + b"\0" * 7).parts) == 1
    assert len(parse(data + b"\0" * 512).parts) == 1


@pytest.mark.parametrize(("data", "message", "offset"), [
    (b"", "empty input", 0),
    (b"\x02\x00", "truncated record header at byte 0", 0),
    (b"%PDF-1.4 not a tester file", "not an STDF file.*at byte 0", 0),
    (b"\x02\x00\x00\x0a\x02", "truncated FAR record at byte 0", 0),
    (b"\x02\x00\x00\x0a\x00\x04", "CPU_TYPE 0 .*at byte 4", 4),
    (b"\x02\x00\x00\x0a\x07\x04", "unknown CPU_TYPE 7 at byte 4", 4),
    (b"\x02\x00\x00\x0a\x02\x03", "STDF version 3 at byte 5", 5),
])
def test_input_that_is_not_stdf_v4_is_refused(data, message, offset):
    with pytest.raises(StdfError, match=message) as exc:
        parse(data)
    assert exc.value.offset == offset


def test_a_path_is_not_taken_for_content():
    with pytest.raises(TypeError, match="parse_file"):
        parse("lot3.stdf")


# --- gzip and streams -----------------------------------------------------------------------

def test_gzip_input_is_read_transparently(tmp_path):
    plain = stdf([PartSpec(x=1, y=1, results=[(100, 1.5)])])
    packed = stdf([PartSpec(x=1, y=1, results=[(100, 1.5)])], compress=True)
    assert packed[:2] == b"\x1f\x8b" and gzip.decompress(packed) == plain
    path = tmp_path / "lot.stdf.gz"
    path.write_bytes(packed)
    assert parse_file(path).parts == parse(plain).parts
    assert parse(io.BytesIO(packed)).parts == parse(plain).parts


def test_truncated_gzip_is_refused_with_offset():
    packed = stdf([PartSpec()], compress=True)
    with pytest.raises(StdfError, match=f"truncated gzip stream at byte {len(packed) - 10}"):
        parse(packed[:-10])


def test_gzip_of_a_non_stdf_file_is_refused():
    with pytest.raises(StdfError, match="not an STDF file"):
        parse(gzip.compress(b"hello, world"))


def test_corrupt_gzip_is_refused():
    packed = bytearray(stdf([PartSpec()], compress=True))
    packed[12:20] = b"\xff" * 8
    with pytest.raises(StdfError, match="gzip"):
        parse(bytes(packed))


def test_writer_writes_to_a_path_or_a_stream(tmp_path):
    path = tmp_path / "x.stdf"
    data = write_stdf(path, mir=MIR, parts=[PartSpec()])
    buffer = io.BytesIO()
    write_stdf(buffer, mir=MIR, parts=[PartSpec()])
    assert path.read_bytes() == data == buffer.getvalue()


@pytest.mark.parametrize("order", ["little", "big"])
def test_good_units_are_the_bytes_of_the_same_parts(order):
    """A lot's passing units written in bulk: the same file as written part by part."""
    tests = {7: TestSpec("VREF", "V", 1.0, 2.0), 9: TestSpec("IDDQ")}
    fails = [PartSpec(hard_bin=4, soft_bin=40, passed=False, part_id="1",
                      results=[(9, 3.5, 0x80)])]
    values = [(1.25 + k / 100, 12.0 - k) for k in range(5)]
    bulk = write_stdf(None, mir=MIR, parts=fails, tests=tests, byte_order=order,
                      good_units=values, unit_tests=[7, 9])
    parts = fails + [PartSpec(hard_bin=1, soft_bin=1, part_id=str(k + 2),
                              results=[(7, v7), (9, v9)])
                     for k, (v7, v9) in enumerate(values)]
    assert bulk == write_stdf(None, mir=MIR, parts=parts, tests=tests, byte_order=order)
    s = summarise(parse(bulk))
    assert (s.units, s.final_good, s.hard_bins, s.warnings) == (6, 5, {1: 5, 4: 1}, [])


# --- optional fields, missing values, unknown records ---------------------------------------

def test_optional_trailing_fields_omitted_read_as_none():
    records = [
        raw_record(0, 10, bytes([2, 4])),
        encode_record("MIR", {"SETUP_T": 1, "START_T": 2, "STAT_NUM": 1, "MODE_COD": "P",
                              "RTST_COD": None, "PROT_COD": None, "BURN_TIM": None,
                              "CMOD_COD": None, "LOT_ID": "SHORT"}),
        encode_record("SDR", {"HEAD_NUM": 1, "SITE_GRP": 0, "SITE_CNT": 2, "SITE_NUM": [0, 1],
                              "HAND_TYP": "h", "HAND_ID": "H-7"}),
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}),
        ptr_tail(),  # ends after RESULT
        encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_FLG": 0, "NUM_TEST": 1,
                              "HARD_BIN": 1}),  # ends after HARD_BIN
        encode_record("HBR", {"HEAD_NUM": 255, "SITE_NUM": 0, "HBIN_NUM": 1, "HBIN_CNT": 1}),
        encode_record("MRR", {"FINISH_T": 9}),
    ]
    f = parse(b"".join(records))
    assert f.mir["LOT_ID"] == "SHORT"
    assert f.mir["PART_TYP"] is None and f.mir["SUPR_NAM"] is None
    assert f.mir["BURN_TIM"] is None and f.mir["RTST_COD"] is None and f.mir["MODE_COD"] == "P"
    assert f.sdrs[0]["SITE_NUM"] == [0, 1]
    assert f.sdrs[0]["HAND_ID"] == "H-7" and f.sdrs[0]["LOAD_ID"] is None
    part = f.parts[0]
    assert (part.hard_bin, part.soft_bin, part.x, part.y, part.part_id) == (1, None, None, None,
                                                                            None)
    assert f.tests[100].lo is None and f.tests[100].name is None
    assert part.results[0].value == 1.5
    assert f.hbr[0]["HBIN_PF"] is None and f.hbr[0]["HBIN_NAM"] is None
    assert f.mrr["DISP_COD"] is None
    assert summarise(f).warnings == []


def test_a_record_shorter_than_its_fixed_fields():
    records = [
        raw_record(0, 10, bytes([2, 4])),
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}),
        encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_FLG": 0}),
        raw_record(5, 10, b""),  # PIR without fields
        raw_record(5, 20, b""),
    ]
    f = parse(b"".join(records))
    assert [(p.head, p.hard_bin, p.passed) for p in f.parts] == [(1, None, True),
                                                               (None, None, None)]
    assert [p.good for p in f.parts] == [True, False]
    assert "no MRR" in f.warnings[0]


def test_a_string_that_overruns_its_record_ends_the_record():
    body = encode_record("MIR", {"SETUP_T": 0, "LOT_ID": "L"})[4:]
    bad = raw_record(1, 10, body[:-2] + bytes([40]) + b"x")  # LOT_ID claims 40 bytes
    f = parse(raw_record(0, 10, bytes([2, 4])) + bad)
    assert f.mir["SETUP_T"] == 0 and f.mir["LOT_ID"] is None and f.mir["PART_TYP"] is None


def test_missing_sentinels_read_as_none():
    records = [
        raw_record(0, 10, bytes([1, 4]), byte_order="big"),
        encode_record("WCR", {"WAFR_SIZ": 0.0, "DIE_HT": 0.0, "DIE_WID": 0.0, "WF_UNITS": 0,
                              "WF_FLAT": " ", "CENTER_X": -32768, "CENTER_Y": 4},
                      byte_order="big"),
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}, byte_order="big"),
        encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_FLG": 0, "NUM_TEST": 0,
                              "HARD_BIN": 1, "SOFT_BIN": 65535, "X_COORD": -32768,
                              "Y_COORD": -32768, "TEST_T": 0, "PART_ID": ""},
                      byte_order="big"),
        encode_record("PCR", {"HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": 1,
                              "RTST_CNT": 4294967295, "ABRT_CNT": 4294967295,
                              "GOOD_CNT": 4294967295, "FUNC_CNT": 4294967295},
                      byte_order="big"),
        encode_record("HBR", {"HEAD_NUM": 255, "SITE_NUM": 0, "HBIN_NUM": 1,
                              "HBIN_CNT": 4294967295, "HBIN_PF": "\0"}, byte_order="big"),
        encode_record("TSR", {"HEAD_NUM": 255, "SITE_NUM": 0, "TEST_TYP": "P", "TEST_NUM": 1,
                              "EXEC_CNT": 4294967295, "FAIL_CNT": 0, "ALRM_CNT": 4294967295,
                              "TEST_NAM": "t", "SEQ_NAME": None, "TEST_LBL": None,
                              "OPT_FLAG": 0xCD, "TEST_TIM": 1.0, "TEST_MIN": 2.0,
                              "TEST_MAX": 3.0}, byte_order="big"),
        encode_record("MRR", {"FINISH_T": 0}, byte_order="big"),
    ]
    f = parse(b"".join(records))
    part = f.parts[0]
    assert (part.soft_bin, part.x, part.y, part.test_time_ms, part.part_id) == \
        (None, None, None, None, None)
    assert f.wcr["CENTER_X"] is None and f.wcr["CENTER_Y"] == 4 and f.wcr["WAFR_SIZ"] is None
    assert f.wcr["WF_FLAT"] is None
    assert f.pcr[0] == {"HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": 1, "RTST_CNT": None,
                        "ABRT_CNT": None, "GOOD_CNT": None, "FUNC_CNT": None}
    assert f.hbr[0]["HBIN_CNT"] is None and f.hbr[0]["HBIN_PF"] is None
    tsr = f.tsr[0]
    # OPT_FLAG 0xCD: TEST_MIN (bit 0) and TEST_TIM (bit 2) invalid, TEST_MAX valid.
    assert (tsr["EXEC_CNT"], tsr["FAIL_CNT"], tsr["ALRM_CNT"]) == (None, 0, None)
    assert (tsr["TEST_MIN"], tsr["TEST_TIM"], tsr["TEST_MAX"]) == (None, None, 3.0)
    # Missing summary values are not compared with the part records.
    assert summarise(f).warnings == []


def test_v4_record_types_the_reader_does_not_decode_are_skipped_by_length():
    gdr = raw_record(50, 10, b"\x01\x00\x0a\x03abc")
    dtr = raw_record(50, 30, b"\x02hi")
    empty_ftr = raw_record(15, 20, b"")
    parts = [PartSpec(results=[(100, 1.5), gdr, dtr, (200, 0.001), empty_ftr])]
    f = parse(stdf(parts, extra_records=[gdr]))
    assert [(r.test_num, r.value) for r in f.parts[0].results] == [(100, 1.5),
                                                                   (200, pytest.approx(0.001))]
    assert (f.record_counts["GDR"], f.record_counts["DTR"], f.record_counts["FTR"]) == (2, 1, 1)
    assert f.mrr is not None


@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_a_record_type_outside_the_v4_list_is_refused_naming_its_offset(byte_order):
    unknown = raw_record(99, 99, b"\x01\x02\x03\x04\x05", byte_order=byte_order)
    data = stdf([PartSpec(results=[(100, 1.5), unknown, (200, 0.001)])], byte_order=byte_order)
    start = data.index(unknown)
    with pytest.raises(StdfError, match=f"record type 99/99 at byte {start} is not an STDF "
                                        "V4 record type") as exc:
        parse(data)
    assert exc.value.offset == start
    # Also when its length would run past the end of the file.
    with pytest.raises(StdfError, match="record type 180/1 at byte") as exc:
        parse(stdf([]) + raw_record(180, 1, b"\0" * 50)[:20])


def test_a_corrupted_record_length_is_refused_not_walked_through():
    # One REC_LEN off by a few bytes lands the reader inside the next record: the "records"
    # it would read there are invented, and the first of them is of no V4 type.
    parts = [PartSpec(x=i, y=0, part_id=f"p{i}", results=[(100, 1.5), (200, 0.001)])
             for i in range(50)]
    data = bytearray(stdf(parts))
    prr = [pos for pos, typ, sub in records(bytes(data)) if (typ, sub) == (5, 20)][10]
    length = struct.unpack_from("<H", data, prr)[0]
    struct.pack_into("<H", data, prr, length + 3)
    landing = prr + 4 + length + 3
    with pytest.raises(StdfError, match=f"at byte {landing} is not an STDF V4") as exc:
        parse(bytes(data))
    assert exc.value.offset == landing


def test_file_cut_between_records_inside_a_part_is_refused_as_truncated():
    parts = [PartSpec(x=i, y=0, results=[(100, 1.5), (200, 0.001)]) for i in range(6)]
    data = stdf(parts)
    cut = [pos for pos, typ, sub in records(data) if (typ, sub) == (5, 20)][3]  # 4th PRR
    with pytest.raises(StdfError, match="truncated: no MRR, 1 part without a result") as exc:
        parse(data[:cut])
    assert exc.value.offset == cut
    with pytest.raises(StdfError, match="truncated: no MRR, 1 part without a result"):
        parse(data[:cut], ptr=False)
    # Two sites open at once: two parts lost.
    both = stdf([PartSpec(site=s, part_id=str(s), results=[(100, 1.5)]) for s in (0, 1)],
                interleave=True)
    cut = [pos for pos, typ, sub in records(both) if (typ, sub) == (5, 20)][0]
    with pytest.raises(StdfError, match="truncated: no MRR, 2 parts without a result"):
        parse(both[:cut])


def test_file_cut_after_a_part_imports_with_a_warning():
    data = stdf([PartSpec(x=i, y=0, results=[(100, 1.5)]) for i in range(4)], summaries=False)
    f = parse(data[:-mrr_len()])
    assert len(f.parts) == 4
    assert f.warnings == ["no MRR: the file may be incomplete"]


def test_pir_without_prr_with_mrr_is_a_warning():
    data = stdf([PartSpec()], extra_records=[encode_record("PIR", {"HEAD_NUM": 1,
                                                                   "SITE_NUM": 3})])
    f = parse(data)
    assert len(f.parts) == 1
    assert f.warnings == ["1 part(s) opened by PIR have no PRR"]


def test_ptr_outside_a_part_is_counted_as_orphan():
    data = stdf([PartSpec()], extra_records=[ptr_tail(HEAD_NUM=3)])
    f = parse(data)
    assert f.orphan_ptrs == 1
    assert f.parts[0].results == []


def test_pir_without_prr_is_reported():
    records = stdf([PartSpec()]).replace(
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}),
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}) * 2)
    f = parse(records)
    assert len(f.parts) == 1
    assert "reopens head 1 site 0" in f.warnings[0]


# --- PTR limits and flags -------------------------------------------------------------------

@pytest.mark.parametrize("repeat_limits", ["omit", "flag", "full"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_limits_carry_forward_from_the_first_ptr_of_a_test(repeat_limits, byte_order):
    parts = [PartSpec(part_id=str(i), results=[(100, 1.0 + i / 10), (200, i / 1000)])
             for i in range(3)]
    f = parse(stdf(parts, repeat_limits=repeat_limits, byte_order=byte_order))
    for part in f.parts:
        vout, idd = part.results
        assert (vout.lo, vout.hi) == (1.0, 2.0)
        assert idd.lo is None and idd.hi == pytest.approx(0.01)
    assert f.tests[100].units == "V" and f.tests[100].name == "vout"
    assert (f.tests[100].spec_lo, f.tests[100].spec_hi) == (0.5, 2.5)


def test_opt_flag_bits_per_record():
    first = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x0E, RES_SCAL=0, LLM_SCAL=0,
                     HLM_SCAL=0, LO_LIMIT=1.0, HI_LIMIT=2.0, UNITS="V")
    override = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x0E, RES_SCAL=0, LLM_SCAL=0,
                        HLM_SCAL=0, LO_LIMIT=1.5, HI_LIMIT=1.75)
    no_limits = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0xCE, RES_SCAL=0, LLM_SCAL=0,
                         HLM_SCAL=0, LO_LIMIT=9.0, HI_LIMIT=9.0)
    lo_default = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x9E, RES_SCAL=0, LLM_SCAL=0,
                          HLM_SCAL=0, LO_LIMIT=9.0, HI_LIMIT=9.0)
    only_opt = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x0E)  # limits themselves absent
    parts = [PartSpec(results=[first, override, no_limits, lo_default, only_opt])]
    results = parse(stdf(parts)).parts[0].results
    assert [(r.lo, r.hi) for r in results] == [(1.0, 2.0), (1.5, 1.75), (None, None),
                                               (1.0, None), (1.0, 2.0)]


def test_first_ptr_without_valid_limits_sets_no_default():
    # OPT_FLAG 0x36: limits invalid (bits 4/5), no low spec limit (bit 2).
    first = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x36, RES_SCAL=0, LLM_SCAL=0,
                     HLM_SCAL=0, LO_LIMIT=9.0, HI_LIMIT=9.0, UNITS="\0", C_RESFMT=None,
                     C_LLMFMT=None, C_HLMFMT=None, LO_SPEC=0.0, HI_SPEC=3.0)
    f = parse(stdf([PartSpec(results=[first, ptr_tail()])]))
    assert f.tests[100].lo is None and f.tests[100].hi is None and f.tests[100].units is None
    assert (f.tests[100].spec_lo, f.tests[100].spec_hi) == (None, 3.0)
    assert [(r.lo, r.hi) for r in f.parts[0].results] == [(None, None), (None, None)]


def test_invalid_result_is_kept_but_marked():
    parts = [PartSpec(results=[(100, 1.5), (100, 7.0, 0x02), (100, 9.0, 0x10), (100, 3.0, 0x80),
                               (100, 1.0, 0x40)])]
    results = parse(stdf(parts)).parts[0].results
    assert [r.value for r in results] == [1.5, 7.0, 9.0, 3.0, 1.0]
    assert [r.valid for r in results] == [True, False, True, True, True]
    assert [r.usable for r in results] == [True, False, False, True, True]
    assert [r.failed for r in results] == [False, False, False, True, None]


# --- summaries against part records ---------------------------------------------------------

def hbr(bin_no, count, head=255, site=0, name="HBR"):
    p = name[0]
    return encode_record(name, {"HEAD_NUM": head, "SITE_NUM": site, f"{p}BIN_NUM": bin_no,
                                f"{p}BIN_CNT": count, f"{p}BIN_PF": "F"})


def test_written_summaries_agree_with_parts():
    parts = [PartSpec(site=s, hard_bin=b, soft_bin=b * 10, passed=b == 1, part_id=str(i))
             for i, (s, b) in enumerate([(0, 1), (1, 2), (0, 1), (1, 1)])]
    f = parse(stdf(parts))
    assert len(f.hbr) == 2 and len(f.sbr) == 2 and f.pcr[0]["GOOD_CNT"] == 3
    s = summarise(f)
    assert s.warnings == []
    assert s.soft_bins == {10: 3, 20: 1}


def test_summary_records_that_disagree_are_reported():
    parts = [PartSpec(site=s, hard_bin=b, soft_bin=b, passed=b == 1, part_id=str(i))
             for i, (s, b) in enumerate([(0, 1), (1, 2), (0, 1), (1, 3)])]
    extra = [
        hbr(1, 2), hbr(2, 5), hbr(4, 1),                # bin 3 missing, bin 2 wrong, bin 4 extra
        hbr(1, 1, head=1, site=0), hbr(1, 1, head=1, site=0),  # two records for one bin add up
        hbr(2, 1, head=1, site=1), hbr(3, 0, head=1, site=1),
        hbr(1, 2, name="SBR"), hbr(2, 1, name="SBR"), hbr(3, 1, name="SBR"),
        encode_record("PCR", {"HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": 5, "RTST_CNT": None,
                              "ABRT_CNT": None, "GOOD_CNT": 2}),
        encode_record("PCR", {"HEAD_NUM": 1, "SITE_NUM": 1, "PART_CNT": 2, "RTST_CNT": None,
                              "ABRT_CNT": None, "GOOD_CNT": 1}),
    ]
    s = summarise(parse(stdf(parts, summaries=False, extra_records=extra)))
    assert s.warnings == [
        "HBR all sites bin 2: summary 5, part records 1",
        "HBR all sites bin 4: summary 1, part records 0",
        "HBR head 1 site 1 bin 3: summary 0, part records 1",
        "HBR all sites bin 3: no summary record, part records 1",
        "PCR all sites: PART_CNT 5, part records 4",
        "PCR head 1 site 1: GOOD_CNT 1, passing part records 0",
    ]


def test_summarise_reports_mir_fields():
    s = summarise(parse(stdf([PartSpec()])))
    assert (s.lot_id, s.sublot_id, s.part_type, s.job_name, s.test_code, s.temperature) == \
        ("L1", "S1", "DEV", "prog", "FT1", "125")


# --- writer ---------------------------------------------------------------------------------

def test_encode_record_rejects_unknown_fields_and_long_records():
    with pytest.raises(ValueError, match="no field"):
        encode_record("PIR", {"HEAD": 1})
    with pytest.raises(ValueError, match="255"):
        encode_record("MIR", {"LOT_ID": "x" * 256})
    with pytest.raises(ValueError, match="65535"):
        raw_record(50, 30, b"x" * 70000)
    with pytest.raises(ValueError, match="byte_order"):
        write_stdf(None, mir={}, parts=[], byte_order="middle")
    with pytest.raises(ValueError, match="repeat_limits"):
        write_stdf(None, mir={}, parts=[], repeat_limits="sometimes")


def test_encode_record_byte_layout():
    assert encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 2}, byte_order="big") == \
        b"\x00\x02\x05\x0a\x01\x02"
    prr = encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_FLG": 8, "NUM_TEST": 3,
                                "HARD_BIN": 5, "SOFT_BIN": None, "X_COORD": -1})
    assert prr[4:] == struct.pack("<BBBHHHh", 1, 0, 8, 3, 5, 65535, -1)


# --- odd files ------------------------------------------------------------------------------

def test_gzip_with_several_members_and_padding():
    plain = stdf([PartSpec(x=1, y=1), PartSpec(x=2, y=1)])
    packed = gzip.compress(plain[:100]) + gzip.compress(plain[100:]) + b"\0" * 8
    assert parse(packed).parts == parse(plain).parts


def test_data_after_the_gzip_stream_is_refused():
    packed = stdf([PartSpec()], compress=True)
    with pytest.raises(StdfError, match=f"after the gzip stream at byte {len(packed)}"):
        parse(packed + b"junk")


def test_second_mir_and_stray_wrr_are_reported():
    extra = [encode_record("MIR", {"SETUP_T": 0, "LOT_ID": "OTHER"}),
             encode_record("WRR", {"HEAD_NUM": 1, "SITE_GRP": 255, "FINISH_T": 0})]
    f = parse(stdf([PartSpec()], extra_records=extra))
    assert f.mir["LOT_ID"] == "L1"
    assert [w.split(" at byte")[0] for w in f.warnings] == ["second MIR", "WRR"]


def test_malformed_ptr_text_uses_the_test_defaults():
    first = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x0E, RES_SCAL=0, LLM_SCAL=0,
                     HLM_SCAL=0, LO_LIMIT=1.0, HI_LIMIT=2.0)
    body = ptr_tail(RESULT=1.25)[4:] + bytes([200]) + b"short"  # TEST_TXT claims 200 bytes
    results = parse(stdf([PartSpec(results=[first, raw_record(15, 10, body)])])).parts[0].results
    assert [(r.value, r.lo, r.hi) for r in results] == [(1.5, 1.0, 2.0), (1.25, 1.0, 2.0)]


def test_random_parts_round_trip_in_both_byte_orders():
    rng = random.Random(20261122)
    parts = []
    for i in range(300):
        results = [(t, rng.choice([0.0, rng.uniform(-5, 5)]), rng.choice([0, 0, 0x02, 0x80]))
                   for t in rng.sample(sorted(TESTS), rng.randint(0, 2))]
        parts.append(PartSpec(
            hard_bin=rng.randint(1, 40), soft_bin=rng.choice([None, rng.randint(1, 999)]),
            passed=rng.choice([True, False, None]), site=rng.randint(0, 3),
            x=rng.choice([None, rng.randint(-50, 50)]), y=rng.randint(-50, 50),
            part_id=rng.choice([None, str(i)]), test_time_ms=rng.choice([None, 17]),
            results=results))
    for byte_order in ("big", "little"):
        for repeat in ("omit", "full"):
            f = parse(stdf(parts, byte_order=byte_order, repeat_limits=repeat, interleave=True))
            assert len(f.parts) == len(parts)
            for spec, part in zip(parts, f.parts, strict=True):
                assert (part.hard_bin, part.soft_bin, part.passed, part.site, part.part_id,
                        part.test_time_ms) == (spec.hard_bin, spec.soft_bin, spec.passed,
                                               spec.site, spec.part_id, spec.test_time_ms)
                assert (part.x, part.y) == ((spec.x, spec.y) if spec.x is not None
                                            else (None, spec.y))
                assert [(r.test_num, r.test_flg) for r in part.results] == \
                    [(t, flg) for t, _, flg in spec.results]
                assert [r.value for r in part.results] == \
                    [pytest.approx(v, rel=1e-6) for _, v, _ in spec.results]
            assert summarise(f).warnings == []


# --- retests against the tester's summaries ------------------------------------------------

def final_summaries(parts, wafer="W1"):
    """HBR/SBR/PCR/WRR the way testers that count each die's final result write them."""
    last = {}
    for part in parts:
        last[(part.x, part.y)] = part
    finals = list(last.values())
    good = sum(p.passed for p in finals)
    bins = {}
    for p in finals:
        bins[p.hard_bin] = bins.get(p.hard_bin, 0) + 1
    out = [hbr(b, n) for b, n in sorted(bins.items())]
    out += [hbr(b, n, name="SBR") for b, n in sorted(bins.items())]
    out += [hbr(b, n, head=1, site=0) for b, n in sorted(bins.items())]
    out.append(encode_record("PCR", {"HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": len(finals),
                                     "RTST_CNT": len(parts) - len(finals), "ABRT_CNT": None,
                                     "GOOD_CNT": good}))
    out.append(encode_record("PCR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_CNT": len(finals),
                                     "RTST_CNT": None, "ABRT_CNT": None, "GOOD_CNT": good}))
    return out, len(finals), good


def retested_wafer():
    parts = [PartSpec(x=i, y=0, wafer="W1", hard_bin=1 if i % 3 else 7,
                      soft_bin=1 if i % 3 else 7, passed=bool(i % 3)) for i in range(30)]
    # Every failing die is probed again; half of them pass the second time.
    parts += [PartSpec(x=i, y=0, wafer="W1", hard_bin=1 if i % 2 else 7,
                       soft_bin=1 if i % 2 else 7, passed=bool(i % 2))
              for i in range(0, 30, 3)]
    return parts


def with_wrr(data, part_cnt, good_cnt):
    """Rewrite the file's WRR counts."""
    wrr = next(pos for pos, typ, sub in records(data) if (typ, sub) == (2, 20))
    out = bytearray(data)
    struct.pack_into("<I", out, wrr + 4 + 2 + 4, part_cnt)
    struct.pack_into("<I", out, wrr + 4 + 2 + 4 + 12, good_cnt)
    return bytes(out)


def test_summaries_of_final_results_on_a_retested_wafer_give_no_warning():
    parts = retested_wafer()
    extra, finals, good = final_summaries(parts)
    data = with_wrr(stdf(parts, summaries=False, extra_records=extra), finals, good)
    s = summarise(parse(data))
    assert (s.parts_tested, s.units, s.final_good) == (40, 30, 25)
    assert s.warnings == []


def test_summaries_of_every_result_on_a_retested_wafer_give_no_warning():
    # The other convention (lot3.stdf's): every PRR counted, retests included.
    s = summarise(parse(stdf(retested_wafer())))
    assert s.retests == 10
    assert s.warnings == []


def test_summaries_that_match_neither_convention_are_reported_against_final_results():
    parts = retested_wafer()
    extra, finals, good = final_summaries(parts)
    extra[0] = hbr(1, 99)  # HBR all sites bin 1 (final results: 25)
    data = with_wrr(stdf(parts, summaries=False, extra_records=extra), finals + 1, good)
    s = summarise(parse(data))
    assert s.warnings == ["HBR all sites bin 1: summary 99, final results 25",
                          "WRR wafer W1: PART_CNT 31, final results 30"]


def test_wrr_counts_are_checked_per_wafer():
    parts = [PartSpec(x=i, y=0, wafer=w) for w in ("W1", "W2") for i in range(3)]
    data = stdf(parts)
    s = summarise(parse(with_wrr(data, 3, 2)))
    assert s.warnings == ["WRR wafer W1: GOOD_CNT 2, passing part records 3"]


def test_prr_with_head_255_counts_for_the_head_the_summaries_name():
    parts = [PartSpec(head=255, site=1, part_id=str(i), passed=i < 3,
                      hard_bin=1 if i < 3 else 5) for i in range(4)]
    extra = [hbr(1, 3, head=1, site=1), hbr(5, 1, head=1, site=1),
             encode_record("PCR", {"HEAD_NUM": 1, "SITE_NUM": 1, "PART_CNT": 4,
                                   "RTST_CNT": 0, "ABRT_CNT": None, "GOOD_CNT": 3})]
    f = parse(stdf(parts, extra_records=extra))
    assert {p.head for p in f.parts} == {255}
    assert summarise(f).warnings == []


# --- PTRs after their PRR (Credence D-10) ---------------------------------------------------

def d10_file(values_per_part, *, mrr=True):
    """Parts written the way a Credence D-10 writes them: PRR, then the part's PTRs, then
    the PIR (of the next insertion); two sites per insertion."""
    out = [raw_record(0, 10, bytes([2, 4])), encode_record("MIR", {"LOT_ID": "D10"})]
    for index, (site, values) in enumerate(values_per_part):
        out.append(encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": site, "PART_FLG": 0,
                                         "NUM_TEST": len(values), "HARD_BIN": 1,
                                         "SOFT_BIN": 1, "X_COORD": None, "Y_COORD": None,
                                         "TEST_T": None, "PART_ID": str(index)}))
        out += [ptr_tail(SITE_NUM=site, TEST_NUM=100 + n, RESULT=v)
                for n, v in enumerate(values)]
        out.append(encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": site}))
    if mrr:
        out.append(encode_record("MRR", {"FINISH_T": 0}))
    return b"".join(out)


def test_ptrs_after_their_prr_belong_to_that_part():
    parts = [(0, [1.0, 2.0]), (1, [3.0]), (0, [4.0, 5.0, 6.0]), (1, [7.0])]
    f = parse(d10_file(parts))
    assert [[r.value for r in p.results] for p in f.parts] == [[1.0, 2.0], [3.0],
                                                               [4.0, 5.0, 6.0], [7.0]]
    assert (f.orphan_ptrs, f.late_ptrs) == (0, 7)
    # The last PIRs open no part that was lost.
    assert f.warnings == []
    assert parse(d10_file(parts, mrr=False)).warnings == ["no MRR: the file may be incomplete"]


def test_ptrs_before_any_part_of_their_site_still_belong_to_none():
    data = d10_file([(0, [1.0])])
    mir_end = records(data)[2][0]
    stray = ptr_tail(SITE_NUM=5) + ptr_tail(SITE_NUM=0)
    f = parse(data[:mir_end] + stray + data[mir_end:])
    assert f.orphan_ptrs == 2
    assert [[r.value for r in p.results] for p in f.parts] == [[1.0]]


# --- bounded inflate ------------------------------------------------------------------------

def test_inflate_stops_as_soon_as_the_output_passes_the_limit():
    mib = 1024 * 1024
    packed = gzip.compress(bytes(64 * mib), compresslevel=1)
    tracemalloc.start()
    try:
        with pytest.raises(InflateLimitExceeded, match=f"more than {mib} bytes") as exc:
            inflate(packed, limit=mib)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.value.limit == mib
    # The limit's buffer and one step of output, not the 64 MiB the stream holds.
    assert peak < 4 * mib, f"peak {peak / mib:.1f} MiB"
    with pytest.raises(InflateLimitExceeded):
        parse(packed, inflate_limit=mib)


def test_inflate_limit_is_on_the_whole_output_of_every_member():
    plain = stdf([PartSpec(results=[(100, 1.5)])])
    half = len(plain) // 2
    members = gzip.compress(plain[:half]) + gzip.compress(plain[half:]) + b"\0" * 9
    assert inflate(members, limit=len(plain)) == plain
    with pytest.raises(InflateLimitExceeded):
        inflate(members, limit=len(plain) - 1)
    assert len(parse(members, inflate_limit=len(plain)).parts) == 1
    # Plain input is returned as it is: the upload limit bounds it.
    assert inflate(plain, limit=1) == plain


# --- compact values (the import's reading) --------------------------------------------------

def usable_results(part):
    """What a part's full results give PAT: (test number, value) of the usable, finite ones."""
    return [(r.test_num, r.value) for r in part.results
            if r.usable and r.test_num is not None and math.isfinite(r.value)]


def assert_values_mode_agrees(data):
    """Reading with ptr="values" keeps exactly each part's usable, finite results, and
    everything else as the full reading has it."""
    full = parse(data)
    compact = parse(data, ptr="values")
    assert [list(zip(*p.values, strict=True)) for p in compact.parts] == \
        [usable_results(p) for p in full.parts]
    assert [dataclasses.replace(p, values=None) for p in compact.parts] == \
        [dataclasses.replace(p, results=[]) for p in full.parts]
    for name in ("tests", "record_counts", "orphan_ptrs", "late_ptrs", "warnings", "mir",
                 "hbr", "sbr", "pcr", "tsr", "sdrs", "size"):
        assert getattr(compact, name) == getattr(full, name), name
    assert summarise(compact) == summarise(full)
    return compact


def test_values_mode_keeps_the_usable_finite_results_of_random_parts():
    rng = random.Random(20261207)
    values = [0.0, 1.5, -2.25, math.nan, math.inf, -math.inf, 3.0e38]
    parts = []
    for i in range(200):
        results = [(t, rng.choice(values), rng.choice([0, 0, 0x02, 0x04, 0x80, 0x20]))
                   for t in rng.sample(sorted(TESTS), rng.randint(0, 2))]
        parts.append(PartSpec(hard_bin=rng.randint(1, 9), passed=rng.choice([True, False]),
                              site=rng.randint(0, 3), part_id=str(i), results=results))
    for byte_order in ("big", "little"):
        for repeat in ("omit", "full"):
            compact = assert_values_mode_agrees(
                stdf(parts, byte_order=byte_order, repeat_limits=repeat, interleave=True))
            kept = sum(len(p.values.values) for p in compact.parts)
            assert 0 < kept < sum(len(p.results) for p in parts)


def test_values_mode_follows_ptrs_after_their_prr_orphans_and_odd_records():
    assert assert_values_mode_agrees(d10_file([(0, [1.0, 2.0]), (1, [3.0])])).late_ptrs == 3
    data = d10_file([(0, [1.0])])
    mir_end = records(data)[2][0]
    assert assert_values_mode_agrees(
        data[:mir_end] + ptr_tail(SITE_NUM=5) + data[mir_end:]).orphan_ptrs == 1
    # PARM_FLG bits 0-2 make a result unusable; a short PTR keeps the test's defaults.
    first = ptr_tail(TEST_TXT="t", ALARM_ID=None, OPT_FLAG=0x0E, RES_SCAL=0, LLM_SCAL=0,
                     HLM_SCAL=0, LO_LIMIT=1.0, HI_LIMIT=2.0)
    body = ptr_tail(RESULT=1.25)[4:] + bytes([200]) + b"short"
    compact = assert_values_mode_agrees(stdf([PartSpec(results=[
        first, raw_record(15, 10, body), ptr_tail(PARM_FLG=0x04),
        raw_record(15, 10, ptr_tail()[4:10])])]))
    assert list(compact.parts[0].values.values) == [1.5, 1.25]
    assert_values_mode_agrees(stdf([PartSpec()]).replace(
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}),
        encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}) * 2))


@pytest.mark.parametrize("name", ["lot3.stdf", "credence_ft.std"])
def test_values_mode_agrees_with_the_full_reading_on_the_real_files(name):
    assert_values_mode_agrees(real(name).read_bytes())


def test_an_unknown_ptr_mode_is_refused():
    with pytest.raises(ValueError, match="ptr must be"):
        parse(stdf([PartSpec()]), ptr="all")


# --- streaming: inflating in pieces, files through a memory map -----------------------------

def pieces(data, sizes):
    """`data` cut into pieces of the given sizes (cycled)."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        out.append(data[pos:pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return out


@pytest.mark.parametrize("sizes", [[1], [2, 7, 1], [5000]])
def test_gzip_inflates_the_same_whatever_pieces_it_arrives_in(sizes):
    plain = stdf([PartSpec(part_id=str(i), results=[(100, 1.5)]) for i in range(50)])
    half = len(plain) // 2
    members = gzip.compress(plain[:half]) + gzip.compress(plain[half:]) + b"\0" * 9
    assert b"".join(inflate_chunks(pieces(members, sizes))) == plain
    assert b"".join(inflate_chunks(pieces(plain, sizes))) == plain
    with pytest.raises(InflateLimitExceeded):
        b"".join(inflate_chunks(pieces(members, sizes), limit=len(plain) - 1))
    # Data after the padding: the offset is where the last member ended.
    end = len(members) - 9
    for broken, message in ((members[:-20], f"truncated gzip stream at byte {len(members) - 20}"),
                            (members + b"junk",
                             f"unexpected data after the gzip stream at byte {end}")):
        with pytest.raises(StdfError, match=message) as exc:
            b"".join(inflate_chunks(pieces(broken, sizes)))
        with pytest.raises(StdfError) as whole:
            inflate(broken)
        assert exc.value.offset == whole.value.offset


def test_a_file_is_read_through_a_memory_map_as_from_memory(tmp_path):
    data = stdf([PartSpec(x=i, y=0, results=[(100, 1.5), (200, 0.001)]) for i in range(20)])
    path = tmp_path / "lot.stdf"
    path.write_bytes(data + b"\0" * 100)
    with path.open("rb") as fh, mapped(fh) as buf:
        assert isinstance(buf, mmap.mmap) and len(buf) == len(data) + 100
        assert parse(buf).parts == parse(data).parts
    assert parse_file(path, ptr="values").parts == parse(data, ptr="values").parts
    empty = tmp_path / "empty.stdf"
    empty.write_bytes(b"")
    with pytest.raises(StdfError, match="empty input"):
        parse_file(empty)
    path.write_bytes(data[:-3])
    with pytest.raises(StdfError, match="truncated MRR record") as exc:
        parse_file(path)
    assert exc.value.offset == len(data) - mrr_len()


def test_reading_pauses_the_cyclic_collector_and_restores_it():
    data = stdf([PartSpec(results=[(100, 1.5)])])
    seen = []
    with paused_gc():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    parse(data)
    assert gc.isenabled()
    gc.disable()
    try:
        parse(data)
        with paused_gc():
            pass
        # Off before (another read still running, say): left off.
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(StdfError), paused_gc():
        parse(b"not stdf")
    assert gc.isenabled()
