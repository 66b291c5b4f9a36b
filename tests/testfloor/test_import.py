"""STDF import through the API: the shared real files give their reference numbers, files
written here cover retests, pass/fail flags, byte orders, sites, gzip and refusals; a
refused file stores nothing."""

from __future__ import annotations

import gzip
import io
import struct

import pytest
from sqlalchemy import select

from mes.floor.models import Lot, LotEvent
from mes.testfloor import services
from mes.testfloor.models import TestParam, TestRun
from mes.testfloor.stdf_writer import PartSpec, TestSpec, encode_record
from tests.floor.helpers import advance, hold, track_in
from tests.helpers import audit_codes, refused
from tests.testfloor.helpers import (
    MIR,
    NO_PROGRAM,
    STDF_DIR,
    bad,
    good,
    lot_at_final_test,
    lot_file,
    needs_shared_files,
    receive_lot,
    stdf,
    vout,
)

pytestmark = pytest.mark.usefixtures("plant")
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def op(api):
    return api("operator")


@pytest.fixture
def ft_lot(session):
    """Lot LOT-FT, 2000 units, queued at final test."""
    return lot_at_final_test(session, "LOT-FT", 2000)


def upload(caller, data: bytes, lot_no: str = "LOT-FT", query: str = ""):
    return caller.post(f"/lots/{lot_no}/stdf{query}", data=data, headers=OCTET)


def imported(caller, data: bytes, lot_no: str = "LOT-FT", query: str = "") -> dict:
    resp = upload(caller, data, lot_no, query)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def counts(run: dict) -> tuple:
    return (run["parts_tested"], run["units"], run["first_pass_good"], run["final_good"],
            run["first_pass_yield"], run["final_yield"])


# --- the shared real files -------------------------------------------------------------

@needs_shared_files
def test_lot3_gives_its_reference_numbers_through_the_api(op, ft_lot, session):
    run = imported(op, (STDF_DIR / "lot3.stdf").read_bytes())
    assert counts(run) == (1619, 1456, 1294, 1377, 88.87, 94.57)
    assert run["hard_bins"] == {"1": 1378, "2": 58, "4": 8, "5": 16, "7": 2, "8": 71,
                                "9": 1, "10": 20, "16": 2, "17": 8, "20": 55}
    assert (run["stdf_lot_id"], run["sublot_id"], run["part_type"], run["job"],
            run["test_code"], run["temperature"]) == ("GAL-LOT", "03", "GOLD8BAR",
                                                      "mobile-05", "E38", None)
    assert (run["lot_no"], run["step"], run["source"], run["tester"], run["tester_type"],
            run["job_rev"]) == ("LOT-FT", "FT", "stdf", "galaxy-t", "A530", "16")
    # The reference's incomplete summaries are "missing" values, not disagreements; P1 has
    # no released program at FT, which the run says.
    assert run["warnings"] == [NO_PROGRAM]
    assert run["retests"] == 1619 - 1456
    assert sum(run["final_bins"].values()) == 1456
    assert run["final_bins"]["1"] == 1377
    assert run["pat"]["mode"] == "dynamic"
    assert run["pat"]["passing_parts"] == 1377
    # SBA judges the insertion when it closes, never one file.
    assert (run["insertion"], run["pass"]) == (run["sba"]["insertion"], "P1")
    params = session.scalars(select(TestParam).where(TestParam.run_id == run["id"])).all()
    assert len(params) == 74
    assert all(p.n <= 1377 for p in params)


