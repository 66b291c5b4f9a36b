"""Test programs, bin definitions and PAT test lists of a product at a test step, the check
of a tester file against the released program, and voided test runs.

A released program says what the tester must have run for a file to be evidence for the
product's lots (PRODUCT.md, "Test insertions and PAT as a screen"): its job name and
revision, the test temperature within a tolerance, the part type when the program names
one, production mode, and only bins the product defines at the step. A file that differs
is refused before anything of it is stored, and the lot is held (source `test_program`):
its units went through the wrong program. A voided run stays visible but counts nowhere.

Every function works in the caller's transaction; `refuse_mismatch` is the one refusal
that keeps something (the hold), which its error says (`commit`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.orm import Session, selectinload

from mes import audit, texts
from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog import services as catalog
from mes.catalog.models import Product, ReasonCode
from mes.catalog.services import current_route, route_step_infos
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.testfloor.models import (
    PatLimitVersion,
    TestBin,
    TestProgram,
    TestRun,
    TestStepSetup,
)
from mes.vocabulary import (
    BinKind,
    HoldSource,
    HoldStatus,
    ReasonKind,
    StepKind,
    SystemText,
)

DEFAULT_TOLERANCE_C = 3.0
DEFAULT_PAT_FALLOUT_PCT = 0.5
# The reason of test-program holds, when the plant has it (else its first active hold code).
PROGRAM_REASON = "HOLD-PROGRAM"
# MIR.MODE_COD: production is the only mode whose files count. A blank (space) mode says
# nothing (DOMAIN.md 6.2: "space unknown"); it passes, with a warning on the run.
PRODUCTION_MODE = "P"
# A TST_TEMP as testers write it: "25", "-40", "+125", "150.0", "25C", "25 °C", "25 degC".
_TEMPERATURE = re.compile(r"^\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*(?:°|deg)?\s*C?\s*$",
                          re.IGNORECASE)


def _invalid(field_name: str, message: str | LazyString) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


def live() -> ColumnElement[bool]:
    """The condition that keeps voided runs out of a query on test runs."""
    return TestRun.voided_at.is_(None)


def test_step_of(session: Session, product: Product, step_code: str) -> str:
    """`step_code` when it is a test step of the product's route (InvalidInput, field
    `step`, otherwise)."""
    return _test_step(session, product, step_code)


def _test_step(session: Session, product: Product, step_code: str) -> str:
    route = current_route(session, product.route_code)
    steps = route_step_infos(session, route) if route is not None else ()
    step = next((s for s in steps if s.code == step_code), None)
    if step is None or step.kind != StepKind.TEST:
        raise _invalid("step", _l("%(step)s is not a test step of the route of product "
                                  "%(product)s.", step=step_code, product=product.code))
    return step.code


# --- test programs ---------------------------------------------------------------------

def released_program(session: Session, product_id: int, step_code: str) -> TestProgram | None:
    """The program released for a product at a test step, if any."""
    return session.scalar(select(TestProgram).where(
        TestProgram.product_id == product_id, TestProgram.step_code == step_code,
        TestProgram.superseded_at.is_(None)))


def program_query(product: Product, step: str | None = None) -> Select[Any]:
    """A product's test programs, newest first; of one step when `step` is given."""
    stmt = select(TestProgram).where(TestProgram.product_id == product.id)
    if step:
        stmt = stmt.where(TestProgram.step_code == step)
    return stmt.order_by(TestProgram.id.desc())


