"""PAT as a screen (AEC-Q001, PRODUCT.md "Test insertions and PAT as a screen").

Static limits are a named, versioned limit set per product and test step
(`PatLimitVersion`, its per-test rows `PatLimitSet`); the released test program names the
version it carries, and that version is the set in force at the step. A part the tester
binned good whose value of a PAT test lies outside the limits in force is a **PAT escape**:
the lot is held (source `pat`, text `pat_escape`) and may not ship until a re-screen bins
the part out or QA dispositions the hold (releasing it). Dynamic limits are the lot's own:
robust mean +/- 6 robust sigma of its passing parts in the first pass, never wider than the
test's limits; the tester applies them in a re-screen pass that bins outliers to the PAT
bin.

What a run says about PAT (`TestRun.pat`) is what was done: `limit_set` (the static set in
force, name and version, or None), `dynamic` (the run was a re-screen checked against the
lot's dynamic limits), `escapes` (parts binned good outside the limits applied) and
`removed` (parts the tester binned to the step's PAT bin).

Every function works in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog.models import Product, ReasonCode
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.testfloor import insertions, programs, stats
from mes.testfloor.models import (
    PatLimitSet,
    PatLimitVersion,
    TestInsertion,
    TestParam,
    TestRun,
)
from mes.vocabulary import (
    HoldSource,
    HoldStatus,
    SystemText,
    TestPass,
    TestRunSource,
)

# AEC-Q001: k = 6 robust sigma; dynamic limits need at least 30 passing parts of the lot.
PAT_K = 6
PAT_MIN_PARTS = 30
# The reason of PAT holds, when the plant has it (else its first active hold code).
PAT_REASON = "HOLD-PAT"
NAME_LENGTH = 80


# --- limit sets ------------------------------------------------------------------------

def default_name(product: Product, step: str) -> str:
    """The name of a product's limit sets at a step when the engineer gives none."""
    return f"{product.code}-{step}-PAT"[:NAME_LENGTH]


def version_query(product: Product, step: str | None = None) -> Select[Any]:
    """A product's PAT limit set versions, newest first (of one step when `step` given)."""
    stmt = (select(PatLimitVersion).where(PatLimitVersion.product_id == product.id)
            .options(joinedload(PatLimitVersion.product)))
    if step:
        stmt = stmt.where(PatLimitVersion.step_code == step)
    return stmt.order_by(PatLimitVersion.step_code, PatLimitVersion.version.desc())


def new_version(session: Session, actor: Actor, product: Product, step: str, *,
                name: str | None, method: str, source_lots: Sequence[str],
                valid_until: Any) -> PatLimitVersion:
    """The next version of the product's limit sets at `step` (the latest + 1), named
    `name` (default: the latest version's name, else `default_name`). Flushed in a
    savepoint: a simultaneous computation of the same version loses with 409 `conflict`."""
    latest = session.scalar(
        select(PatLimitVersion).where(PatLimitVersion.product_id == product.id,
                                      PatLimitVersion.step_code == step)
        .order_by(PatLimitVersion.version.desc()).limit(1))
    chosen = (name or "").strip() or (latest.name if latest is not None
                                      else default_name(product, step))
    version = PatLimitVersion(
        product=product, step_code=step, name=chosen[:NAME_LENGTH],
        version=(latest.version if latest is not None else 0) + 1, method=method, k=PAT_K,
        source_lots=list(source_lots), valid_until=valid_until, created_at=utcnow(),
        created_by=actor_name(actor))
    session.add(version)
    # Read before the flush: a lost race expires what the session holds.
    code = product.code
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(_l("Another PAT limit set version of %(product)s at %(step)s was "
                          "computed at the same moment; compute again.",
                          product=code, step=step), code=ErrorCode.CONFLICT) from None
    return version


@dataclass
class InForce:
    """The static limits in force for a product at a test step: the version (None when
    the limits predate versions or there are none) and its limits by test number."""

    version: PatLimitVersion | None = None
    limits: dict[int, PatLimitSet] = field(default_factory=dict)

    @property
    def label(self) -> dict[str, Any] | None:
        if self.version is None:
            return None
        return {"name": self.version.name, "version": self.version.version}