@needs_shared_files
def test_credence_file_by_multipart_gives_its_reference_numbers(op, ft_lot):
    data = (STDF_DIR / "credence_ft.std").read_bytes()
    resp = op.post("/lots/LOT-FT/stdf", data={"file": (io.BytesIO(data), "credence_ft.std")},
                   content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    run = resp.get_json()
    assert counts(run) == (22, 22, 0, 0, 0.0, 0.0)
    assert (run["hard_bins"], run["soft_bins"]) == ({"2": 12, "4": 10}, {"2": 10, "30": 12})
    assert (run["stdf_lot_id"], run["sublot_id"], run["part_type"], run["job"],
            run["temperature"]) == ("F6N910.1", "301805009", "spm3f_dual", "spm3f_final", "25")
    assert run["failing_bins"] == [2, 4]
    # No passing part: PAT has nothing to compute limits from.
    assert (run["pat"]["mode"], run["pat"]["failures"], run["pat"]["passing_parts"]) == (
        "none", 0, 0)


# --- counting --------------------------------------------------------------------------

def test_retest_at_the_same_xy_counts_first_pass_and_final_results(op, ft_lot):
    parts = [good(0, x=1, y=1), bad(1, x=2, y=1), bad(2, x=3, y=1),
             good(3, x=2, y=1),             # retest of (2, 1): fails first, passes at last
             bad(4, bin_no=9, x=3, y=1),    # retest of (3, 1): fails twice, other bin
             good(5, x=4, y=1), bad(6, x=4, y=1)]  # (4, 1) passes first, fails at last
    run = imported(op, stdf(parts))
    assert counts(run) == (7, 4, 2, 2, 50.0, 50.0)
    assert run["retests"] == 3
    assert run["hard_bins"] == {"1": 3, "8": 3, "9": 1}
    assert run["final_bins"] == {"1": 2, "8": 1, "9": 1}


def test_retest_by_part_id_is_per_site_across_several_sites(op, ft_lot):
    parts = [bad(0, part_id="A", site=0), bad(1, part_id="A", site=1),
             good(2, part_id="A", site=0),  # retest of site 0's A; site 1's A is another part
             good(3, part_id="B", site=1)]
    run = imported(op, stdf(parts, interleave=True))
    assert counts(run) == (4, 3, 1, 2, 33.33, 66.67)


def test_no_pass_fail_bit_falls_back_to_hard_bin_1(op, ft_lot):
    parts = [PartSpec(hard_bin=1, passed=None, part_id="1"),
             PartSpec(hard_bin=2, passed=None, part_id="2"),
             PartSpec(hard_bin=1, passed=None, part_id="3"),
             PartSpec(hard_bin=3, passed=False, part_id="4")]
    run = imported(op, stdf(parts))
    assert counts(run) == (4, 4, 2, 2, 50.0, 50.0)
    assert run["failing_bins"] == [2, 3]


def test_both_byte_orders_give_the_same_run(op, ft_lot):
    parts = [good(i, part_id=str(i)) for i in range(35)] + [bad(35, part_id="35")]
    little = imported(op, stdf(parts, byte_order="little"))
    big = imported(op, stdf(parts, byte_order="big"), query="?pass=resume")
    assert little["id"] != big["id"]
    for key in ("parts_tested", "units", "first_pass_good", "final_good", "first_pass_yield",
                "final_yield", "hard_bins", "soft_bins", "final_bins", "pat", "stdf_lot_id",
                "job", "temperature", "insertion"):
        assert little[key] == big[key], key


def test_zero_yield_lot_is_a_run_with_yields_of_zero(op, ft_lot):
    run = imported(op, lot_file(0, 12))
    assert counts(run) == (12, 12, 0, 0, 0.0, 0.0)
    assert run["failing_bins"] == [8]
    assert run["pat"]["failures"] == 0


def test_gzip_file_is_read_like_the_plain_one(op, ft_lot, session):
    plain = lot_file(40, 2)
    run = imported(op, gzip.compress(plain))
    assert counts(run) == (42, 42, 40, 40, 95.24, 95.24)
    stored = session.get(TestRun, run["id"])
    assert stored.file_size == len(gzip.compress(plain))


def test_summary_records_that_disagree_become_warnings(op, ft_lot):
    wrong_hbr = encode_record("HBR", {"HEAD_NUM": 255, "SITE_NUM": 0, "HBIN_NUM": 8,
                                      "HBIN_CNT": 7, "HBIN_PF": "F"})
    run = imported(op, lot_file(40, 2, extra_records=[wrong_hbr]))
    assert run["final_good"] == 40
    assert run["warnings"] == ["HBR all sites bin 8: summary 9, part records 2", NO_PROGRAM]


def test_tester_handler_and_load_board_ids_are_kept(op, ft_lot):
    sdrs = [{"HEAD_NUM": 1, "SITE_GRP": 1, "SITE_CNT": 2, "SITE_NUM": [0, 1],
             "HAND_TYP": "pnp", "HAND_ID": "HDL-3", "CARD_ID": "PC-9", "LOAD_ID": "LB-12"},
            {"HEAD_NUM": 1, "SITE_GRP": 2, "SITE_CNT": 1, "SITE_NUM": [2],
             "HAND_ID": "HDL-3", "LOAD_ID": "LB-14"}]
    run = imported(op, lot_file(3, sdrs=sdrs))
    assert (run["tester"], run["handler"], run["load_board"], run["probe_card"]) == (
        "tester-07", "HDL-3", "LB-12, LB-14", "PC-9")


def test_nul_characters_of_tester_strings_are_dropped(op, ft_lot):
    run = imported(op, lot_file(3, mir={**MIR, "LOT_ID": "AB\0\0", "JOB_NAM": "\0"}))
    assert (run["stdf_lot_id"], run["job"]) == ("AB", None)


def test_passing_parts_values_are_kept_per_test_for_pat(op, ft_lot, session):
    parts = [good(i, x=i, y=0) for i in range(4)]
    parts += [bad(9, x=0, y=0), good(7, x=1, y=0, results=[(100, 1.25), (200, 9.0)]),
              good(8, x=5, y=0, results=[(100, 1.75, 0x04)])]  # TEST_FLG bit 2: unreliable
    run = imported(op, stdf(parts))
    params = {p.test_num: p for p in session.scalars(
        select(TestParam).where(TestParam.run_id == run["id"]))}
    # (0, 0) failed at last; (1, 0) passed again with new values; (5, 0)'s value is unusable.
    assert services.passing_values(params[100]) == [1.25, vout(2), vout(3)]
    assert services.passing_values(params[200]) == [9.0, 2.25, 2.375]
    assert (params[100].name, params[100].units, params[100].lo, params[100].hi) == (
        "vout", "V", 1.0, 2.0)
    assert (params[200].lo, params[200].hi) == (None, 10.0)


def test_import_records_the_run_in_the_lots_history_and_does_not_move_it(op, ft_lot,
                                                                          session):
    before = (ft_lot.state, ft_lot.step_code, ft_lot.quantity)
    run = imported(op, lot_file(40, 2))
    lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-FT"))
    session.refresh(lot)
    assert (lot.state, lot.step_code, lot.quantity) == before
    event = session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id)
                            .order_by(LotEvent.id.desc())).first()
    assert (event.kind, event.step_code, event.by, event.qty_in, event.qty_out) == (
        "test_run", "FT", op.user.username, 42, 40)
    assert event.data["test_run"] == run["id"]
    assert audit_codes(session, "lot", "LOT-FT")[-1] == "lot:test_run"
    history = op.get("/lots/LOT-FT/history").get_json()["items"]
    assert history[-1]["kind"] == "test_run"