def release_program(session: Session, actor: Actor, product: Product, *, step: str,
                    job_name: str, job_rev: str, temperature_c: float,
                    temperature_tolerance_c: float = DEFAULT_TOLERANCE_C,
                    part_type: str | None = None,
                    pat_limit_set: str | None = None,
                    pat_limit_set_version: int | None = None) -> TestProgram:
    """Release a test program for `product` at a test step: it supersedes the released one
    (kept, with `superseded_at`). Raises InvalidInput (not a test step of the product's
    route, an empty job name or revision, a temperature or tolerance that is not a finite
    number, a negative tolerance) and Conflict `duplicate` (this job name and revision was
    released at the step before). A simultaneous second release fails at commit on the
    one-released-program index (409).

    `pat_limit_set` names the static PAT limit set the revision carries, one computed for
    the product at the step (`pat_limit_set_version`, default its latest version): it is
    the set in force while the program is released (InvalidInput when there is no such
    set; a version without a name is refused too)."""
    step = _test_step(session, product, step)
    job_name, job_rev = job_name.strip(), job_rev.strip()
    if not job_name:
        raise _invalid("job_name", _l("Give the job name the tester writes (MIR.JOB_NAM)."))
    if not job_rev:
        raise _invalid("job_rev", _l("Give the program revision the tester writes "
                                     "(MIR.JOB_REV)."))
    if not math.isfinite(temperature_c):
        raise _invalid("temperature_c", _l("Give the test temperature in °C."))
    if not math.isfinite(temperature_tolerance_c) or temperature_tolerance_c < 0:
        raise _invalid("temperature_tolerance_c",
                       _l("The tolerance is a temperature difference of 0 °C or more."))
    set_name = (pat_limit_set or "").strip() or None
    if set_name is None and pat_limit_set_version is not None:
        raise _invalid("pat_limit_set", _l("Name the PAT limit set the version belongs to."))
    limit_version = (find_version(session, product, step, set_name, pat_limit_set_version)
                     if set_name is not None else None)
    earlier = session.scalar(select(TestProgram).where(
        TestProgram.product_id == product.id, TestProgram.step_code == step,
        TestProgram.job_name == job_name, TestProgram.job_rev == job_rev))
    if earlier is not None:
        raise Conflict(_l("%(job)s revision %(rev)s was released for %(product)s at %(step)s "
                          "already (program %(id)s); a new release needs a new revision.",
                          job=job_name, rev=job_rev, product=product.code, step=step,
                          id=earlier.id), code=ErrorCode.DUPLICATE)
    now = utcnow()
    who = actor_name(actor)
    previous = released_program(session, product.id, step)
    if previous is not None:
        previous.superseded_at = now
        previous.superseded_by = who
        # Written before the new row, which the one-released-program index would refuse.
        session.flush()
    program = TestProgram(
        product=product, step_code=step, job_name=job_name, job_rev=job_rev,
        temperature_c=temperature_c, temperature_tolerance_c=temperature_tolerance_c,
        part_type=(part_type or "").strip() or None,
        pat_limit_set=set_name, pat_limit_version=limit_version, released_at=now,
        released_by=who)
    session.add(program)
    # Flushed for the id the audit record names.
    session.flush()
    audit.record(session, actor=actor, code="product:test_program", subject_type="product",
                 subject_key=product.code,
                 data={"step": step, "program": program.id, "job_name": job_name,
                       "job_rev": job_rev, "temperature_c": temperature_c,
                       "temperature_tolerance_c": temperature_tolerance_c,
                       "part_type": program.part_type, "pat_limit_set": program.pat_limit_set,
                       "pat_limit_set_version": program.pat_limit_set_version,
                       "supersedes": previous.id if previous is not None else None})
    return program


def find_version(session: Session, product: Product, step: str, name: str,
                 version: int | None = None) -> PatLimitVersion:
    """The limit set `name` of the product at `step`: the given version, by default the
    latest of that name. InvalidInput (field `pat_limit_set`) when there is none."""
    stmt = select(PatLimitVersion).where(PatLimitVersion.product_id == product.id,
                                         PatLimitVersion.step_code == step,
                                         PatLimitVersion.name == name)
    if version is not None:
        stmt = stmt.where(PatLimitVersion.version == version)
    found = session.scalar(stmt.order_by(PatLimitVersion.version.desc()).limit(1))
    if found is None:
        message = (_l("%(product)s has no PAT limit set %(name)s version %(version)s at "
                      "%(step)s.", product=product.code, name=name, version=version,
                      step=step) if version is not None else
                   _l("%(product)s has no PAT limit set %(name)s at %(step)s; compute it "
                      "first.", product=product.code, name=name, step=step))
        raise InvalidInput(message, fields={"pat_limit_set": [message]})
    return found


# --- bins and PAT tests ----------------------------------------------------------------

def step_setup(session: Session, product_id: int, step_code: str) -> TestStepSetup | None:
    """The bin definitions, PAT fallout limit and PAT test list of a product at a step."""
    return session.scalar(
        select(TestStepSetup).where(TestStepSetup.product_id == product_id,
                                    TestStepSetup.step_code == step_code)
        .options(selectinload(TestStepSetup.bins).joinedload(TestBin.reason)))


@dataclass
class StepSetupView:
    """What GET answers for a step that has no setup yet: nothing defined."""

    step_code: str
    bins: list[TestBin] = field(default_factory=list)
    pat_fallout_limit_pct: float = DEFAULT_PAT_FALLOUT_PCT
    pat_tests: list[int] | None = None


def setup_of(session: Session, product: Product, step: str) -> TestStepSetup | StepSetupView:
    """The setup of a product at a test step, or an empty one (InvalidInput: not a test
    step of the product's route)."""
    step = _test_step(session, product, step)
    return step_setup(session, product.id, step) or StepSetupView(step)