def limits_in_force(session: Session, product_id: int, step_code: str) -> InForce:
    """The static PAT limits in force at a step: those of the version the released test
    program names; with no program naming one, the product's latest computed limits per
    test (active and not expired), as before limit sets were versioned."""
    program = programs.released_program(session, product_id, step_code)
    if program is not None and program.pat_limit_version_id is not None:
        version = session.get(PatLimitVersion, program.pat_limit_version_id)
        rows = session.scalars(select(PatLimitSet).where(
            PatLimitSet.version_id == program.pat_limit_version_id))
        return InForce(version, {row.test_num: row for row in rows})
    now = utcnow()
    limits = {row.test_num: row for row in session.scalars(
        select(PatLimitSet).where(PatLimitSet.product_id == product_id,
                                  PatLimitSet.step_code == step_code,
                                  PatLimitSet.active.is_(True),
                                  PatLimitSet.valid_until > now))}
    ids = {row.version_id for row in limits.values()}
    version = None
    if ids and None not in ids:
        # The newest version among the tests' sets names the limits.
        version = session.get(PatLimitVersion, max(i for i in ids if i is not None))
    return InForce(version, limits)


def bounds(limits: Mapping[int, PatLimitSet]) -> dict[int, tuple[float, float]]:
    """The applicable (low, high) of each test: flagged sets (robust sigma 0) apply none."""
    return {num: (-math.inf if row.lo is None else row.lo, math.inf if row.hi is None
                  else row.hi)
            for num, row in limits.items()
            if not row.flagged and (row.lo is not None or row.hi is not None)}


# --- the screen ------------------------------------------------------------------------

def escapes(limits: Mapping[int, tuple[float, float]],
            passing: Iterable[Iterable[tuple[int, float]]]) -> tuple[int, dict[int, int]]:
    """The parts binned good (each part its (test, value) results) with a value outside
    the limits of a test: how many parts, and per test how many parts."""
    parts = 0
    per_test: dict[int, int] = {}
    for results in passing:
        outside = {num for num, value in results
                   if num in limits and not limits[num][0] <= value <= limits[num][1]}
        for num in outside:
            per_test[num] = per_test.get(num, 0) + 1
        parts += bool(outside)
    return parts, per_test


def pat_bins(session: Session, product_id: int, step_code: str) -> tuple[set[int], set[int]]:
    """The step's PAT bins: (hard bins, soft bins) flagged `pat` in its bin definitions."""
    setup = programs.step_setup(session, product_id, step_code)
    if setup is None:
        return set(), set()
    return ({b.bin for b in setup.bins if b.pat and b.kind == "hard"},
            {b.bin for b in setup.bins if b.pat and b.kind == "soft"})


def removed(hard: set[int], soft: set[int],
            finals: Iterable[tuple[int | None, int | None]]) -> int:
    """The units whose final result (hard bin, soft bin) is a PAT bin."""
    return sum(1 for h, s in finals if (h is not None and h in hard)
               or (s is not None and s in soft))


def screen(session: Session, product_id: int, step_code: str, in_force: InForce,
           passing: Iterable[Iterable[tuple[int, float]]],
           finals: Iterable[tuple[int | None, int | None]], *,
           tests: Iterable[int] | None = None,
           dynamic: Mapping[int, tuple[float, float]] | None = None) -> dict[str, Any]:
    """The PAT screen of one file: the fields a run's `pat` carries (`limit_set`,
    `dynamic`, `escapes`, `removed`, `escapes_per_test`). `tests` is the step's PAT test
    list (None: every test of the limits); `dynamic`, when given, the lot's dynamic limits
    the file was a re-screen against (they then replace the static ones where both
    exist)."""
    applied = bounds(in_force.limits)
    if dynamic:
        # Both apply: a re-screened part must lie within the static and the dynamic limits.
        applied = {num: (max(applied.get(num, (-math.inf, math.inf))[0], lo),
                         min(applied.get(num, (-math.inf, math.inf))[1], hi))
                   for num, (lo, hi) in dynamic.items()} | {
            num: b for num, b in applied.items() if num not in dynamic}
    if tests is not None:
        chosen = set(tests)
        applied = {num: b for num, b in applied.items() if num in chosen}
    count, per_test = escapes(applied, passing)
    hard, soft = pat_bins(session, product_id, step_code)
    return {"limit_set": in_force.label, "dynamic": bool(dynamic), "escapes": count,
            "removed": removed(hard, soft, finals),
            "escapes_per_test": {str(num): n for num, n in sorted(per_test.items())}}