def test_import_into_a_running_lot_at_its_test_step(op, session):
    lot = advance(session, receive_lot(session, "LOT-RUN", 500), 2)
    track_in(session, lot)
    run = imported(op, lot_file(5), "LOT-RUN")
    assert (run["step"], run["parts_tested"]) == ("FT", 5)
    session.refresh(lot)
    assert (lot.state, lot.step_code) == ("running", "FT")


def test_step_given_in_the_query(op, ft_lot):
    assert imported(op, lot_file(3), query="?step=FT")["step"] == "FT"


# --- refusals: nothing is stored -------------------------------------------------------

def test_second_import_of_the_same_content_is_refused_for_any_lot(op, ft_lot, session):
    data = lot_file(40, 2)
    first = imported(op, data)
    lot_at_final_test(session, "LOT-2", 100)
    for lot_no in ("LOT-FT", "LOT-2"):
        error = refused(session, lambda lot_no=lot_no: upload(op, data, lot_no), 409,
                        "duplicate")
        assert f"test run {first['id']} of lot LOT-FT" in error["message"]
    # Gzipped, the same content is the same file.
    refused(session, lambda: upload(op, gzip.compress(data), "LOT-2"), 409, "duplicate")


def test_duplicate_found_only_at_the_insert_is_refused_as_duplicate(op, ft_lot, session,
                                                                    monkeypatch):
    data = lot_file(40, 2)
    imported(op, data)
    # As if a simultaneous request had inserted the same file after this one's check.
    monkeypatch.setattr(services, "_refuse_duplicate", lambda *_: None)
    refused(session, lambda: upload(op, data, "LOT-FT", "?pass=resume"), 409, "duplicate")


