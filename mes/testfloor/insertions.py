"""Test insertions: a lot's tester files at a test step as one judgement (PRODUCT.md, "Test
insertions and PAT as a screen"; docs/test-insertions.md has the arithmetic and a worked
example).

The first file of a lot at a test step opens the insertion (pass P1); later files are
retests of the failures (R1, R2, ...) or resumes of the same pass after a tester stop.
Packaged units carry no id, so the arithmetic is per pass: units = units of P1 and its
resumes; first-pass good = good of P1 and its resumes; final good = first-pass good + the
good of every retest; a retest cannot test more units than failed before it. Final bins:
per pass, the retested failures leave their bins and the retest's results take their place.
Within one file, each unit's first and last result stay as the file's reader counts them
(wafer sort: a die retested at the same X/Y).

Closing the insertion judges SBA (AEC-Q002) once, on its final yield and final bins, judges
the PAT fallout, and fixes the proposed track-out, which the track-out at the step must
follow (`before_track_out`, a receiver of `mes.floor.lifecycle.lot_tracking_out`).

Every function works in the caller's transaction and raises before changing anything when
a rule refuses. Of simultaneous changes to one insertion (two closes, a close and a file, a
file and a track-out) one wins and the others lose with 409: the insertion row is
versioned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog import services as catalog
from mes.catalog.models import ReasonCode
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import lifecycle
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.testfloor import programs, stats
from mes.testfloor.models import TestBin, TestInsertion, TestProgram, TestRun, TestStepSetup
from mes.vocabulary import (
    BinKind,
    CustomerCategory,
    HoldSource,
    InsertionState,
    ReasonKind,
    SbaStatus,
    StepKind,
    SystemText,
    TestPass,
)

# AEC-Q002: limits from at least 6 earlier lots' closed insertions; the latest up to this
# many are used.
SBA_MIN_LOTS = 6
SBA_HISTORY_LOTS = 30
# The reason of SBA holds and PAT holds, when the plant has them (else its first active
# hold code).
SBA_REASON = "HOLD-SBA"
PAT_REASON = "HOLD-PAT"
# The reject reason a failing bin without one books to (created when the plant lacks it).
FALLBACK_REJECT = "TEST-FAIL"
FIRST_PASS = "P1"
# The PAT re-screens of an insertion are S1, S2, ... (mes.testfloor.pat).
RESCREEN_PREFIX = "S"


def _percent(good: int, units: int) -> float | None:
    return round(float(Fraction(good * 100, units)), 2) if units else None


# --- reading ---------------------------------------------------------------------------

def lot_insertions(session: Session, lot: Lot) -> list[TestInsertion]:
    """The lot's insertions, oldest first."""
    return list(session.scalars(select(TestInsertion).where(TestInsertion.lot_id == lot.id)
                                .options(joinedload(TestInsertion.lot))
                                .order_by(TestInsertion.id)))


def current_insertion(session: Session, lot: Lot, step_code: str) -> TestInsertion | None:
    """The lot's insertion of its visit of `step_code`: the latest one not tracked out."""
    return session.scalar(
        select(TestInsertion).where(TestInsertion.lot_id == lot.id,
                                    TestInsertion.step_code == step_code,
                                    TestInsertion.tracked_out_at.is_(None))
        .order_by(TestInsertion.id.desc()).limit(1))


def insertion_runs(session: Session, insertion: TestInsertion) -> list[TestRun]:
    """The insertion's runs, voided ones included, oldest first."""
    return list(session.scalars(select(TestRun).where(TestRun.insertion_id == insertion.id)
                                .order_by(TestRun.id)))


# --- which pass a file is ----------------------------------------------------------------

@dataclass
class Placement:
    """Where a new run goes: its insertion (None: a new one opens), its pass kind and
    name."""

    insertion: TestInsertion | None
    kind: str
    name: str


def _retest_flag(rtst_cod: Any) -> bool | None:
    """MIR.RTST_COD: Y or a count 1-9 says retest; N or 0 says not; blank says nothing."""
    code = str(rtst_cod or "").replace("\0", "").strip().upper()
    if not code:
        return None
    if code == "Y" or (code.isdigit() and code != "0"):
        return True
    if code in ("N", "0"):
        return False
    return None