def _setup_for_change(session: Session, product: Product, step: str) -> TestStepSetup:
    found = step_setup(session, product.id, step)
    if found is not None:
        return found
    setup = TestStepSetup(product=product, step_code=step,
                          pat_fallout_limit_pct=DEFAULT_PAT_FALLOUT_PCT, pat_tests=None,
                          bins=[])
    session.add(setup)
    return setup


def set_bins(session: Session, actor: Actor, product: Product, *, step: str,
             bins: Sequence[Mapping[str, Any]],
             pat_fallout_limit_pct: float = DEFAULT_PAT_FALLOUT_PCT) -> TestStepSetup:
    """Define the bins of `product` at a test step, replacing the step's definitions, and
    its PAT fallout limit (percent of units). `bins` are {bin, kind, passed, name, reason,
    sba, pat}. Raises InvalidInput when the step is not a test step of the product's route,
    a bin is given twice (same kind and number), a passing bin names a reject reason or is
    limited by SBA or is the PAT bin, more than one bin is the PAT bin, a reason is not an
    active reject reason code, a name is empty or the limit is not within 0-100 %. An empty
    list removes the step's definitions (files are then not checked for bins)."""
    step = _test_step(session, product, step)
    if not math.isfinite(pat_fallout_limit_pct) or not 0 < pat_fallout_limit_pct <= 100:
        raise _invalid("pat_fallout_limit_pct",
                       _l("The PAT fallout limit is a percentage above 0 and at most 100."))
    seen: set[tuple[str, int]] = set()
    twice = []
    for b in bins:
        key = (b["kind"], b["bin"])
        if key in seen:
            twice.append(f"{b['kind']} {b['bin']}")
        seen.add(key)
    if twice:
        raise _invalid("bins", _l("Bin %(bins)s is given more than once.",
                                  bins=", ".join(twice)))
    pat_bins = [b for b in bins if b.get("pat")]
    if len(pat_bins) > 1:
        raise _invalid("bins", _l("At most one bin of a step is the PAT bin; %(count)s are.",
                                  count=len(pat_bins)))
    for b in bins:
        if not (b.get("name") or "").strip():
            raise _invalid("bins", _l("Bin %(bin)s has no name.", bin=b["bin"]))
        if b["passed"] and b.get("reason"):
            raise _invalid("bins", _l("Bin %(bin)s passes: a passing bin books no reject "
                                      "reason.", bin=b["bin"]))
        if b["passed"] and b.get("sba"):
            raise _invalid("bins", _l("Bin %(bin)s passes: SBA limits failing bins only.",
                                      bin=b["bin"]))
        if b["passed"] and b.get("pat"):
            raise _invalid("bins", _l("Bin %(bin)s passes: the PAT bin holds the parts PAT "
                                      "removes, which fail.", bin=b["bin"]))
    codes = {b["reason"] for b in bins if b.get("reason")}
    reasons = {r.code: r for r in session.scalars(
        select(ReasonCode).where(ReasonCode.code.in_(codes)))} if codes else {}
    for code in sorted(codes):
        reason = reasons.get(code)
        if reason is None or reason.kind != ReasonKind.REJECT or not reason.active:
            raise _invalid("bins", _l("%(code)s is not an active reject reason code.",
                                      code=code))

    setup = _setup_for_change(session, product, step)
    before = [_bin_json(b) for b in setup.bins]
    # The old definitions go before the new ones are written (same kind and number).
    setup.bins.clear()
    session.flush()
    setup.bins.extend(
        TestBin(kind=b["kind"], bin=b["bin"], passing=b["passed"], name=b["name"].strip(),
                reason=reasons.get(b["reason"]) if b.get("reason") else None,
                sba=bool(b.get("sba")), pat=bool(b.get("pat")))
        for b in sorted(bins, key=lambda b: (b["kind"], b["bin"])))
    setup.pat_fallout_limit_pct = pat_fallout_limit_pct
    setup.bins_at = utcnow()
    setup.bins_by = actor_name(actor)
    session.flush()
    audit.record(session, actor=actor, code="product:test_bins", subject_type="product",
                 subject_key=product.code,
                 data={"step": step, "pat_fallout_limit_pct": pat_fallout_limit_pct,
                       "bins": [_bin_json(b) for b in setup.bins], "before": before})
    return setup