# --- dynamic limits --------------------------------------------------------------------

def dynamic_limits(params: Iterable[TestParam], tests: Iterable[int] | None = None,
                   values: Any = None) -> list[dict[str, Any]]:
    """The lot's dynamic PAT limits from its passing parts (the first pass's `TestParam`
    rows): per PAT test (`tests`; None: every test) with at least PAT_MIN_PARTS values and
    a robust sigma above 0, `{test, low, high}` = median -/+ 6 robust sigma, never wider
    than the test's limits narrowed by its spec limits. `values` reads a row's values
    (default: the row's float32 values)."""
    chosen = set(tests) if tests is not None else None
    pooled: dict[int, list[float]] = {}
    clamp: dict[int, tuple[float | None, float | None]] = {}
    for param in params:
        if chosen is not None and param.test_num not in chosen:
            continue
        pooled.setdefault(param.test_num, []).extend(
            values(param) if values is not None else _values(param))
        clamp.setdefault(param.test_num, _clamp(param))
    out = []
    for num in sorted(pooled):
        data = pooled[num]
        if len(data) < PAT_MIN_PARTS:
            continue
        lo, hi = clamp[num]
        limits = stats.pat_limits(data, k=PAT_K, spec_lo=lo, spec_hi=hi)
        if limits.flagged:
            continue
        out.append({"test": num, "low": limits.lo, "high": limits.hi, "n": limits.n})
    return out


def _values(param: TestParam) -> list[float]:
    return list(struct.unpack(f"<{param.n}f", param.passing_values))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _clamp(param: TestParam) -> tuple[float | None, float | None]:
    los = [v for v in (_finite(param.lo), _finite(param.spec_lo)) if v is not None]
    his = [v for v in (_finite(param.hi), _finite(param.spec_hi)) if v is not None]
    return (max(los) if los else None, min(his) if his else None)


# --- the hold and shipping -------------------------------------------------------------

def pat_reason(session: Session) -> ReasonCode:
    """The reason of PAT holds: HOLD-PAT when it is an active hold code, else the plant's
    first active hold code (by code); with none at all, HOLD-PAT itself, retired or
    created (audited) when missing."""
    return insertions._hold_reason(session, PAT_REASON, "Part average testing: escape or "
                                   "fallout (AEC-Q001)")


def hold_escapes(session: Session, actor: Actor, lot: Lot, run: TestRun) -> Hold | None:
    """Hold the lot when the run has PAT escapes (source `pat`, text `pat_escape`, placed
    by the system); the hold's id goes into the run's `pat.hold`. Releasing the hold is
    QA's disposition of the escapes."""
    found = int((run.pat or {}).get("escapes") or 0)
    if found <= 0:
        return None
    label = (run.pat or {}).get("limit_set") or {}
    params = {"step": run.step_code, "test_run": run.id, "escapes": found,
              "dynamic": bool(run.pat.get("dynamic")), "name": label.get("name"),
              "version": label.get("version")}
    hold = quality.place_holds(
        session, SYSTEM, [lot], pat_reason(session), "", HoldSource.PAT, placed_by=SYSTEM,
        text=(SystemText.PAT_ESCAPE, params),
        data={"test_run": run.id, "step": run.step_code, "kind": "escape", "escapes": found,
              "limit_set": run.pat.get("limit_set"), "dynamic": bool(run.pat.get("dynamic")),
              "triggered_by": actor_name(actor)})[0]
    run.pat = {**run.pat, "hold": hold.id}
    return hold


def open_escape_holds(session: Session, lot_id: int) -> int:
    """How many PAT-escape holds of the lot are open."""
    return session.scalar(select(func.count()).select_from(Hold).where(
        Hold.lot_id == lot_id, Hold.source == HoldSource.PAT,
        Hold.text_code == SystemText.PAT_ESCAPE, Hold.status == HoldStatus.OPEN)) or 0


# --- the lot's first pass --------------------------------------------------------------