def place(session: Session, lot: Lot, step_code: str, *, units: int,
          requested: str | None = None, rtst_cod: Any = None) -> Placement:
    """Decide the pass of a new file of `lot` at `step_code` with `units` units, before
    anything is stored. `requested` (first, retest, resume) wins over the inference: no
    insertion (or one with no live first pass) → first; MIR.RTST_COD Y/1-9 → retest; N/0
    → resume; blank → retest. Raises Conflict `insertion_closed` (the visit's insertion is
    closed), InvalidInput (`first` when the insertion has its first pass; `retest` or
    `resume` before a first pass) and InvalidInput `retest_exceeds_failures`."""
    insertion = current_insertion(session, lot, step_code)
    if insertion is not None and insertion.state == InsertionState.CLOSED:
        raise Conflict(_l("The test insertion of lot %(lot)s at %(step)s is closed: track the "
                          "lot out, or void a run to change it.", lot=lot.lot_no,
                          step=step_code), code=ErrorCode.INSERTION_CLOSED)
    passes = _passes(session, insertion) if insertion is not None else []
    has_first = bool(passes) and passes[0].kind == TestPass.FIRST
    if requested is None:
        flag = _retest_flag(rtst_cod)
        kind = (TestPass.FIRST if not has_first else TestPass.RESUME if flag is False
                else TestPass.RETEST)
    else:
        kind = TestPass(requested)
    if kind == TestPass.FIRST and has_first:
        raise _invalid("pass", _l("Lot %(lot)s has its first pass at %(step)s already: a later "
                                  "file is a retest or a resume.", lot=lot.lot_no,
                                  step=step_code))
    if kind != TestPass.FIRST and not has_first:
        raise _invalid("pass", _l("Lot %(lot)s has no first pass at %(step)s yet: there is "
                                  "nothing to retest or resume.", lot=lot.lot_no,
                                  step=step_code))
    if kind == TestPass.FIRST:
        return Placement(insertion, kind, FIRST_PASS)
    figures = compute(passes)
    if kind == TestPass.RESCREEN:
        # The good units tested again against the lot's dynamic PAT limits (mes.testfloor.pat).
        if units > figures.final_good:
            raise _invalid("file", _l("The PAT re-screen tests %(units)s units, but only "
                                      "%(good)s are good in the insertion of lot %(lot)s at "
                                      "%(step)s.", units=units, good=figures.final_good,
                                      lot=lot.lot_no, step=step_code))
        rescreens = sum(p.kind == TestPass.RESCREEN for p in passes)
        return Placement(insertion, kind, f"{RESCREEN_PREFIX}{rescreens + 1}")
    if kind == TestPass.RESUME:
        last = passes[-1]
        if last.kind == TestPass.RESCREEN:
            before = compute(passes[:-1])
            if last.units + units > before.final_good:
                raise _invalid("file", _l("The PAT re-screen tests %(units)s units, but only "
                                          "%(good)s are good in the insertion of lot %(lot)s "
                                          "at %(step)s.", units=last.units + units,
                                          good=before.final_good, lot=lot.lot_no,
                                          step=step_code))
        if last.kind == TestPass.RETEST:
            # More units of the latest retest: together they retest no more than failed.
            before = compute(passes[:-1])
            _check_retest(lot, step_code, last.units + units,
                          before.units - before.final_good)
        return Placement(insertion, kind, last.name)
    _check_retest(lot, step_code, units, figures.units - figures.final_good)
    retests = sum(p.kind == TestPass.RETEST for p in passes)
    return Placement(insertion, kind, f"R{retests + 1}")


def _check_retest(lot: Lot, step_code: str, units: int, failures: int) -> None:
    if units > failures:
        raise _invalid("file", _l("The retest tests %(units)s units, but only %(failures)s "
                                  "failed before it in the insertion of lot %(lot)s at "
                                  "%(step)s.", units=units, failures=failures, lot=lot.lot_no,
                                  step=step_code),
                       code=ErrorCode.RETEST_EXCEEDS_FAILURES)


def _invalid(field_name: str, message: Any, code: ErrorCode | None = None) -> InvalidInput:
    return InvalidInput(message, code=code, fields={field_name: [message]})