def _bin_json(b: TestBin) -> dict[str, Any]:
    return {"bin": b.bin, "kind": b.kind, "pass": b.passing, "name": b.name,
            "reason": b.reason.code if b.reason is not None else None, "sba": b.sba,
            "pat": b.pat}


def set_pat_tests(session: Session, actor: Actor, product: Product, *, step: str,
                  tests: Sequence[int]) -> TestStepSetup:
    """Choose the tests PAT screens for `product` at a test step (AEC-Q001 Appendix 2:
    the engineer's choice, not every test with enough values). Once chosen, an import
    applies PAT to these tests only; an empty list screens none. Raises InvalidInput (not a
    test step of the product's route)."""
    step = _test_step(session, product, step)
    chosen = sorted(set(tests))
    setup = _setup_for_change(session, product, step)
    before = setup.pat_tests
    setup.pat_tests = chosen
    setup.pat_tests_at = utcnow()
    setup.pat_tests_by = actor_name(actor)
    session.flush()
    audit.record(session, actor=actor, code="product:pat_tests", subject_type="product",
                 subject_key=product.code,
                 data={"step": step, "tests": chosen, "before": before})
    return setup


def pat_test_list(session: Session, product_id: int, step_code: str) -> list[int] | None:
    """The tests PAT screens for a product at a step; None when none were chosen (then
    every test with enough passing values is screened)."""
    chosen = session.scalar(select(TestStepSetup.pat_tests).where(
        TestStepSetup.product_id == product_id, TestStepSetup.step_code == step_code))
    return None if chosen is None else [int(n) for n in chosen]


# --- checking a file against the released program --------------------------------------

@dataclass
class ProgramCheck:
    """What the check of a file found: the released program (None: none is released, the
    file is not checked), the mismatches by field (expected and found), and warnings for
    the run."""

    program: TestProgram | None
    mismatches: dict[str, list[LazyString]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).replace("\0", "").strip()
    return text or None


def parse_temperature(value: Any) -> float | None:
    """A TST_TEMP as a number of °C, None when it is blank or not a temperature."""
    text = _clean(value)
    match = _TEMPERATURE.match(text) if text else None
    return float(match.group(1)) if match else None


def _number(value: float) -> str:
    return f"{value:g}"


def check_program(session: Session, lot: Lot, step_code: str, mir: Mapping[str, Any],
                  hard_bins: Iterable[int], soft_bins: Iterable[int]) -> ProgramCheck:
    """Check a file's MIR and the bins of its part records against the program released
    for the lot's product at `step_code`: PART_TYP (when the program names one), JOB_NAM,
    JOB_REV, MODE_COD (production; blank passes with a warning), TST_TEMP within the
    tolerance, and each hard and soft bin defined (when the step defines bins of that
    kind). Reads only; `refuse_mismatch` acts on the result."""
    program = released_program(session, lot.product_id, step_code)
    if program is None:
        return ProgramCheck(None, warnings=[
            f"No test program is released for this product at {step_code}: the file was "
            f"not checked against one."])
    found: dict[str, list[LazyString]] = {}

    def differs(name: str, expected: str, value: str | None) -> None:
        found[name] = [_l("expected %(expected)s, found %(found)s", expected=expected,
                          found=value if value is not None else _l("nothing"))]

    warnings = []
    if program.part_type is not None and _clean(mir.get("PART_TYP")) != program.part_type:
        differs("part_type", program.part_type, _clean(mir.get("PART_TYP")))
    if _clean(mir.get("JOB_NAM")) != program.job_name:
        differs("job_name", program.job_name, _clean(mir.get("JOB_NAM")))
    if _clean(mir.get("JOB_REV")) != program.job_rev:
        differs("job_rev", program.job_rev, _clean(mir.get("JOB_REV")))
    mode = _clean(mir.get("MODE_COD"))
    if mode is None:
        warnings.append("MIR.MODE_COD is blank: the tester did not say it tested in "
                        "production mode.")
    elif mode != PRODUCTION_MODE:
        differs("mode_code", f"{PRODUCTION_MODE} (production)", mode)
    raw = _clean(mir.get("TST_TEMP"))
    temperature = parse_temperature(raw)
    if temperature is None or abs(temperature - program.temperature_c) > \
            program.temperature_tolerance_c + 1e-9:
        differs("temperature",
                f"{_number(program.temperature_c)} °C ± "
                f"{_number(program.temperature_tolerance_c)} °C", raw)
    setup = step_setup(session, lot.product_id, step_code)
    defined = {kind: {b.bin for b in (setup.bins if setup is not None else ())
                      if b.kind == kind} for kind in BinKind.codes()}
    for kind, bins in ((BinKind.HARD, hard_bins), (BinKind.SOFT, soft_bins)):
        if not defined[kind]:
            continue
        undefined = sorted(set(bins) - defined[kind])
        if undefined:
            found[f"{kind}_bins"] = [_l(
                "expected only the bins defined for the product (%(defined)s), found "
                "%(undefined)s", defined=", ".join(map(str, sorted(defined[kind]))),
                undefined=", ".join(map(str, undefined)))]
    return ProgramCheck(program, found, warnings)


