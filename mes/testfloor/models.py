"""Test runs (one STDF file or bin summary of a lot at a test step), the passing parts'
parametric values that PAT needs, and static PAT limit sets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import BinKind, InsertionState, TestPass, TestRunSource

if TYPE_CHECKING:
    from mes.catalog.models import Product, ReasonCode
    from mes.floor.models import Lot

# MIR and SDR strings are at most 255 bytes (a Cn field).
_CN = 255


class TestRun(Base):
    """One test of a lot at a test step: an imported STDF file or a bin summary.

    Counts follow the API: parts_tested = part records (PRR), units = distinct parts, yields
    in percent of units. The STDF file itself is not kept: its SHA-256 (of the STDF stream,
    decompressed when the upload was gzip) refuses a second import of the same content, and
    the passing parts' values of each parametric test are kept in `TestParam` for PAT.
    """

    __test__ = False  # not a pytest test class, despite the name
    __tablename__ = "test_run"
    __table_args__ = (
        Index("ix_test_run_lot", "lot_id", "id"),
        # SBA history and static PAT read the latest runs of a product at a test step.
        Index("ix_test_run_product_step", "product_id", "step_code", "id"),
        # The portal's yields: a customer's runs of a window, from the index alone.
        Index("ix_test_run_customer_created", "customer_id", "created_at",
              postgresql_include=["lot_id", "product_id", "step_code", "units", "final_good",
                                  "id"]),
        one_of("source", TestRunSource),
        one_of("pass_kind", TestPass),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    # The lot's customer (a lot's customer never changes), so a customer's runs need no lot.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(5))
    sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    file_size: Mapped[int | None]
    # From the MIR.
    stdf_lot_id: Mapped[str | None] = mapped_column(String(_CN))
    sublot_id: Mapped[str | None] = mapped_column(String(_CN))
    part_type: Mapped[str | None] = mapped_column(String(_CN))
    test_code: Mapped[str | None] = mapped_column(String(_CN))
    temperature: Mapped[str | None] = mapped_column(String(_CN))
    job: Mapped[str | None] = mapped_column(String(_CN))
    job_rev: Mapped[str | None] = mapped_column(String(_CN))
    tester: Mapped[str | None] = mapped_column(String(_CN))
    tester_type: Mapped[str | None] = mapped_column(String(_CN))
    tested_at: Mapped[datetime | None]
    # From the SDRs (several site groups: their distinct values, comma-separated).
    handler: Mapped[str | None] = mapped_column(String(_CN))
    load_board: Mapped[str | None] = mapped_column(String(_CN))
    probe_card: Mapped[str | None] = mapped_column(String(_CN))
    parts_tested: Mapped[int]
    units: Mapped[int]
    retests: Mapped[int] = mapped_column(default=0)
    first_pass_good: Mapped[int]
    final_good: Mapped[int]
    first_pass_yield: Mapped[float] = mapped_column(Float)
    final_yield: Mapped[float] = mapped_column(Float)
    # {"bin": count} over every PRR, as the API shows them.
    hard_bins: Mapped[dict[str, Any]] = mapped_column(default=dict)
    soft_bins: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"bin": units}: the hard bin of each unit's last result, which SBA judges.
    final_bins: Mapped[dict[str, Any]] = mapped_column(default=dict)
    failing_bins: Mapped[list[Any]] = mapped_column(default=list)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    # PTRs of the file that belong to no part (see mes.testfloor.stdf.parse).
    orphan_ptrs: Mapped[int] = mapped_column(default=0, server_default="0")
    pat: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sba: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    # A voided run stays visible but counts nowhere (SBA and PAT history, the product's
    # tests, certificates, the portal, reports): see mes.testfloor.programs.void_run.
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(80))
    void_reason: Mapped[str | None] = mapped_column(Text)
    # The soft bin of each unit's last result ({"bin": units}) and the soft bins of the
    # failing ones: a retest's results take the place of the failures it retests.
    final_soft_bins: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    failing_soft_bins: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    # The test insertion the run belongs to and its pass in it ("P1", "R1", ...; a resume
    # carries the name of the pass it continues). None: a run recorded before insertions.
    insertion_id: Mapped[int | None] = mapped_column(ForeignKey("test_insertion.id"),
                                                     index=True)
    pass_kind: Mapped[str | None] = mapped_column(String(6))
    pass_name: Mapped[str | None] = mapped_column(String(8))

    lot: Mapped[Lot] = relationship()


class TestParam(Base):
    """One parametric test of a run: its definition and the values of the lot's passing
    parts (each unit's last result, when it passed; usable results only), as little-endian
    float32 (the STDF R4 values, exactly). Static PAT limits pool these across lots."""

    __test__ = False
    __tablename__ = "test_param"
    __table_args__ = (UniqueConstraint("run_id", "test_num"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("test_run.id"))
    # STDF TEST_NUM is a U4: up to 4,294,967,295.
    test_num: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(_CN))
    units: Mapped[str | None] = mapped_column(String(_CN))
    lo: Mapped[float | None] = mapped_column(Float)
    hi: Mapped[float | None] = mapped_column(Float)
    spec_lo: Mapped[float | None] = mapped_column(Float)
    spec_hi: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int]
    passing_values: Mapped[bytes] = mapped_column(LargeBinary)


class PatLimitSet(Base):
    """Static PAT limits (AEC-Q001) of one product, test step and test number, computed by
    an engineer from earlier lots. A new set for the same test retires the previous one
    (`active` false); a set applies while active, not flagged and before `valid_until`."""

    __tablename__ = "pat_limit_set"
    __table_args__ = (
        Index("ix_pat_limit_set_current", "product_id", "step_code", "active", "test_num"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    test_num: Mapped[int] = mapped_column(BigInteger)
    test_name: Mapped[str | None] = mapped_column(String(_CN))
    units: Mapped[str | None] = mapped_column(String(_CN))
    method: Mapped[str] = mapped_column(String(80))
    n: Mapped[int]
    lots: Mapped[int]
    median: Mapped[float] = mapped_column(Float)
    q1: Mapped[float] = mapped_column(Float)
    q3: Mapped[float] = mapped_column(Float)
    robust_sigma: Mapped[float] = mapped_column(Float)
    k: Mapped[float] = mapped_column(Float)
    spec_lo: Mapped[float | None] = mapped_column(Float)
    spec_hi: Mapped[float | None] = mapped_column(Float)
    lo: Mapped[float | None] = mapped_column(Float)
    hi: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    source_lots: Mapped[list[Any]] = mapped_column(default=list)
    valid_until: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    # The named, versioned limit set this test's limits belong to (None: computed before
    # limit sets were versioned).
    version_id: Mapped[int | None] = mapped_column(ForeignKey("pat_limit_version.id"),
                                                   index=True)

    product: Mapped[Product] = relationship()



# The released program of a product at a step: the row not superseded.
_RELEASED = text("superseded_at IS NULL")


class TestProgram(Base):
    """A test program released for a product at a test step: what the tester must have run
    for a file to count as evidence for the product's lots (MIR JOB_NAM, JOB_REV, TST_TEMP
    within the tolerance, PART_TYP when named, production mode). Releasing a new revision
    supersedes the released one (`superseded_at`); the history stays."""

    __test__ = False
    __tablename__ = "test_program"
    __table_args__ = (
        UniqueConstraint("product_id", "step_code", "job_name", "job_rev"),
        # At most one released program per product and step: a simultaneous second
        # release fails here and loses cleanly.
        Index("ix_test_program_released", "product_id", "step_code", unique=True,
              sqlite_where=_RELEASED, postgresql_where=_RELEASED),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    job_name: Mapped[str] = mapped_column(String(_CN))
    job_rev: Mapped[str] = mapped_column(String(_CN))
    temperature_c: Mapped[float] = mapped_column(Float)
    temperature_tolerance_c: Mapped[float] = mapped_column(Float)
    part_type: Mapped[str | None] = mapped_column(String(_CN))
    # The name of the static PAT limit set the revision carries (AEC-Q001), and the
    # version of it (mes.testfloor.pat): the limits in force while the program is released.
    pat_limit_set: Mapped[str | None] = mapped_column(String(80))
    pat_limit_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("pat_limit_version.id"))
    released_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(80))
    superseded_at: Mapped[datetime | None]
    superseded_by: Mapped[str | None] = mapped_column(String(80))

    product: Mapped[Product] = relationship()
    pat_limit_version: Mapped[PatLimitVersion | None] = relationship()

    @property
    def released(self) -> bool:
        return self.superseded_at is None

    @property
    def pat_limit_set_version(self) -> int | None:
        return self.pat_limit_version.version if self.pat_limit_version is not None else None


class TestStepSetup(Base):
    """What an engineer set for a product at a test step beside its program: the bin
    definitions (`bins`), the PAT fallout limit and the PAT test list (None: not chosen,
    every test with enough values is screened)."""

    __test__ = False
    __tablename__ = "test_step_setup"
    __table_args__ = (UniqueConstraint("product_id", "step_code"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    pat_fallout_limit_pct: Mapped[float] = mapped_column(Float, default=0.5)
    pat_tests: Mapped[list[Any] | None]
    bins_at: Mapped[datetime | None]
    bins_by: Mapped[str | None] = mapped_column(String(80))
    pat_tests_at: Mapped[datetime | None]
    pat_tests_by: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    product: Mapped[Product] = relationship()
    bins: Mapped[list[TestBin]] = relationship(
        back_populates="setup", cascade="all, delete-orphan",
        order_by="(TestBin.kind, TestBin.bin)")


class TestBin(Base):
    """One bin of a product at a test step: hard or soft, pass or fail, its name, the
    reject reason a failing bin books to, whether SBA limits it, whether it is the PAT
    bin (at most one per step)."""

    __test__ = False
    __tablename__ = "test_bin"
    __table_args__ = (UniqueConstraint("setup_id", "kind", "bin"), one_of("kind", BinKind))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    setup_id: Mapped[int] = mapped_column(ForeignKey("test_step_setup.id"), index=True)
    kind: Mapped[str] = mapped_column(String(4))
    bin: Mapped[int]
    passing: Mapped[bool]
    name: Mapped[str] = mapped_column(String(_CN))
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("reason_code.id"))
    sba: Mapped[bool] = mapped_column(default=False)
    pat: Mapped[bool] = mapped_column(default=False)

    setup: Mapped[TestStepSetup] = relationship(back_populates="bins")
    reason: Mapped[ReasonCode | None] = relationship()


# A lot has at most one open insertion at a step.
_OPEN = text("state = 'open'")


class TestInsertion(Base):
    """A lot's test insertion at a test step (PRODUCT.md, "Test insertions and PAT as a
    screen"): the first pass and its resumes, then the retests of the failures, as one
    judgement. Its figures are recomputed from its live runs whenever a run joins or
    leaves it (mes.testfloor.insertions); closing it judges SBA and PAT fallout once and
    fixes the proposed track-out. A lot's track-out at the step marks it `tracked_out_at`;
    a later visit of the step (rework) opens a new insertion."""

    __test__ = False
    __tablename__ = "test_insertion"
    __table_args__ = (
        Index("ix_test_insertion_open", "lot_id", "step_code", unique=True,
              sqlite_where=_OPEN, postgresql_where=_OPEN),
        Index("ix_test_insertion_lot", "lot_id", "step_code", "id"),
        # SBA history: the closed insertions of a product at a step, newest first.
        Index("ix_test_insertion_product_step", "product_id", "step_code", "closed_at"),
        one_of("state", InsertionState),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(6), default=InsertionState.OPEN)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(80))
    tracked_out_at: Mapped[datetime | None]
    # [{pass, kind, run_ids, units, good}] in pass order.
    passes: Mapped[list[Any]] = mapped_column(default=list)
    units: Mapped[int] = mapped_column(default=0)
    first_pass_good: Mapped[int] = mapped_column(default=0)
    final_good: Mapped[int] = mapped_column(default=0)
    first_pass_yield: Mapped[float | None] = mapped_column(Float)
    final_yield: Mapped[float | None] = mapped_column(Float)
    # {"bin": units} of each unit's final result, per pass (see mes.testfloor.insertions).
    final_hard_bins: Mapped[dict[str, Any]] = mapped_column(default=dict)
    final_soft_bins: Mapped[dict[str, Any]] = mapped_column(default=dict)
    pat: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sba: Mapped[dict[str, Any] | None]
    # At close: {good_qty, rejects: [{reason, qty}], unaccounted, qty_in}.
    proposal: Mapped[dict[str, Any] | None]
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    lot: Mapped[Lot] = relationship()


class PatLimitVersion(Base):
    """A named, versioned static PAT limit set of a product at a test step (AEC-Q001): one
    engineer's computation from at least 6 lots x 30 passing parts of non-voided history,
    its per-test limits the `PatLimitSet` rows pointing at it. Versions count up per
    product and step (a simultaneous second computation of the same version fails on the
    unique constraint and loses with 409); a released test program names the version it
    carries (`TestProgram.pat_limit_version_id`)."""

    __tablename__ = "pat_limit_version"
    __table_args__ = (UniqueConstraint("product_id", "step_code", "version"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    step_code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int]
    method: Mapped[str] = mapped_column(String(80))
    k: Mapped[float] = mapped_column(Float)
    source_lots: Mapped[list[Any]] = mapped_column(default=list)
    valid_until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    product: Mapped[Product] = relationship()
    limits: Mapped[list[PatLimitSet]] = relationship(
        primaryjoin="PatLimitSet.version_id == PatLimitVersion.id", viewonly=True,
        order_by="PatLimitSet.test_num")