def join(session: Session, actor: Actor, lot: Lot, run: TestRun,
         placement: Placement) -> TestInsertion:
    """Put the stored `run` into its insertion (opening it for a first pass) and recompute
    the insertion's figures. A simultaneous first file of the same lot and step loses
    with 409 (one open insertion per lot and step)."""
    insertion = placement.insertion
    if insertion is None:
        insertion = TestInsertion(lot_id=lot.id, product_id=lot.product_id,
                                  step_code=run.step_code, state=InsertionState.OPEN,
                                  opened_at=utcnow(), opened_by=actor_name(actor))
        session.add(insertion)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise Conflict(_l("Another file of lot %(lot)s at %(step)s opened its test "
                              "insertion at the same moment; send this one again.",
                              lot=lot.lot_no, step=run.step_code),
                           code=ErrorCode.STALE) from None
    run.insertion_id = insertion.id
    run.pass_kind = placement.kind
    run.pass_name = placement.name
    session.flush()
    recompute(session, insertion)
    return insertion


# --- the arithmetic ----------------------------------------------------------------------

@dataclass
class Pass:
    """One pass of an insertion: its live runs summed."""

    name: str
    kind: str
    run_ids: list[int]
    units: int
    first_good: int
    good: int
    hard_bins: dict[int, int]
    soft_bins: dict[int, int]
    failing_hard: set[int]
    failing_soft: set[int]


@dataclass
class Figures:
    """An insertion's figures from its passes."""

    units: int
    first_pass_good: int
    final_good: int
    hard_bins: dict[int, int]
    soft_bins: dict[int, int]
    failing_hard: set[int]
    failing_soft: set[int]

    @property
    def first_pass_yield(self) -> float | None:
        return _percent(self.first_pass_good, self.units)

    @property
    def final_yield(self) -> float | None:
        return _percent(self.final_good, self.units)


def _bins(counts: Mapping[str, Any]) -> dict[int, int]:
    return {int(b): int(n) for b, n in counts.items()}


def passes_of(runs: Iterable[TestRun]) -> list[Pass]:
    """The passes of an insertion's live runs: the first pass, then each retest in order;
    resumes add to the pass they continue."""
    found: dict[str, Pass] = {}
    for run in runs:
        if run.voided_at is not None or run.pass_name is None:
            continue
        p = found.get(run.pass_name)
        if p is None:
            kind = (TestPass.FIRST if run.pass_name == FIRST_PASS
                    else TestPass.RESCREEN if run.pass_name.startswith(RESCREEN_PREFIX)
                    else TestPass.RETEST)
            p = found[run.pass_name] = Pass(run.pass_name, kind, [], 0, 0, 0, defaultdict(int),
                                            defaultdict(int), set(), set())
        p.run_ids.append(run.id)
        p.units += run.units
        p.first_good += run.first_pass_good
        p.good += run.final_good
        for b, n in _bins(run.final_bins).items():
            p.hard_bins[b] += n
        for b, n in _bins(run.final_soft_bins or {}).items():
            p.soft_bins[b] += n
        p.failing_hard |= {int(b) for b in run.failing_bins}
        p.failing_soft |= {int(b) for b in (run.failing_soft_bins or [])}
    # After the first pass, the passes in the order their first files came.
    return sorted(found.values(), key=lambda p: (p.kind != TestPass.FIRST, min(p.run_ids)))


def _passes(session: Session, insertion: TestInsertion) -> list[Pass]:
    return passes_of(insertion_runs(session, insertion))


def remove_failures(bins: Mapping[int, int], failing: set[int], count: int) -> dict[int, int]:
    """`bins` with `count` units taken out of its failing bins: all of them when `count`
    covers every failure, else in proportion to each failing bin's units (largest remainder,
    ties to the lower bin). Packaged units carry no id: which failures a retest took is not
    known, only how many."""
    result = dict(bins)
    fails = {b: n for b, n in bins.items() if b in failing and n > 0}
    total = sum(fails.values())
    if count <= 0 or total == 0:
        return result
    if count >= total:
        for b in fails:
            result[b] = 0
    else:
        shares = {b: Fraction(n * count, total) for b, n in fails.items()}
        taken = {b: int(share) for b, share in shares.items()}
        left = count - sum(taken.values())
        for b in sorted(fails, key=lambda b: (-(shares[b] - taken[b]), b))[:left]:
            taken[b] += 1
        for b, n in taken.items():
            result[b] -= n
    return {b: n for b, n in result.items() if n}