def program_reason(session: Session) -> ReasonCode:
    """The reason of test-program holds: HOLD-PROGRAM when it is an active hold code, else
    the plant's first active hold code (by code); with no active hold code at all,
    HOLD-PROGRAM itself, retired or created (audited) when missing."""
    codes = {reason.code: reason for reason in session.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))}
    if codes:
        return codes.get(PROGRAM_REASON) or next(iter(codes.values()))
    retired = session.scalar(select(ReasonCode).where(ReasonCode.code == PROGRAM_REASON,
                                                      ReasonCode.kind == ReasonKind.HOLD))
    if retired is not None:
        return retired
    created = catalog.create_reason_code(session, SYSTEM, {
        "code": PROGRAM_REASON, "kind": ReasonKind.HOLD,
        "description": "Tested with another program than the one released"})
    # Flushed for the code's id, which the hold refers to.
    session.flush()
    return created


def refuse_mismatch(session: Session, actor: Actor, lot: Lot, step_code: str,
                    check: ProgramCheck) -> NoReturn:
    """Refuse a file that differs from the released program: 409 `program_mismatch`, its
    `fields` naming each mismatch, and the lot held (source `test_program`, placed by the
    system) unless it already has an open hold of that source at the step. The error asks
    the request to commit (the hold) although nothing of the file was stored."""
    program = check.program
    assert program is not None and check.mismatches
    held = session.scalar(select(Hold).where(
        Hold.lot_id == lot.id, Hold.source == HoldSource.TEST_PROGRAM,
        Hold.status == HoldStatus.OPEN, Hold.step_code == step_code).limit(1))
    names = sorted(check.mismatches)
    if held is None:
        params = {"step": step_code, "job_name": program.job_name, "job_rev": program.job_rev,
                  "fields": names}
        held = quality.place_holds(
            session, SYSTEM, [lot], program_reason(session), "", HoldSource.TEST_PROGRAM,
            placed_by=SYSTEM, text=(SystemText.PROGRAM_MISMATCH, params),
            data={"step": step_code, "program": program.id,
                  "mismatches": {name: [str(m) for m in messages]
                                 for name, messages in check.mismatches.items()},
                  "triggered_by": actor_name(actor)})[0]
    raise Conflict(
        _l("The file was not tested with the program released for %(product)s at %(step)s "
           "(%(job)s revision %(rev)s), differing in: %(fields)s. Nothing of it was stored; "
           "lot %(lot)s is on hold.", product=lot.product.code, step=step_code,
           job=program.job_name, rev=program.job_rev, fields=texts.field_words(names),
           lot=lot.lot_no),
        code=ErrorCode.PROGRAM_MISMATCH, fields=check.mismatches,
        extra={"hold": held.id, "program": program.id}, commit=True)


# --- voiding a run ---------------------------------------------------------------------

def void_run(session: Session, actor: Actor, run: TestRun, *, reason: str) -> TestRun:
    """Void a test run: it stays visible, with who voided it, when and why, but leaves the
    SBA and PAT history, the product's test list, certificates, the portal's yields and the
    reports. Holds the run placed stay (a person disposes of them). Raises InvalidInput (no
    reason) and Conflict `already_voided` (voided before, or at the same moment)."""
    text = (reason or "").strip()
    if not text:
        raise _invalid("reason", _l("Say why the run is voided."))
    now = utcnow()
    who = actor_name(actor)
    # One conditional statement: of two simultaneous voids, one finds the run voided.
    done = session.execute(
        update(TestRun).where(TestRun.id == run.id, TestRun.voided_at.is_(None))
        .values(voided_at=now, voided_by=who, void_reason=text)
        .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict(_l("Test run %(run)s is voided already.", run=run.id),
                       code=ErrorCode.ALREADY_VOIDED)
    session.refresh(run, ["voided_at", "voided_by", "void_reason"])
    audit.record(session, actor=actor, code="test_run:void", subject_type="test_run",
                 subject_key=str(run.id),
                 data={"lot": run.lot.lot_no, "step": run.step_code, "reason": text,
                       "units": run.units, "final_good": run.final_good})
    return run
