"""Test-floor rules: STDF files and bin summaries become test runs of a lot at a test step;
PAT (AEC-Q001) counts the parts outside statistical limits; SBA (AEC-Q002) judges the lot's
yield and failing bins against earlier lots and holds it when they stray.

Every function works in the caller's transaction and raises before changing anything when a
rule refuses. The system proposes, a person disposes: SBA places holds, it never releases or
scraps anything.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import IO, Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.catalog.models import Product, ReasonCode
from mes.catalog.services import StepInfo, current_route, route_step_infos
from mes.config import DEFAULTS
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound, TooLarge
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.testfloor import insertions, programs, stats, stdf
from mes.testfloor import pat as screen
from mes.testfloor.models import PatLimitSet, PatLimitVersion, TestParam, TestRun
from mes.vocabulary import (
    CLOSED_LOT_STATES,
    EventKind,
    PatMode,
    StepKind,
    TestRunSource,
)

# AEC-Q001: static limits from at least 6 lots of at least 30 passing parts; dynamic limits
# need at least 30 passing parts of the lot itself.
PAT_K = 6
PAT_MIN_PARTS = 30
PAT_MIN_LOTS = 6
# Static limits pool the latest lots (one run per lot) up to this many.
PAT_HISTORY_LOTS = 30
# AEC-Q002 (judged when an insertion closes: mes.testfloor.insertions).
SBA_MIN_LOTS = insertions.SBA_MIN_LOTS
SBA_HISTORY_LOTS = insertions.SBA_HISTORY_LOTS
SBA_REASON = insertions.SBA_REASON
_STRING = 255
_MIB = 1024 * 1024


def _invalid(field_name: str, message: str | LazyString,
             code: ErrorCode | None = None) -> InvalidInput:
    return InvalidInput(message, code=code, fields={field_name: [message]})


def _text(value: Any) -> str | None:
    """A string from a tester file as the database can keep it: PostgreSQL refuses NUL
    characters, which STDF strings sometimes carry as padding."""
    if value is None:
        return None
    text = str(value).replace("\0", "").strip()
    return text[:_STRING] or None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _percent(good: int, units: int) -> float:
    return round(float(Fraction(good * 100, units)), 2)


# --- reading ---------------------------------------------------------------------------

def get_test_run(session: Session, run_id: int) -> TestRun:
    """The test run `run_id` (NotFound otherwise). Plant users only: customers read runs
    through their lots (`lot_runs_query`)."""
    run = session.scalar(select(TestRun).where(TestRun.id == run_id)
                         .options(joinedload(TestRun.lot)))
    if run is None:
        raise NotFound(_l("No test run %(run_id)s.", run_id=run_id))
    return run


def lot_runs_query(lot: Lot) -> Select[Any]:
    """The test runs of one lot, oldest first."""
    return (select(TestRun).where(TestRun.lot_id == lot.id)
            .options(joinedload(TestRun.lot)).order_by(TestRun.id))


def passing_values(param: TestParam) -> list[float]:
    """The values of the lot's passing parts for one test (for charts and PAT)."""
    return list(struct.unpack(f"<{param.n}f", param.passing_values))


def pat_limit_query(product: Product, filters: dict[str, Any]) -> Select[Any]:
    """A product's PAT limit sets by step and test number, newest first within a test;
    filters `step`, `test` (a test number), `active`."""
    stmt = (select(PatLimitSet).where(PatLimitSet.product_id == product.id)
            .options(joinedload(PatLimitSet.product)))
    if filters.get("step"):
        stmt = stmt.where(PatLimitSet.step_code == filters["step"])
    if filters.get("test") is not None:
        stmt = stmt.where(PatLimitSet.test_num == filters["test"])
    if filters.get("active") is not None:
        stmt = stmt.where(PatLimitSet.active.is_(filters["active"]))
    return stmt.order_by(PatLimitSet.step_code, PatLimitSet.test_num, PatLimitSet.id.desc())


# --- where a run may be recorded -------------------------------------------------------