def compute(passes: Sequence[Pass]) -> Figures:
    """The insertion's figures from its passes (see the module's docstring)."""
    first = [p for p in passes if p.kind == TestPass.FIRST]
    units = sum(p.units for p in first)
    first_pass_good = sum(p.first_good for p in first)
    good = sum(p.good for p in first)
    hard: dict[int, int] = {}
    soft: dict[int, int] = {}
    failing_hard: set[int] = set()
    failing_soft: set[int] = set()
    for p in first:
        for b, n in p.hard_bins.items():
            hard[b] = hard.get(b, 0) + n
        for b, n in p.soft_bins.items():
            soft[b] = soft.get(b, 0) + n
        failing_hard |= p.failing_hard
        failing_soft |= p.failing_soft
    if first:
        for p in passes:
            if p.kind == TestPass.RESCREEN:
                # The re-screened good units leave their (passing) bins; the re-screen's
                # results, outliers in the PAT bin, take their place.
                hard = remove_failures(hard, set(hard) - failing_hard, p.units)
                soft = remove_failures(soft, set(soft) - failing_soft, p.units)
                failing_hard |= p.failing_hard
                failing_soft |= p.failing_soft
                for b, n in p.hard_bins.items():
                    hard[b] = hard.get(b, 0) + n
                for b, n in p.soft_bins.items():
                    soft[b] = soft.get(b, 0) + n
                good += p.good - p.units
                continue
            if p.kind != TestPass.RETEST:
                continue
            failing_hard |= p.failing_hard
            failing_soft |= p.failing_soft
            hard = remove_failures(hard, failing_hard, p.units)
            soft = remove_failures(soft, failing_soft, p.units)
            for b, n in p.hard_bins.items():
                hard[b] = hard.get(b, 0) + n
            for b, n in p.soft_bins.items():
                soft[b] = soft.get(b, 0) + n
            good += p.good
    return Figures(units, first_pass_good, good, dict(sorted(hard.items())),
                   dict(sorted(soft.items())), failing_hard, failing_soft)


def recompute(session: Session, insertion: TestInsertion) -> TestInsertion:
    """Set the insertion's figures from its live runs (after a run joins or is voided)."""
    passes = _passes(session, insertion)
    figures = compute(passes)
    insertion.passes = [{"pass": p.name, "kind": p.kind, "run_ids": p.run_ids,
                         "units": p.units, "good": p.good} for p in passes]
    insertion.units = figures.units
    insertion.first_pass_good = figures.first_pass_good
    insertion.final_good = figures.final_good
    insertion.first_pass_yield = figures.first_pass_yield
    insertion.final_yield = figures.final_yield
    insertion.final_hard_bins = {str(b): n for b, n in figures.hard_bins.items()}
    insertion.final_soft_bins = {str(b): n for b, n in figures.soft_bins.items()}
    insertion.pat = pat_summary(session, insertion, figures)
    session.flush()
    return insertion


def after_void(session: Session, run: TestRun) -> None:
    """A voided run leaves its insertion: its figures are recomputed (a closed insertion's
    verdicts and proposal stay as they were judged; its figures say what counts now)."""
    if run.insertion_id is None:
        return
    insertion = session.get(TestInsertion, run.insertion_id)
    if insertion is not None:
        recompute(session, insertion)


# --- PAT -------------------------------------------------------------------------------

def _setup(session: Session, insertion: TestInsertion) -> TestStepSetup | None:
    return programs.step_setup(session, insertion.product_id, insertion.step_code)


def pat_bin(setup: TestStepSetup | None) -> TestBin | None:
    """The step's PAT bin, if one is defined."""
    return next((b for b in (setup.bins if setup is not None else ()) if b.pat), None)