def record_starts(data: bytes) -> list[int]:
    """The offset of every record of a little-endian file, walking the headers."""
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        pos += 4 + struct.unpack_from("<H", data, pos)[0]
    return starts


def test_truncated_file_is_refused_naming_the_offset(op, ft_lot, session):
    data = lot_file(5)
    cut = len(data) - 20
    record = max(start for start in record_starts(data) if start < cut)
    error = refused(session, lambda: upload(op, data[:cut]), 422, "invalid_stdf")
    assert "truncated" in error["message"]
    assert f"at byte {record}" in error["message"]


def test_file_that_is_not_stdf_is_refused_at_byte_0(op, ft_lot, session):
    error = refused(session, lambda: upload(op, b"%PDF-1.7 not a tester file"), 422,
                    "invalid_stdf")
    assert "at byte 0" in error["message"]
    refused(session, lambda: upload(op, b""), 422, "invalid_stdf")


def test_truncated_gzip_is_refused(op, ft_lot, session):
    packed = gzip.compress(lot_file(5))
    error = refused(session, lambda: upload(op, packed[:-10]), 422, "invalid_stdf")
    assert f"at byte {len(packed) - 10}" in error["message"]


def test_file_without_part_records_is_refused(op, ft_lot, session):
    error = refused(session, lambda: upload(op, stdf([])), 422, "no_parts")
    assert "PRR" in error["message"]


def test_multipart_without_the_file_field_is_refused(op, ft_lot, session):
    body = refused(session, lambda: op.post("/lots/LOT-FT/stdf", data={"other": "x"},
                                            content_type="multipart/form-data"),
                   422, "invalid")
    assert "file" in body["fields"]


def test_import_at_a_step_that_is_not_a_test_step_is_refused(op, session):
    receive_lot(session, "LOT-SAW", 100)  # queued at SAW, an assembly step
    error = refused(session, lambda: upload(op, lot_file(3), "LOT-SAW"), 409, "wrong_step")
    assert "(its kind is Assembly)" in error["message"]
    refused(session, lambda: upload(op, lot_file(3), "LOT-SAW", "?step=PACK"), 409,
            "wrong_step")


def test_import_for_a_test_step_the_lot_is_not_at_is_refused(op, session):
    receive_lot(session, "LOT-SAW", 100)
    error = refused(session, lambda: upload(op, lot_file(3), "LOT-SAW", "?step=FT"), 409,
                    "wrong_step")
    assert "at step SAW, not FT" in error["message"]


def test_import_for_a_step_not_on_the_route_is_refused(op, ft_lot, session):
    body = refused(session, lambda: upload(op, lot_file(3), query="?step=FT-H"), 422,
                   "invalid")
    assert "step" in body["fields"]


def test_import_for_a_closed_lot_is_refused(op, ft_lot, session):
    ft_lot.state = "scrapped"
    session.commit()
    refused(session, lambda: upload(op, lot_file(3)), 409, "lot_closed")


def test_import_for_an_unknown_lot_is_404(op, session):
    refused(session, lambda: upload(op, lot_file(3), "NOPE"), 404, "not_found")


def test_import_reads_pat_values_as_float32_exactly(op, ft_lot, session):
    value = 1.1  # not exact in float32: kept as the R4 the tester wrote
    run = imported(op, stdf([good(0, results=[(100, value)], part_id="x")],
                            tests={100: TestSpec("v", "V")}))
    param = session.scalar(select(TestParam).where(TestParam.run_id == run["id"]))
    assert services.passing_values(param) == [struct.unpack("<f", struct.pack("<f", value))[0]]


def test_non_finite_values_and_limits_are_left_out(op, ft_lot, session):
    parts = [good(0, part_id="a", results=[(100, float("nan")), (200, float("inf"))]),
             good(1, part_id="b", results=[(100, 1.5)])]
    run = imported(op, stdf(parts, tests={100: TestSpec("v", "V", float("-inf"), 2.0)}))
    params = session.scalars(select(TestParam).where(TestParam.run_id == run["id"])).all()
    assert [(p.test_num, p.n, p.lo, p.hi) for p in params] == [(100, 1, None, 2.0)]
    assert list(run["pat"]["per_test"]) == ["100"]


def test_lot_on_hold_still_takes_test_data(op, ft_lot, session):
    hold(session, ft_lot)
    run = imported(op, lot_file(3))
    assert run["parts_tested"] == 3