def _test_step(lot: Lot, step_code: str | None) -> StepInfo:
    """The lot's route step a run is recorded at: `step_code`, by default the lot's current
    step. It must be on the lot's route (422), a step of kind test (409 wrong_step), and
    the lot must be still in the plant (409 lot_closed) and at that step, queued or running
    (409 wrong_step)."""
    code = step_code or lot.step_code
    steps = floor.route_steps(lot)
    step = next((s for s in steps if s.code == code), None)
    if step is None:
        raise _invalid("step", _l("Step %(code)s is not on the route of lot %(lot)s.", code=code,
                                  lot=lot.lot_no))
    if step.kind != StepKind.TEST:
        raise Conflict(_l("Step %(code)s is not a test step (its kind is %(kind)s); test data "
                          "belongs to a test step.", code=code, kind=StepKind.word(step.kind)),
                       code=ErrorCode.WRONG_STEP)
    if lot.state in CLOSED_LOT_STATES:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code=ErrorCode.LOT_CLOSED)
    if lot.step_code != code:
        raise Conflict(_l("Lot %(lot)s is at step %(step_code)s, not %(code)s.", lot=lot.lot_no,
                          step_code=lot.step_code, code=code),
                       code=ErrorCode.WRONG_STEP)
    return step


# --- STDF import -----------------------------------------------------------------------

def inflate_limit() -> int:
    """The most bytes of STDF a gzip upload may inflate to (GZIP_INFLATE_LIMIT_MIB)."""
    mib = current_app.config["GZIP_INFLATE_LIMIT_MIB"] if has_app_context() else \
        DEFAULTS["GZIP_INFLATE_LIMIT_MIB"]
    return int(mib) * _MIB


def _refuse_duplicate(session: Session, digest: str) -> None:
    earlier = session.execute(
        select(TestRun.id, Lot.lot_no).join(Lot, Lot.id == TestRun.lot_id)
        .where(TestRun.sha256 == digest)).first()
    if earlier is not None:
        raise Conflict(_l("This file was imported already (test run %(earlier_id)s of lot "
                          "%(lot)s).", earlier_id=earlier.id, lot=earlier.lot_no),
                       code=ErrorCode.DUPLICATE)


def _sdr_ids(f: stdf.StdfFile, name: str) -> str | None:
    values = dict.fromkeys(v for v in (_text(sdr.get(name)) for sdr in f.sdrs) if v)
    return _text(", ".join(values))


@dataclass
class _TestData:
    """One parametric test of a file: its definition, the passing parts' values and, for
    each value, the part it belongs to (its position among the passing parts)."""

    tdef: stdf.TestDef
    values: array[float]
    owners: array[int]

    @property
    def clamp(self) -> tuple[float | None, float | None]:
        """The limits PAT may never be wider than: the test limits, narrowed by the spec
        limits when the file gives both."""
        return _clamp(self.tdef.lo, self.tdef.hi, self.tdef.spec_lo, self.tdef.spec_hi)


def _clamp(lo: float | None, hi: float | None, spec_lo: float | None,
           spec_hi: float | None) -> tuple[float | None, float | None]:
    los = [v for v in (_finite(lo), _finite(spec_lo)) if v is not None]
    his = [v for v in (_finite(hi), _finite(spec_hi)) if v is not None]
    return (max(los) if los else None, min(his) if his else None)


def _final_parts(f: stdf.StdfFile) -> list[stdf.Part]:
    """Each unit's last part record (its final result), in the order units first appear."""
    last: dict[tuple, stdf.Part] = {}
    for index, part in enumerate(f.parts):
        last[stdf.unit_key(part, index)] = part
    return list(last.values())


# Uploads are read in pieces of this many bytes.
_CHUNK = 1 << 20