def pat_summary(session: Session, insertion: TestInsertion,
                figures: Figures | None = None) -> dict[str, Any]:
    """What PAT did in the insertion: the program's limit set, whether dynamic limits were
    applied, escapes (not judged yet: null) and the parts removed to the PAT bin (final
    bins)."""
    program: TestProgram | None = programs.released_program(session, insertion.product_id,
                                                            insertion.step_code)
    setup = _setup(session, insertion)
    the_bin = pat_bin(setup)
    removed = None
    if the_bin is not None:
        bins = (insertion.final_hard_bins if the_bin.kind == BinKind.HARD
                else insertion.final_soft_bins)
        if figures is not None:
            bins = {str(b): n for b, n in (figures.hard_bins if the_bin.kind == BinKind.HARD
                                           else figures.soft_bins).items()}
        removed = int(bins.get(str(the_bin.bin), 0))
    # What each file's screen did (mes.testfloor.pat.screen): the static set in force
    # (name and version) of the latest file that had one, a re-screen against the lot's
    # dynamic limits, and the parts binned good outside the limits applied.
    screens = [run.pat or {} for run in session.scalars(
        select(TestRun).where(TestRun.insertion_id == insertion.id, programs.live())
        .order_by(TestRun.id))]
    limit_sets = [p["limit_set"] for p in screens if p.get("limit_set")]
    limit_set = limit_sets[-1] if limit_sets else (
        {"name": program.pat_limit_set, "version": program.pat_limit_set_version}
        if program is not None and program.pat_limit_set else None)
    return {"limit_set": limit_set,
            "dynamic": any(bool(p.get("dynamic")) for p in screens),
            "escapes": sum(int(p.get("escapes") or 0) for p in screens),
            "removed": removed}


def judge_pat_fallout(session: Session, actor: Actor, lot: Lot,
                      insertion: TestInsertion) -> dict[str, Any]:
    """PAT fallout of a closing insertion: the PAT bin's units against the product's limit
    (`pat_fallout_limit_pct` of the step's bin definitions, default 0.5 % of units). Above
    it, the lot is held for engineering (source `pat`). Without a PAT bin nothing is
    judged."""
    setup = _setup(session, insertion)
    the_bin = pat_bin(setup)
    limit = setup.pat_fallout_limit_pct if setup is not None else \
        programs.DEFAULT_PAT_FALLOUT_PCT
    removed = (insertion.pat or {}).get("removed")
    verdict: dict[str, Any] = {"limit_pct": limit, "removed": removed, "pct": None,
                               "above": None, "hold": None}
    if the_bin is None or removed is None or not insertion.units:
        return verdict
    pct = removed * 100 / insertion.units
    verdict["pct"] = round(pct, 3)
    verdict["above"] = pct > limit
    if pct > limit:
        params = {"step": insertion.step_code, "removed": removed, "units": insertion.units,
                  "value": round(pct, 2), "limit": limit}
        verdict["hold"] = quality.place_holds(
            session, SYSTEM, [lot], _hold_reason(session, PAT_REASON,
                                                 "PAT fallout above the limit (AEC-Q001)"),
            "", HoldSource.PAT, placed_by=SYSTEM, text=(SystemText.PAT_FALLOUT, params),
            data={"insertion": insertion.id, "step": insertion.step_code, **params,
                  "triggered_by": actor_name(actor)})[0].id
    return verdict


# --- SBA -------------------------------------------------------------------------------

def _hold_reason(session: Session, preferred: str, description: str) -> ReasonCode:
    """`preferred` when it is an active hold code, else the plant's first active hold code;
    with none at all, `preferred` itself, retired or created."""
    codes = {reason.code: reason for reason in session.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))}
    if codes:
        return codes.get(preferred) or next(iter(codes.values()))
    retired = session.scalar(select(ReasonCode).where(ReasonCode.code == preferred,
                                                      ReasonCode.kind == ReasonKind.HOLD))
    if retired is not None:
        return retired
    created = catalog.create_reason_code(session, SYSTEM, {
        "code": preferred, "kind": ReasonKind.HOLD, "description": description})
    session.flush()
    return created


def _bin_pct(insertion: TestInsertion, bin_no: int) -> float:
    return insertion.final_hard_bins.get(str(bin_no), 0) * 100 / insertion.units


def _failing_bins(insertion: TestInsertion) -> set[int]:
    return {int(b) for b in (insertion.sba or {}).get("failing_bins", [])}


