"""What the certificate of conformance, the portal and the reports read of a lot's testing:
one row per lot and test step, its test insertion (PRODUCT.md "Test insertions and PAT as a
screen"), never "the latest run".

An insertion is a first pass (P1) over every unit, its resumes (more units of the same pass
after a tester stop) and its retests (R1, R2, ... over the units that failed). Per insertion:

- units = units of P1 and its resumes (a retest adds none);
- first-pass good = good of P1 and its resumes;
- final good = the final good of P1 and its resumes + the good of every retest;
- PAT: the static limit set the program revision carries (None: none), whether a dynamic
  re-screen was done, the PAT escapes left (good parts outside the limits in force) and the
  parts the tester removed to the product's PAT bin;
- SBA: the verdict of the lot's judgement (the closing one).

A run that belongs to an insertion (`TestRun.insertion_id`) counts in it with its pass
(`TestRun.pass_kind`); the insertion's own figures, PAT and SBA verdict (judged once, at its
close) stand when it has them. A run recorded before insertions is placed by its figures:
the first run of the lot at the step (by id, voided runs left out) opens the insertion; a
later run testing no more units than had failed so far is a retest; any other a resume.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mes.testfloor.models import TestBin, TestInsertion, TestProgram, TestRun, TestStepSetup
from mes.vocabulary import InsertionState, TestPass

# The name of static PAT limits computed before limit sets were versioned.
UNVERSIONED = "unversioned"
# The passes of an insertion.
P1, RESUME, RETEST = TestPass.FIRST.value, TestPass.RESUME.value, TestPass.RETEST.value


@dataclass
class InsertionFigures:
    """One lot's test insertion at one test step, as the readers sum it."""

    lot_id: int
    product_id: int
    step: str
    runs: int = 0
    retests: int = 0
    units: int = 0
    first_pass_good: int = 0
    final_good: int = 0
    # {"limit_set": str | None, "screened": bool (the step bins PAT outliers),
    #  "dynamic": bool, "escapes": int, "removed": int}
    pat: dict[str, Any] = field(default_factory=dict)
    # The SBA judgement that stands ({} when none was made).
    sba: dict[str, Any] = field(default_factory=dict)
    last_at: datetime | None = None

    @property
    def first_pass_yield(self) -> float | None:
        return 100.0 * self.first_pass_good / self.units if self.units else None

    @property
    def final_yield(self) -> float | None:
        return 100.0 * self.final_good / self.units if self.units else None


def _pat_bins(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], set[str]]:
    """The hard PAT bins defined per (product id, step)."""
    if not keys:
        return {}
    rows = session.execute(
        select(TestStepSetup.product_id, TestStepSetup.step_code, TestBin.bin)
        .join(TestBin, TestBin.setup_id == TestStepSetup.id)
        .where(TestBin.pat.is_(True), TestBin.kind == "hard",
               TestStepSetup.product_id.in_({p for p, _s in keys})))
    out: dict[tuple[int, str], set[str]] = {}
    for product_id, step, number in rows:
        out.setdefault((product_id, step), set()).add(str(number))
    return out


def _limit_sets(session: Session, keys: set[tuple[int, str]]
                ) -> dict[tuple[int, str, str | None, str | None], str | None]:
    """The PAT limit set each program revision carries, by (product id, step, job, rev)."""
    if not keys:
        return {}
    rows = session.execute(
        select(TestProgram.product_id, TestProgram.step_code, TestProgram.job_name,
               TestProgram.job_rev, TestProgram.pat_limit_set)
        .where(TestProgram.product_id.in_({p for p, _s in keys})))
    return {(p, s, j, r): limit for p, s, j, r, limit in rows}


def limit_set_label(value: Any) -> str | None:
    """A PAT limit set as the certificate names it: "NAME vN" for a versioned set
    ({"name", "version"}), else its name."""
    if not value:
        return None
    if isinstance(value, dict):
        name, version = value.get("name"), value.get("version")
        return f"{name} v{version}" if version is not None else str(name)
    return str(value)