def _spool(content: bytes | bytearray | memoryview | IO[bytes], spool: IO[bytes],
           limit: int) -> tuple[int, str]:
    """Copy an upload to `spool` in pieces, gzip inflated (bounded by `limit`): the bytes
    uploaded and the SHA-256 of the STDF stream (the same file gzipped or not is one file).
    Nothing of the upload is held in memory beyond one piece."""
    digest = hashlib.sha256()
    size = 0

    def pieces() -> Iterator[bytes | memoryview]:
        nonlocal size
        if isinstance(content, bytes | bytearray | memoryview):
            size = len(content)
            yield from (memoryview(content)[i:i + _CHUNK] for i in range(0, size, _CHUNK))
            return
        while chunk := content.read(_CHUNK):
            size += len(chunk)
            yield chunk

    for piece in stdf.inflate_chunks(pieces(), limit=limit):
        digest.update(piece)
        spool.write(piece)
    spool.flush()
    return size, digest.hexdigest()


def _le_floats(values: array[float]) -> bytes:
    """float32 values as TestParam.passing_values stores them (little-endian)."""
    if sys.byteorder == "big":
        values = array("f", values)
        values.byteswap()
    return values.tobytes()


def import_stdf(session: Session, actor: Actor, lot: Lot,
                content: bytes | bytearray | memoryview | IO[bytes], *,
                step: str | None = None, pass_: str | None = None) -> TestRun:
    """Import an STDF V4 file (plain or gzip) as a test run of `lot` at a test step.

    `content` is the file, or a binary stream to read it from (an upload: it is read in
    pieces, never held whole). The step (default: the lot's current step) is checked as
    `_test_step` says. The file is spooled to a temporary file (gzip inflated, its SHA-256
    taken on the way) and read from there through a memory map, PTRs included, with each
    part's usable values kept compactly: counts come from the part records exactly as the
    API defines them, summary records that disagree become `warnings`, and the passing
    parts' values per test are kept for PAT. Dynamic PAT (and active static limits) count
    PAT failures, the run joins the lot's test insertion at the step as the pass `pass_`
    (first, retest, resume; default inferred: mes.testfloor.insertions.place) and the
    lot's history records the run; SBA is judged when the insertion closes. The lot does
    not move. Raises InvalidInput (`invalid_stdf` with the byte offset for a file that is
    not STDF V4 or is truncated; `no_parts` for a file without part records; a step not on
    the route; `retest_exceeds_failures`), Conflict (`wrong_step`, `lot_closed`,
    `duplicate` when the same content was imported before, for any lot,
    `insertion_closed`) and TooLarge (413 `too_large`: gzip input inflating to more than
    `inflate_limit()`; inflating stops at the limit).
    """
    info = _test_step(lot, step)
    # Reading and counting make a few objects per part and no reference cycles: the cyclic
    # collector, which a big file would set off on the whole heap, waits until they are gone.
    with stdf.paused_gc():
        run, params, placement = _read_run(session, actor, lot, info.code, content, pass_)
    _record(session, actor, lot, run, params, placement)
    screen.hold_escapes(session, actor, lot, run)
    screen.resolve_escapes(session, actor, lot, run)
    return run