def judge_sba(session: Session, actor: Actor, lot: Lot, insertion: TestInsertion,
              failing: set[int]) -> dict[str, Any]:
    """SBA (AEC-Q002) of a closing insertion against the closed insertions of the latest
    earlier lots of the product at the step (up to SBA_HISTORY_LOTS, at least
    SBA_MIN_LOTS): the final yield, and the failing bins as percent of units by final bin
    — the bins the step's definitions mark `sba`, else the failing bins seen in the history
    (a lot without the bin counts 0 %). A breach holds the lot (level 1 engineering, level
    2 MRB)."""
    history = [h for h in session.scalars(
        select(TestInsertion).where(TestInsertion.product_id == insertion.product_id,
                                    TestInsertion.step_code == insertion.step_code,
                                    TestInsertion.lot_id != lot.id,
                                    TestInsertion.state == InsertionState.CLOSED,
                                    TestInsertion.units > 0)
        .options(joinedload(TestInsertion.lot))
        .order_by(TestInsertion.closed_at.desc(), TestInsertion.id.desc())
        .limit(SBA_HISTORY_LOTS))]
    setup = _setup(session, insertion)
    flagged = {b.bin for b in (setup.bins if setup is not None else ())
               if b.sba and b.kind == BinKind.HARD}
    controlled = sorted(flagged or {b for h in history for b in _failing_bins(h)})
    value = insertion.final_good * 100 / insertion.units
    result = stats.sba_evaluate(
        [h.final_good * 100 / h.units for h in history],
        {b: [_bin_pct(h, b) for h in history] for b in controlled},
        value, {b: _bin_pct(insertion, b) for b in controlled}, min_lots=SBA_MIN_LOTS)
    verdict: dict[str, Any] = {
        "status": result.status, "history_lots": result.history_lots,
        "min_lots": SBA_MIN_LOTS, "lots": [h.lot.lot_no for h in history],
        "yield": {"value": value}, "bins": {}, "breaches": [], "hold": None, "mrb": False,
        "failing_bins": sorted(failing)}
    if result.yield_limits is None:
        return verdict
    limits = result.yield_limits
    verdict["yield"] |= {"mean": limits.mean, "sigma": limits.sigma, "syl1": limits.level1,
                         "syl2": limits.level2, "breach": result.yield_breach}
    if result.yield_breach:
        verdict["breaches"].append({
            "kind": "yield", "level": result.yield_breach, "value": value,
            "limit": limits.level2 if result.yield_breach == SbaStatus.LEVEL2.value
            else limits.level1})
    for bin_no, bin_limits in result.bin_limits.items():
        pct = _bin_pct(insertion, bin_no)
        breach = result.bin_breaches.get(bin_no)
        verdict["bins"][str(bin_no)] = {
            "value": pct, "mean": bin_limits.mean, "sigma": bin_limits.sigma,
            "sbl1": bin_limits.level1, "sbl2": bin_limits.level2, "breach": breach}
        if breach:
            verdict["breaches"].append({
                "kind": "bin", "bin": bin_no, "level": breach, "value": pct,
                "limit": bin_limits.level2 if breach == SbaStatus.LEVEL2.value
                else bin_limits.level1})
    verdict["mrb"] = result.status == SbaStatus.LEVEL2.value
    if result.status in (SbaStatus.LEVEL1, SbaStatus.LEVEL2):
        verdict["hold"] = _sba_hold(session, actor, lot, insertion, verdict).id
    return verdict


def _sba_hold(session: Session, actor: Actor, lot: Lot, insertion: TestInsertion,
              verdict: dict[str, Any]) -> Hold:
    level2 = verdict["status"] == SbaStatus.LEVEL2
    last_run = max((run_id for p in insertion.passes for run_id in p["run_ids"]), default=None)
    params = {"level": 2 if level2 else 1, "step": insertion.step_code, "test_run": last_run,
              "history_lots": verdict["history_lots"],
              "breaches": [{key: breach.get(key) for key in ("kind", "level", "bin", "value",
                                                             "limit")}
                           for breach in verdict["breaches"]]}
    return quality.place_holds(
        session, SYSTEM, [lot], _hold_reason(session, SBA_REASON, "Statistical yield or bin "
                                             "limit breached (AEC-Q002)"),
        "", HoldSource.SBA, placed_by=SYSTEM, text=(SystemText.SBA_BREACH, params),
        data={"insertion": insertion.id, "test_run": last_run, "step": insertion.step_code,
              "sba": verdict["status"], "mrb": level2, "breaches": verdict["breaches"],
              "triggered_by": actor_name(actor)})[0]


# --- closing ---------------------------------------------------------------------------