def first_pass_runs(session: Session, lot: Lot, step_code: str) -> list[TestRun]:
    """The runs of the lot's first pass at a test step, whose passing parts set its
    dynamic limits: the live STDF runs of pass P1 (the first file and its resumes) of the
    lot's insertion of its visit of the step; for a lot tested before insertions, its first
    live STDF run at the step."""
    insertion = insertions.current_insertion(session, lot, step_code)
    if insertion is not None:
        return list(session.scalars(select(TestRun).where(
            TestRun.insertion_id == insertion.id, TestRun.pass_name == insertions.FIRST_PASS,
            TestRun.source == TestRunSource.STDF, programs.live()).order_by(TestRun.id)))
    first = session.scalar(select(TestRun).where(
        TestRun.lot_id == lot.id, TestRun.step_code == step_code,
        TestRun.source == TestRunSource.STDF, TestRun.insertion_id.is_(None),
        programs.live()).order_by(TestRun.id).limit(1))
    return [first] if first is not None else []


def lot_dynamic_limits(session: Session, lot: Lot, step_code: str) -> list[dict[str, Any]]:
    """The lot's dynamic PAT limits at a test step for the tester's re-screen: from the
    passing parts of its first pass, on the step's PAT tests (`dynamic_limits`). Raises
    Conflict `no_test_data` when the lot has no first pass at the step."""
    programs.test_step_of(session, lot.product, step_code)
    runs = first_pass_runs(session, lot, step_code)
    if not runs:
        raise Conflict(_l("Lot %(lot)s has no first-pass test data at %(step)s: dynamic PAT "
                          "limits come from it.", lot=lot.lot_no, step=step_code),
                       code=ErrorCode.NO_TEST_DATA)
    params = session.scalars(select(TestParam).where(
        TestParam.run_id.in_([r.id for r in runs])).order_by(TestParam.run_id))
    return dynamic_limits(params, programs.pat_test_list(session, lot.product_id, step_code))


def rescreen_limits(session: Session, lot: Lot, step_code: str,
                    kind: str) -> dict[int, tuple[float, float]] | None:
    """The bounds a file of pass `kind` is screened against beyond the static limits: for a
    PAT re-screen, the lot's dynamic limits from its first pass (`lot_dynamic_limits`,
    the ones GET .../pat-limits published); None for any other pass."""
    if kind != TestPass.RESCREEN:
        return None
    return {t["test"]: (-math.inf if t["low"] is None else t["low"],
                        math.inf if t["high"] is None else t["high"])
            for t in lot_dynamic_limits(session, lot, step_code)}


def resolve_escapes(session: Session, actor: Actor, lot: Lot, run: TestRun) -> list[Hold]:
    """PAT re-screens that bin the escapes out resolve them: when `run` is a re-screen and
    the insertion's live re-screens together tested every unit good before the first of
    them, none with an escape, the lot's open PAT-escape holds at the step are released
    (disposition `release`, by the re-screen's importer, who is not their placer, the
    system; a system import leaves them to QA). Returns them."""
    if run.pass_kind != TestPass.RESCREEN or run.insertion_id is None:
        return []
    insertion = session.get(TestInsertion, run.insertion_id)
    if insertion is None or actor_name(actor) == actor_name(SYSTEM):
        return []
    rescreens = list(session.scalars(select(TestRun).where(
        TestRun.insertion_id == insertion.id, TestRun.pass_kind == TestPass.RESCREEN,
        programs.live())))
    if any(int((r.pat or {}).get("escapes") or 0) for r in rescreens):
        return []
    good_before = insertion.final_good + sum(r.units - r.final_good for r in rescreens)
    if sum(r.units for r in rescreens) < good_before:
        return []
    holds = list(session.scalars(select(Hold).where(
        Hold.lot_id == lot.id, Hold.source == HoldSource.PAT,
        Hold.text_code == SystemText.PAT_ESCAPE, Hold.status == HoldStatus.OPEN,
        Hold.step_code == run.step_code).order_by(Hold.id)))
    removed = sum(int((r.pat or {}).get("removed") or 0) for r in rescreens)
    comment = (f"PAT re-screen {run.pass_name} (test run {run.id}) binned the escapes out: "
               f"{removed} part(s) in the PAT bin, no good part outside the limits.")
    for hold in holds:
        quality.release_hold(session, actor, hold, {"disposition": "release",
                                                    "comment": comment})
    return holds