def _read_run(session: Session, actor: Actor, lot: Lot, step_code: str,
              content: bytes | bytearray | memoryview | IO[bytes], pass_: str | None
              ) -> tuple[TestRun, list[TestParam], insertions.Placement]:
    """The test run and parameter rows of an STDF file (`import_stdf`), not yet stored,
    and its place in the lot's insertion."""
    limit = inflate_limit()
    with tempfile.TemporaryFile(prefix="mes-stdf-") as spool:
        try:
            file_size, digest = _spool(content, spool, limit)
            # A file imported before is refused before it is read (it was read then).
            _refuse_duplicate(session, digest)
            with stdf.mapped(spool) as buf:
                f = stdf.parse(buf, ptr="values")
        except stdf.InflateLimitExceeded:
            message = _l("The gzip file inflates to more than the limit of %(limit)s MiB of "
                         "STDF (GZIP_INFLATE_LIMIT_MIB); it was not imported.",
                         limit=limit // _MIB)
            raise TooLarge(message, fields={"file": [message]}) from None
        except stdf.StdfError as exc:
            raise _invalid("file", _l("The file is not a readable STDF V4 file: %(problem)s.",
                                      problem=exc),
                           code=ErrorCode.INVALID_STDF) from None
    if not f.parts:
        raise _invalid("file", _l("The file holds no part results (PRR): there is nothing to "
                                  "count."), code=ErrorCode.NO_PARTS)
    summary = stdf.summarise(f)
    check = programs.check_program(session, lot, step_code, f.mir, summary.hard_bins,
                                   summary.soft_bins)
    if check.mismatches:
        programs.refuse_mismatch(session, actor, lot, step_code, check)

    placement = insertions.place(session, lot, step_code, units=summary.units,
                                 requested=pass_, rtst_cod=f.mir.get("RTST_COD"))
    finals = _final_parts(f)
    final_bins: dict[int, int] = defaultdict(int)
    final_soft: dict[int, int] = defaultdict(int)
    failing_soft: set[int] = set()
    for part in finals:
        if part.hard_bin is not None:
            final_bins[part.hard_bin] += 1
        if part.soft_bin is not None:
            final_soft[part.soft_bin] += 1
            if not part.good:
                failing_soft.add(part.soft_bin)
    failing = sorted({p.hard_bin for p in f.parts if not p.good and p.hard_bin is not None})
    # Each passing unit's usable, finite results (stdf.PartValues), gathered per test.
    passing = [part.values for part in finals if part.good and part.values is not None]
    by_test: dict[int, tuple[array[float], array[int]]] = {}
    for owner, (nums, values) in enumerate(passing):
        for test_num, value in zip(nums, values, strict=True):
            column = by_test.get(test_num)
            if column is None:
                column = by_test[test_num] = (array("f"), array("I"))
            column[0].append(value)
            column[1].append(owner)
    tests = {num: _TestData(f.tests.get(num) or stdf.TestDef(num, None, None, None, None,
                                                              None, None), *columns)
             for num, columns in sorted(by_test.items())}
    in_force = screen.limits_in_force(session, lot.product_id, step_code)
    chosen = programs.pat_test_list(session, lot.product_id, step_code)
    screened = tests if chosen is None else {n: t for n, t in tests.items() if n in chosen}
    pat = _pat(screened, in_force.limits, len(passing))
    pat |= screen.screen(session, lot.product_id, step_code, in_force,
                         [zip(p.test_nums, p.values, strict=True) for p in passing],
                         [(p.hard_bin, p.soft_bin) for p in finals], tests=chosen,
                         dynamic=screen.rescreen_limits(session, lot, step_code,
                                                        placement.kind))

    mir = f.mir
    start = mir.get("START_T")
    run = TestRun(
        lot_id=lot.id, product_id=lot.product_id, customer_id=lot.customer_id,
        step_code=step_code, source=TestRunSource.STDF,
        sha256=digest, file_size=file_size,
        stdf_lot_id=_text(summary.lot_id), sublot_id=_text(summary.sublot_id),
        part_type=_text(summary.part_type), test_code=_text(summary.test_code),
        temperature=_text(summary.temperature), job=_text(summary.job_name),
        job_rev=_text(mir.get("JOB_REV")), tester=_text(mir.get("NODE_NAM")),
        tester_type=_text(mir.get("TSTR_TYP")),
        tested_at=datetime.fromtimestamp(start, UTC) if start else None,
        handler=_sdr_ids(f, "HAND_ID"), load_board=_sdr_ids(f, "LOAD_ID"),
        probe_card=_sdr_ids(f, "CARD_ID"),
        parts_tested=summary.parts_tested, units=summary.units, retests=summary.retests,
        first_pass_good=summary.first_pass_good, final_good=summary.final_good,
        first_pass_yield=summary.first_pass_yield, final_yield=summary.final_yield,
        hard_bins={str(b): n for b, n in summary.hard_bins.items()},
        soft_bins={str(b): n for b, n in summary.soft_bins.items()},
        final_bins={str(b): n for b, n in sorted(final_bins.items())}, failing_bins=failing,
        final_soft_bins={str(b): n for b, n in sorted(final_soft.items())},
        failing_soft_bins=sorted(failing_soft),
        warnings=[*f.warnings, *summary.warnings, *check.warnings], pat=pat,
        orphan_ptrs=f.orphan_ptrs,
    )
    params = [TestParam(test_num=num, name=_text(t.tdef.name), units=_text(t.tdef.units),
                        lo=_finite(t.tdef.lo), hi=_finite(t.tdef.hi),
                        spec_lo=_finite(t.tdef.spec_lo), spec_hi=_finite(t.tdef.spec_hi),
                        n=len(t.values), passing_values=_le_floats(t.values))
              for num, t in tests.items()]
    return run, params, placement


# --- bin summaries ---------------------------------------------------------------------

def record_bins(session: Session, actor: Actor, lot: Lot, *, bins: Sequence[dict[str, Any]],
                step: str | None = None, pass_: str | None = None) -> TestRun:
    """Record a bin summary (a tester that writes no STDF) as a test run of `lot`.

    `bins` are {bin, count, passed}: parts_tested = units = the total count, first-pass
    and final good = the count of passing bins (a bin summary knows no retests). There is
    no parametric data, so no PAT. The run joins the lot's test insertion like an imported
    file: the first summary is the first pass, later ones retests unless `pass_` says
    resume. The step is checked as `_test_step` says. Raises InvalidInput (no bin, a bin
    given twice, a negative count, a total of 0, a step not on the route,
    `retest_exceeds_failures`) and Conflict (`wrong_step`, `lot_closed`,
    `insertion_closed`).
    """
    info = _test_step(lot, step)
    if not bins:
        raise _invalid("bins", _l("Give at least one bin."))
    numbers = [b["bin"] for b in bins]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    if repeated:
        raise _invalid("bins", _l("Bin %(bins)s is given more than once.",
                                  bins=", ".join(map(str, repeated))))
    if any(b["count"] < 0 for b in bins):
        raise _invalid("bins", _l("Counts cannot be negative."))
    total = sum(b["count"] for b in bins)
    if total == 0:
        raise _invalid("bins", _l("The bins hold no parts: the counts add up to 0."))
    good = sum(b["count"] for b in bins if b["passed"])
    placement = insertions.place(session, lot, info.code, units=total, requested=pass_)
    counts = {str(b["bin"]): b["count"] for b in sorted(bins, key=lambda b: b["bin"])}
    run = TestRun(
        lot_id=lot.id, product_id=lot.product_id, customer_id=lot.customer_id,
        step_code=info.code, source=TestRunSource.BINS,
        parts_tested=total, units=total, retests=0, first_pass_good=good, final_good=good,
        first_pass_yield=_percent(good, total), final_yield=_percent(good, total),
        hard_bins=counts, soft_bins={}, final_bins=counts,
        failing_bins=sorted(b["bin"] for b in bins if not b["passed"]), warnings=[],
        pat={"mode": PatMode.NONE, "failures": 0, "passing_parts": good, "per_test": {},
             "reason": "A bin summary carries no parametric data.", "limit_set": None,
             "dynamic": False, "escapes": 0, "removed": 0},
    )
    return _record(session, actor, lot, run, [], placement)


# --- what every run does ---------------------------------------------------------------

def _record(session: Session, actor: Actor, lot: Lot, run: TestRun,
            params: Sequence[TestParam], placement: insertions.Placement) -> TestRun:
    """Store the run, put it into its test insertion (whose figures are recomputed) and
    write the lot's history event. SBA is not judged on one file: it judges the insertion
    when it closes."""
    now = utcnow()
    run.lot = lot
    run.created_at = now
    run.created_by = actor_name(actor)
    session.add(run)
    try:
        # Flushed in a savepoint for the run id (parameters, SBA history, hold, history)
        # and so that a simultaneous import of the same file, which the check before could
        # not see, fails on the unique SHA-256 as the duplicate it is.
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if "sha256" in str(exc.orig):
            raise Conflict(_l("This file was imported already, at the same moment."),
                           code=ErrorCode.DUPLICATE) from None
        raise
    for param in params:
        param.run_id = run.id
    session.add_all(params)
    insertion = insertions.join(session, actor, lot, run, placement)
    floor.record_event(
        session, lot, EventKind.TEST_RUN, actor, step=run.step_code, at=now,
        qty_in=run.units, qty_out=run.final_good,
        data={"test_run": run.id, "source": run.source, "parts_tested": run.parts_tested,
              "final_yield": run.final_yield, "pat_failures": run.pat.get("failures", 0),
              "insertion": insertion.id, "pass": run.pass_name})
    run.sba = {"insertion": insertion.id}
    return run


# --- PAT -------------------------------------------------------------------------------

def active_static_limits(session: Session, product_id: int, step_code: str,
                         at: datetime | None = None) -> dict[int, PatLimitSet]:
    """The static PAT limit sets in force for a product at a test step, by test number:
    active and not expired (flagged sets are included; they apply no limits)."""
    now = at or utcnow()
    return {s.test_num: s for s in session.scalars(
        select(PatLimitSet).where(PatLimitSet.product_id == product_id,
                                  PatLimitSet.step_code == step_code,
                                  PatLimitSet.active.is_(True),
                                  PatLimitSet.valid_until > now))}


def _limits_json(limits: stats.PatLimits) -> dict[str, Any]:
    return {"n": limits.n, "median": limits.median, "q1": limits.q1, "q3": limits.q3,
            "robust_sigma": limits.robust_sigma, "k": limits.k, "lo": limits.lo,
            "hi": limits.hi, "flagged": limits.flagged, "reason": limits.reason}


def _pat(tests: dict[int, _TestData], static: dict[int, PatLimitSet],
         passing_parts: int) -> dict[str, Any]:
    """PAT of one lot: per test, dynamic limits from the lot's passing parts (when there are
    at least PAT_MIN_PARTS) and the static set in force; a passing part outside either is
    a PAT failure of that test. `failures` counts parts failing at least one test."""
    per_test: dict[str, Any] = {}
    failing: set[int] = set()  # the passing parts outside the limits of any test
    used = set()
    for num, data in tests.items():
        entry: dict[str, Any] = {"name": _text(data.tdef.name), "n": len(data.values),
                                 "dynamic": None, "static": None, "skipped": None}
        lo = hi = None
        flagged = False
        spec_lo, spec_hi = data.clamp
        if len(data.values) >= PAT_MIN_PARTS:
            dynamic = stats.pat_limits(data.values, k=PAT_K, spec_lo=spec_lo, spec_hi=spec_hi)
            entry["dynamic"] = _limits_json(dynamic)
            flagged = dynamic.flagged
            if not dynamic.flagged:
                lo, hi = dynamic.lo, dynamic.hi
                used.add(PatMode.DYNAMIC)
        else:
            entry["skipped"] = (f"{len(data.values)} passing parts; dynamic limits need at "
                                f"least {PAT_MIN_PARTS}.")
        limit_set = static.get(num)
        if limit_set is not None:
            entry["static"] = {"id": limit_set.id, "lo": limit_set.lo, "hi": limit_set.hi,
                               "flagged": limit_set.flagged,
                               "valid_until": limit_set.valid_until.isoformat()}
            flagged = flagged or limit_set.flagged
            # Only a flagged set lacks its limits.
            if not limit_set.flagged and limit_set.lo is not None and limit_set.hi is not None:
                lo = limit_set.lo if lo is None else max(lo, limit_set.lo)
                hi = limit_set.hi if hi is None else min(hi, limit_set.hi)
                used.add(PatMode.STATIC)
        failed: set[int] = set()
        if lo is not None or hi is not None:
            low = -math.inf if lo is None else lo
            high = math.inf if hi is None else hi
            failed = {owner for owner, value in zip(data.owners, data.values, strict=True)
                      if not low <= value <= high}
            failing |= failed
        entry.update(lo=lo, hi=hi, flagged=flagged, failures=len(failed))
        per_test[str(num)] = entry
    mode = (PatMode.BOTH if used == {PatMode.DYNAMIC, PatMode.STATIC} else used.pop() if used
            else PatMode.NONE)
    return {"mode": mode, "failures": len(failing), "passing_parts": passing_parts,
            "min_parts": PAT_MIN_PARTS, "k": PAT_K, "method": stats.PAT_METHOD,
            "per_test": per_test}


def _test_step_of(session: Session, product: Product, step_code: str) -> StepInfo:
    route = current_route(session, product.route_code)
    steps = route_step_infos(session, route) if route is not None else ()
    step = next((s for s in steps if s.code == step_code), None)
    if step is None or step.kind != StepKind.TEST:
        raise _invalid("step", _l("%(step)s is not a test step of the route of product "
                                  "%(product)s.", step=step_code, product=product.code))
    return step


@dataclass
class PatComputation:
    """What an engineer's PAT computation made: the new limit sets, and the tests left out
    for want of history (with why)."""

    limit_sets: list[PatLimitSet]
    skipped: list[dict[str, Any]]
    version: PatLimitVersion | None = None


def compute_pat_limits(session: Session, actor: Actor, product: Product, *, step: str,
                       tests: Sequence[int] | None = None,
                       valid_days: int = 180, name: str | None = None) -> PatComputation:
    """Compute static PAT limits (AEC-Q001) for a product at a test step from the passing
    parts of its latest lots (one STDF run per lot, the latest of its first pass, never a
    retest; up to PAT_HISTORY_LOTS
    lots): per test, the lots with at least PAT_MIN_PARTS passing values are pooled when at
    least PAT_MIN_LOTS of them qualify. Limits are median -/+ 6 robust sigma, never wider
    than the test's limits (narrowed by its spec limits) of the latest lot; a robust sigma
    of 0 is recorded flagged and applies nothing. Each new set retires the test's earlier
    active set and is valid for `valid_days`.

    `tests` defaults to every test with data; tests without enough history are then left
    out and listed in `skipped`. The sets form the next version of the product's named
    limit set at the step (`name`, default the latest version's name; see
    mes.testfloor.pat.new_version). Voided runs are no history. Raises InvalidInput (not a
    test step of the product's route) and Conflict `insufficient_history` when a test
    named in `tests` lacks the history, or when no test has it, and `conflict` when
    another computation made the same version at the same moment.
    """
    _test_step_of(session, product, step)
    # First passes only: a retest's good parts are the marginal ones that failed before.
    latest = (select(func.max(TestRun.id)).where(TestRun.product_id == product.id,
                                                 TestRun.step_code == step,
                                                 TestRun.source == TestRunSource.STDF,
                                                 or_(TestRun.pass_name.is_(None),
                                                     TestRun.pass_name == insertions.FIRST_PASS),
                                                 programs.live())
              .group_by(TestRun.lot_id))
    runs = session.execute(
        select(TestRun.id, Lot.lot_no).join(Lot, Lot.id == TestRun.lot_id)
        .where(TestRun.id.in_(latest)).order_by(TestRun.id.desc())
        .limit(PAT_HISTORY_LOTS)).all()
    lot_of = {run_id: lot_no for run_id, lot_no in runs}
    stmt = select(TestParam).where(TestParam.run_id.in_(list(lot_of)))
    if tests:
        stmt = stmt.where(TestParam.test_num.in_(list(tests)))
    history: dict[int, dict[str, list[float]]] = defaultdict(dict)
    newest: dict[int, TestParam] = {}
    for param in session.scalars(stmt.order_by(TestParam.run_id.desc())):
        history[param.test_num][lot_of[param.run_id]] = passing_values(param)
        newest.setdefault(param.test_num, param)

    wanted = list(dict.fromkeys(tests)) if tests else sorted(history)
    skipped = []
    for num in wanted:
        qualified = sum(len(v) >= PAT_MIN_PARTS for v in history.get(num, {}).values())
        if qualified < PAT_MIN_LOTS:
            skipped.append({"test_num": num, "name": newest[num].name if num in newest
                            else None, "lots": qualified,
                            "reason": f"{qualified} of the latest {len(runs)} lot(s) have "
                                      f"at least {PAT_MIN_PARTS} passing parts; static "
                                      f"limits need {PAT_MIN_LOTS}."})
    if (tests and skipped) or len(skipped) == len(wanted):
        detail = "; ".join(f"test {s['test_num']}: {s['lots']} lot(s)" for s in skipped[:10])
        raise Conflict(_l("Not enough history for static PAT limits of %(code)s at %(step)s: "
                          "each test needs %(PAT_MIN_LOTS)s lots with at least %(PAT_MIN_PARTS)s "
                          "passing parts (%(value)s).", code=product.code, step=step,
                          PAT_MIN_LOTS=PAT_MIN_LOTS, PAT_MIN_PARTS=PAT_MIN_PARTS,
                          value=detail or 'no test data'),
                       code=ErrorCode.INSUFFICIENT_HISTORY)

    now = utcnow()
    valid_until = now + timedelta(days=valid_days)
    left_out = {s["test_num"] for s in skipped}
    nums = [num for num in wanted if num not in left_out]
    for old in session.scalars(select(PatLimitSet).where(
            PatLimitSet.product_id == product.id, PatLimitSet.step_code == step,
            PatLimitSet.test_num.in_(nums), PatLimitSet.active.is_(True))):
        old.active = False
    pooled = sorted({lot_no for num in nums for lot_no, values in history[num].items()
                     if len(values) >= PAT_MIN_PARTS})
    version = screen.new_version(session, actor, product, step, name=name,
                                 method=stats.PAT_METHOD, source_lots=pooled,
                                 valid_until=valid_until)
    created = []
    for num in nums:
        param = newest[num]
        spec_lo, spec_hi = _clamp(param.lo, param.hi, param.spec_lo, param.spec_hi)
        lots = {lot_no: values for lot_no, values in history[num].items()
                if len(values) >= PAT_MIN_PARTS}
        limits = stats.static_pat_limits(lots, min_lots=PAT_MIN_LOTS,
                                         min_parts_per_lot=PAT_MIN_PARTS, k=PAT_K,
                                         spec_lo=spec_lo, spec_hi=spec_hi)
        created.append(PatLimitSet(
            product=product, step_code=step, test_num=num, test_name=param.name,
            units=param.units, method=limits.method, n=limits.n, lots=limits.lots or 0,
            median=limits.median, q1=limits.q1, q3=limits.q3,
            robust_sigma=limits.robust_sigma, k=limits.k, spec_lo=spec_lo, spec_hi=spec_hi,
            lo=limits.lo, hi=limits.hi, flagged=limits.flagged, reason=limits.reason,
            source_lots=sorted(lots), valid_until=valid_until, active=True, created_at=now,
            created_by=actor_name(actor), version_id=version.id))
    session.add_all(created)
    # Flushed for the ids of the new sets, which the audit record names.
    session.flush()
    audit.record(session, actor=actor, code="product:pat_limits", subject_type="product",
                 subject_key=product.code,
                 data={"step": step, "valid_until": valid_until.isoformat(),
                       "name": version.name, "version": version.version,
                       "sets": {str(s.test_num): s.id for s in created},
                       "flagged": [s.test_num for s in created if s.flagged],
                       "skipped": [s["test_num"] for s in skipped]})
    return PatComputation(created, skipped, version)


# --- SBA -------------------------------------------------------------------------------

def sba_reason(session: Session) -> ReasonCode:
    """The reason of SBA holds: HOLD-SBA when it is an active hold code, else the plant's
    first active hold code (by code); with none at all, HOLD-SBA itself, retired or
    created (audited) when missing. SBA is judged when an insertion closes
    (mes.testfloor.insertions)."""
    return insertions._hold_reason(session, SBA_REASON, "Statistical yield or bin limit "
                                                        "breached (AEC-Q002)")