def fallback_reject(session: Session) -> ReasonCode:
    """The reject reason of a failing bin that names none: TEST-FAIL, created (audited by
    the catalog) when the plant lacks it, reactivated never (a retired one is still a reject
    code, which a track-out accepts)."""
    found = session.scalar(select(ReasonCode).where(ReasonCode.code == FALLBACK_REJECT))
    if found is not None and found.kind == ReasonKind.REJECT:
        return found
    if found is not None:
        raise Conflict(_l("Reason code %(code)s exists but is not a reject reason; failing "
                          "bins without a reason cannot be booked.", code=FALLBACK_REJECT))
    created = catalog.create_reason_code(session, SYSTEM, {
        "code": FALLBACK_REJECT, "kind": ReasonKind.REJECT,
        "description": "Failed at test (bin without a reject reason)",
        "customer_category": CustomerCategory.TEST})
    session.flush()
    return created


def propose(session: Session, lot: Lot, insertion: TestInsertion,
            failing: set[int]) -> dict[str, Any]:
    """The proposed track-out: good = final good; rejects per reject reason of the failing
    final hard bins (the bin definitions' reasons; TEST-FAIL for a failing bin without
    one); unaccounted = the quantity tracked in (the lot's quantity) − units tested."""
    setup = _setup(session, insertion)
    reason_of = {b.bin: b.reason.code for b in (setup.bins if setup is not None else ())
                 if b.kind == BinKind.HARD and b.reason is not None}
    passing = {b.bin for b in (setup.bins if setup is not None else ())
               if b.kind == BinKind.HARD and b.passing}
    rejects: dict[str, int] = defaultdict(int)
    for bin_key, qty in insertion.final_hard_bins.items():
        b = int(bin_key)
        if qty <= 0 or b in passing or b not in failing:
            continue
        code = reason_of.get(b)
        if code is None:
            code = fallback_reject(session).code
        rejects[code] += int(qty)
    qty_in = lot.quantity
    return {"good_qty": insertion.final_good,
            "rejects": [{"reason": code, "qty": qty} for code, qty in sorted(rejects.items())],
            "unaccounted": qty_in - insertion.units, "qty_in": qty_in}