# --- damaged files and tester layouts ---------------------------------------------------------

def test_a_record_type_outside_the_v4_list_is_refused_naming_its_offset(op, ft_lot, session):
    data = bytearray(lot_file(20))
    prr = [s for s in record_starts(bytes(data)) if data[s + 2:s + 4] == b"\x05\x14"][5]
    length = struct.unpack_from("<H", data, prr)[0]
    struct.pack_into("<H", data, prr, length + 2)  # a corrupted REC_LEN
    error = refused(session, lambda: upload(op, bytes(data)), 422, "invalid_stdf")
    assert f"at byte {prr + 4 + length + 2} is not an STDF V4 record type" in error["message"]


def test_a_file_cut_inside_a_part_is_refused_as_truncated(op, ft_lot, session):
    data = lot_file(40)
    cut = [s for s in record_starts(data) if data[s + 2:s + 4] == b"\x05\x14"][20]
    error = refused(session, lambda: upload(op, data[:cut]), 422, "invalid_stdf")
    assert "truncated: no MRR, 1 part without a result" in error["message"]


def test_a_file_cut_after_a_part_imports_with_a_warning(op, ft_lot):
    data = lot_file(40, summaries=False)
    mrr = record_starts(data)[-1]
    run = imported(op, data[:mrr])
    assert run["parts_tested"] == 40
    assert run["warnings"] == ["no MRR: the file may be incomplete", NO_PROGRAM]


def test_final_result_summaries_of_a_retested_wafer_give_no_warning(op, ft_lot):
    parts = [good(i, x=i, y=0, wafer="W1") for i in range(10)]
    parts += [bad(i, x=10 + i, y=0, wafer="W1") for i in range(4)]
    parts += [good(20 + i, x=10 + i, y=0, wafer="W1") for i in range(4)]  # retests pass
    finals = 14
    extra = [encode_record(name, {"HEAD_NUM": 255, "SITE_NUM": 0, f"{p}BIN_NUM": 1,
                                  f"{p}BIN_CNT": finals, f"{p}BIN_PF": "P"})
             for name, p in (("HBR", "H"), ("SBR", "S"))]
    extra.append(encode_record("PCR", {"HEAD_NUM": 255, "SITE_NUM": 0, "PART_CNT": finals,
                                       "RTST_CNT": 4, "ABRT_CNT": None, "GOOD_CNT": finals}))
    run = imported(op, stdf(parts, summaries=False, extra_records=extra))
    assert (run["parts_tested"], run["units"], run["final_good"]) == (18, 14, 14)
    assert run["warnings"] == [NO_PROGRAM]


def test_ptrs_written_after_their_prr_reach_pat_and_orphans_are_counted(op, ft_lot, session):
    # A Credence D-10 writes each part's PRR, then its PTRs, then the PIR.
    head = stdf([])[:record_starts(stdf([]))[2]]  # FAR and MIR
    out = [head, encode_record("PTR", {"TEST_NUM": 100, "HEAD_NUM": 1, "SITE_NUM": 7,
                                       "TEST_FLG": 0, "PARM_FLG": 0, "RESULT": 9.0})]
    for i in range(40):
        out.append(encode_record("PRR", {"HEAD_NUM": 1, "SITE_NUM": 0, "PART_FLG": 0,
                                         "NUM_TEST": 1, "HARD_BIN": 1, "SOFT_BIN": 1,
                                         "X_COORD": None, "Y_COORD": None, "TEST_T": None,
                                         "PART_ID": str(i)}))
        out.append(encode_record("PTR", {"TEST_NUM": 100, "HEAD_NUM": 1, "SITE_NUM": 0,
                                         "TEST_FLG": 0, "PARM_FLG": 0, "RESULT": vout(i)}))
        out.append(encode_record("PIR", {"HEAD_NUM": 1, "SITE_NUM": 0}))
    out.append(encode_record("MRR", {"FINISH_T": 0}))
    run = imported(op, b"".join(out))
    assert run["orphan_ptrs"] == 1
    assert run["warnings"] == [NO_PROGRAM]
    assert run["pat"]["per_test"]["100"]["n"] == 40
    param = session.scalar(select(TestParam).where(TestParam.run_id == run["id"]))
    assert services.passing_values(param) == [vout(i) for i in range(40)]