def _run_pat(run: TestRun, pat_bins: set[str], limit_set: str | None) -> dict[str, Any]:
    """What PAT did in one run: the program's limit set, the re-screen, the escapes and the
    parts in the PAT bin. A run that records these itself (`pat.limit_set`, `pat.dynamic`,
    `pat.escapes`, `pat.removed`) is taken at its word; otherwise the limit set is the one
    the program revision of the file carries, no dynamic re-screen was done, the good parts
    found outside a static limit set in force are escapes, and the removed parts are the
    units whose final bin is a PAT bin. The removed parts are counted from the final bins
    whenever the step defines a hard PAT bin (a bin summary's included)."""
    pat = run.pat or {}
    static = any((entry or {}).get("static") for entry in (pat.get("per_test") or {}).values())
    removed = sum(int((run.final_bins or {}).get(b) or 0) for b in pat_bins)
    label = limit_set_label(pat.get("limit_set") or limit_set)
    return {
        # Static limits applied that belong to no versioned set: named as such.
        "limit_set": label or (UNVERSIONED if static else None),
        # The step's program bins PAT outliers: the screen ran, whatever it removed.
        "screened": bool(pat_bins),
        "dynamic": bool(pat.get("dynamic") is True),
        "escapes": int(pat.get("escapes", pat.get("failures", 0) if static else 0) or 0),
        "removed": removed if pat_bins else int(pat.get("removed") or 0),
    }


def _from_insertions(session: Session,
                     out: dict[tuple[int, str, int | None], InsertionFigures]) -> None:
    """Where runs belong to an insertion, its own record stands: its figures (recomputed
    from its live runs), its PAT (when it carries one) and, once closed, the SBA verdict of
    its close."""
    ids = {key[2] for key in out if key[2] is not None}
    if not ids:
        return
    for row in session.scalars(select(TestInsertion).where(TestInsertion.id.in_(ids))):
        ins = out.get((row.lot_id, row.step_code, row.id))
        if ins is None:
            continue
        if row.passes:
            ins.units, ins.first_pass_good, ins.final_good = (
                row.units, row.first_pass_good, row.final_good)
        if row.pat and "removed" in row.pat:
            ins.pat = {"limit_set": limit_set_label(row.pat.get("limit_set")),
                       "screened": bool(ins.pat.get("screened")),
                       "dynamic": bool(row.pat.get("dynamic")),
                       "escapes": int(row.pat.get("escapes") or 0),
                       "removed": int(row.pat.get("removed") or 0)}
        if row.state == InsertionState.CLOSED and row.sba:
            ins.sba = dict(row.sba)


def insertion_figures(session: Session, lot_ids: Select[Any] | Collection[int], *,
                      since: datetime | None = None, until: datetime | None = None,
                      step: str | None = None) -> list[InsertionFigures]:
    """The insertions of the lots `lot_ids` (a select of lot ids or ids), one per lot and
    test step, in lot and step order; with `since` (`until`), only insertions whose last
    run was imported at or after `since` (before `until`); with `step`, at that step only.
    Voided runs count nowhere."""
    if not isinstance(lot_ids, Select) and not lot_ids:
        return []
    stmt = select(TestRun).where(TestRun.lot_id.in_(lot_ids), TestRun.voided_at.is_(None))
    if step:
        stmt = stmt.where(TestRun.step_code == step)
    runs = list(session.scalars(stmt.order_by(TestRun.lot_id, TestRun.step_code, TestRun.id)))
    keys = {(r.product_id, r.step_code) for r in runs}
    pat_bins = _pat_bins(session, keys)
    limit_sets = _limit_sets(session, keys)
    out: dict[tuple[int, str, int | None], InsertionFigures] = {}
    for run in runs:
        key = (run.lot_id, run.step_code, run.insertion_id)
        ins = out.get(key)
        if run.pass_kind in (P1, RETEST, RESUME):
            kind = run.pass_kind
        elif ins is None:
            kind = P1
        elif run.units <= ins.units - ins.final_good:
            kind = RETEST
        else:
            kind = RESUME
        if ins is None:
            ins = out[key] = InsertionFigures(lot_id=run.lot_id, product_id=run.product_id,
                                              step=run.step_code)
        ins.runs += 1
        if kind == RETEST:
            ins.retests += 1
            ins.final_good += run.final_good
        else:
            ins.units += run.units
            ins.first_pass_good += run.first_pass_good
            ins.final_good += run.final_good
        pat = _run_pat(run, pat_bins.get((run.product_id, run.step_code), set()),
                       limit_sets.get((run.product_id, run.step_code, run.job, run.job_rev)))
        if not ins.pat:
            ins.pat = pat
        else:
            ins.pat = {"limit_set": pat["limit_set"] or ins.pat["limit_set"],
                       "screened": ins.pat["screened"] or pat["screened"],
                       "dynamic": ins.pat["dynamic"] or pat["dynamic"],
                       "escapes": ins.pat["escapes"] + pat["escapes"],
                       "removed": ins.pat["removed"] + pat["removed"]}
        if run.sba:
            ins.sba = dict(run.sba)
        ins.last_at = run.created_at
    _from_insertions(session, out)
    found = list(out.values())
    if since is not None:
        found = [i for i in found if i.last_at is not None and i.last_at >= since]
    if until is not None:
        found = [i for i in found if i.last_at is not None and i.last_at < until]
    return found