def close(session: Session, actor: Actor, lot: Lot, step_code: str) -> TestInsertion:
    """Close the lot's insertion at `step_code`: judge SBA once on its final figures, judge
    the PAT fallout, and fix the proposed track-out. Raises NotFound (no insertion of the
    lot's visit of the step), Conflict `insertion_closed` (closed before, or by a
    simultaneous close) and Conflict `no_test_data` (every run of it voided)."""
    insertion = current_insertion(session, lot, step_code)
    if insertion is None:
        raise NotFound(_l("Lot %(lot)s has no test insertion at %(step)s.", lot=lot.lot_no,
                          step=step_code))
    if insertion.state == InsertionState.CLOSED:
        raise _closed(lot, step_code)
    passes = _passes(session, insertion)
    if not passes or not insertion.units:
        raise Conflict(_l("Lot %(lot)s has no live test data at %(step)s: there is nothing "
                          "to close.", lot=lot.lot_no, step=step_code),
                       code=ErrorCode.NO_TEST_DATA)
    now = utcnow()
    who = actor_name(actor)
    # One conditional statement: of two simultaneous closes (or a close and a file that
    # changes the insertion), one finds the row changed.
    done = session.execute(
        update(TestInsertion).where(TestInsertion.id == insertion.id,
                                    TestInsertion.state == InsertionState.OPEN,
                                    TestInsertion.version == insertion.version)
        .values(state=InsertionState.CLOSED, closed_at=now, closed_by=who,
                version=TestInsertion.version + 1)
        .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise _closed(lot, step_code)
    session.refresh(insertion)
    figures = compute(passes)
    failing = figures.failing_hard
    insertion.sba = judge_sba(session, actor, lot, insertion, failing)
    insertion.pat = {**pat_summary(session, insertion),
                     "fallout": judge_pat_fallout(session, actor, lot, insertion)}
    insertion.proposal = propose(session, lot, insertion, failing)
    session.flush()
    audit.record(session, actor=actor, code="test_insertion:close",
                 subject_type="test_insertion", subject_key=str(insertion.id),
                 data={"lot": lot.lot_no, "step": step_code, "units": insertion.units,
                       "first_pass_good": insertion.first_pass_good,
                       "final_good": insertion.final_good, "sba": insertion.sba["status"],
                       "pat_hold": insertion.pat["fallout"]["hold"],
                       "proposal": insertion.proposal})
    return insertion


def _closed(lot: Lot, step_code: str) -> Conflict:
    return Conflict(_l("The test insertion of lot %(lot)s at %(step)s is closed already.",
                       lot=lot.lot_no, step=step_code), code=ErrorCode.INSERTION_CLOSED)


# --- the track-out at a test step --------------------------------------------------------

def tested_steps(session: Session, product_id: int) -> set[str] | None:
    """The test steps a product is tested at: those with a released program, when it has
    any; None (every test step of its route) when it has none."""
    steps = set(session.scalars(select(TestProgram.step_code).where(
        TestProgram.product_id == product_id, TestProgram.superseded_at.is_(None))))
    return steps or None


def check_track_out(session: Session, lot: Lot, step_code: str, qty_in: int, good_qty: int,
                    rejects: Sequence[Mapping[str, Any]]) -> TestInsertion | None:
    """The rules of a track-out at a test step: a closed insertion (409 `insertion_open`
    while one is open; 409 `no_test_data` without test data — runs recorded before
    insertions count as test data and need none), and quantities equal to its proposal
    except for the unaccounted line (422 `quantity_mismatch` naming the insertion's
    figures). A product with released test programs is tested only at the steps it has one
    for: elsewhere nothing is required. Returns the insertion to mark tracked out."""
    tested = tested_steps(session, lot.product_id)
    if tested is not None and step_code not in tested:
        return None
    insertion = current_insertion(session, lot, step_code)
    if insertion is None:
        legacy = session.scalar(select(TestRun.id).where(
            TestRun.lot_id == lot.id, TestRun.step_code == step_code,
            TestRun.insertion_id.is_(None), programs.live()).limit(1))
        if legacy is not None:
            return None
        raise Conflict(_l("Lot %(lot)s has no test data at %(step)s: import its tester files "
                          "or record its bins, then close the insertion.", lot=lot.lot_no,
                          step=step_code), code=ErrorCode.NO_TEST_DATA)
    if insertion.state == InsertionState.OPEN:
        raise Conflict(_l("The test insertion of lot %(lot)s at %(step)s is open: close it "
                          "first.", lot=lot.lot_no, step=step_code),
                       code=ErrorCode.INSERTION_OPEN)
    proposal = insertion.proposal or {}
    given: dict[str, int] = defaultdict(int)
    for r in rejects:
        given[r["reason"]] += int(r["qty"])
    short = [r for r in proposal.get("rejects", []) if given.get(r["reason"], 0) < r["qty"]]
    unaccounted = qty_in - insertion.units
    if good_qty != proposal.get("good_qty") or short or unaccounted < 0:
        figures = {"units": insertion.units, "final_good": insertion.final_good,
                   "rejects": proposal.get("rejects", []), "unaccounted": unaccounted}
        lines = ", ".join(f"{r['reason']} {r['qty']}" for r in proposal.get("rejects", []))
        message = _l("The track-out must follow the test insertion at %(step)s: %(units)s "
                     "units tested, good %(good)s, rejects %(rejects)s, and %(unaccounted)s "
                     "unaccounted unit(s) booked to a reason.", step=step_code,
                     units=insertion.units, good=insertion.final_good,
                     rejects=lines or "0", unaccounted=unaccounted)
        raise InvalidInput(message, code=ErrorCode.QUANTITY_MISMATCH,
                           fields={"good_qty": [message]}, extra={"insertion": figures})
    return insertion


def before_track_out(lot: Lot, *, session: Session, run: Any, good_qty: int | None = None,
                     rejects: Sequence[Mapping[str, Any]] = (), **_: Any) -> None:
    """The test floor's rules of a track-out (a receiver of
    `mes.floor.lifecycle.lot_tracking_out`): at a test step, `check_track_out`; the
    insertion followed is marked tracked out (versioned: a simultaneous change loses)."""
    if good_qty is None:
        return
    steps = floor.route_steps(lot)
    step = next((s for s in steps if s.code == run.step_code), None)
    if step is None or step.kind != StepKind.TEST:
        return
    insertion = check_track_out(session, lot, run.step_code, run.qty_in, good_qty, rejects)
    if insertion is not None:
        insertion.tracked_out_at = utcnow()
        session.flush()


lifecycle.lot_tracking_out.connect(before_track_out, weak=False)
