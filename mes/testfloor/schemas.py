"""Input and output schemas of test runs, bin summaries and PAT limit sets."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE, COUNT
from mes.pagination import ListArgs
from mes.vocabulary import BinKind, TestPass

# STDF bin numbers are U2, test numbers U4.
BIN = validate.Range(min=0, max=65535)
TEST_NUM = validate.Range(min=0, max=4294967295)


class StdfQuery(Schema):
    step = fields.String(load_default=None, validate=CODE)
    pass_ = fields.String(load_default=None, data_key="pass",
                          validate=validate.OneOf(TestPass.codes()))


class BinIn(Schema):
    bin = fields.Integer(required=True, validate=BIN)
    count = fields.Integer(required=True, validate=COUNT)
    passed = fields.Boolean(required=True, data_key="pass")


class BinsIn(Schema):
    step = fields.String(load_default=None, validate=CODE)
    pass_ = fields.String(load_default=None, data_key="pass",
                          validate=validate.OneOf(TestPass.codes()))
    bins = fields.List(fields.Nested(BinIn), required=True,
                       validate=validate.Length(min=1, max=65536,
                                                error=_l("Give between 1 and 65536 bins.")))


def _voided(run: Any, *, with_who: bool) -> dict[str, Any] | None:
    if run.voided_at is None:
        return None
    voided = {"at": run.voided_at.isoformat(), "reason": run.void_reason}
    return {"by": run.voided_by, **voided} if with_who else voided


def _customer_sba(run: Any) -> dict[str, Any]:
    # The history's lot numbers may be other customers' lots.
    return {key: value for key, value in (run.sba or {}).items() if key != "lots"}


class TestRunOut(Schema):
    """A test run as the API contract names it; what a customer sees of their lots' runs."""

    __test__ = False

    id = fields.Integer()
    lot_no = fields.Function(lambda run: run.lot.lot_no)
    step = fields.String(attribute="step_code")
    source = fields.String()
    stdf_lot_id = fields.String(allow_none=True)
    sublot_id = fields.String(allow_none=True)
    part_type = fields.String(allow_none=True)
    test_code = fields.String(allow_none=True)
    temperature = fields.String(allow_none=True)
    job = fields.String(allow_none=True)
    parts_tested = fields.Integer()
    units = fields.Integer()
    first_pass_good = fields.Integer()
    final_good = fields.Integer()
    first_pass_yield = fields.Float()
    final_yield = fields.Float()
    hard_bins = fields.Dict(keys=fields.String(), values=fields.Integer())
    soft_bins = fields.Dict(keys=fields.String(), values=fields.Integer())
    pat = fields.Dict()
    # PlantTestRunOut replaces this with the stored SBA result.
    sba: fields.Field = fields.Function(_customer_sba)
    created_at = fields.AwareDateTime()
    # PlantTestRunOut adds who voided it.
    voided: fields.Field = fields.Function(lambda run: _voided(run, with_who=False))
    # The run's test insertion (its id) and its pass in it: P1, R1, ...
    insertion = fields.Integer(attribute="insertion_id", allow_none=True)
    pass_ = fields.String(attribute="pass_name", data_key="pass", allow_none=True)


class PlantTestRunOut(TestRunOut):
    """A test run with what the plant keeps beyond the contract: the tester's equipment,
    the file's identity, retests, final bins, warnings and the SBA history's lots."""

    job_rev = fields.String(allow_none=True)
    tester = fields.String(allow_none=True)
    tester_type = fields.String(allow_none=True)
    handler = fields.String(allow_none=True)
    load_board = fields.String(allow_none=True)
    probe_card = fields.String(allow_none=True)
    tested_at = fields.AwareDateTime(allow_none=True)
    sha256 = fields.String(allow_none=True)
    file_size = fields.Integer(allow_none=True)
    retests = fields.Integer()
    final_bins = fields.Dict(keys=fields.String(), values=fields.Integer())
    failing_bins = fields.List(fields.Integer())
    warnings = fields.List(fields.String())
    # PTRs of the file that belong to no part: their values are in no part's results.
    orphan_ptrs = fields.Integer()
    sba = fields.Dict()
    created_by = fields.String(allow_none=True)
    voided = fields.Function(lambda run: _voided(run, with_who=True))


class PatComputeIn(Schema):
    step = fields.String(required=True, validate=CODE)
    tests = fields.List(fields.Integer(validate=TEST_NUM), load_default=None,
                        allow_none=True, validate=validate.Length(min=1, max=10_000))
    valid_days = fields.Integer(load_default=180, validate=validate.Range(min=1, max=3650))


class PatLimitSetOut(Schema):
    id = fields.Integer()
    product = fields.Function(lambda s: s.product.code)
    step = fields.String(attribute="step_code")
    test_num = fields.Integer()
    test_name = fields.String(allow_none=True)
    units = fields.String(allow_none=True)
    method = fields.String()
    n = fields.Integer()
    lots = fields.Integer()
    median = fields.Float()
    q1 = fields.Float()
    q3 = fields.Float()
    robust_sigma = fields.Float()
    k = fields.Float()
    spec_lo = fields.Float(allow_none=True)
    spec_hi = fields.Float(allow_none=True)
    lo = fields.Float(allow_none=True)
    hi = fields.Float(allow_none=True)
    flagged = fields.Boolean()
    reason = fields.String(allow_none=True)
    source_lots = fields.List(fields.String())
    valid_until = fields.AwareDateTime()
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)


class PatSkippedOut(Schema):
    test_num = fields.Integer()
    name = fields.String(allow_none=True)
    lots = fields.Integer()
    reason = fields.String()


class PatComputeOut(Schema):
    limit_sets = fields.List(fields.Nested(PatLimitSetOut))
    skipped = fields.List(fields.Nested(PatSkippedOut))


class PatLimitQuery(ListArgs):
    step = fields.String(load_default=None, validate=CODE)
    test = fields.Integer(load_default=None, validate=TEST_NUM)
    active = fields.Boolean(load_default=None, allow_none=True)


# --- test programs, bins, PAT tests, voiding --------------------------------------------

_TEXT = validate.Length(min=1, max=255)
TEMPERATURE = validate.Range(min=-273.15, max=1000)


class TestProgramIn(Schema):
    __test__ = False

    step = fields.String(required=True, validate=CODE)
    job_name = fields.String(required=True, validate=_TEXT)
    job_rev = fields.String(required=True, validate=_TEXT)
    temperature_c = fields.Float(required=True, validate=TEMPERATURE)
    temperature_tolerance_c = fields.Float(load_default=3.0,
                                           validate=validate.Range(min=0, max=100))
    part_type = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=255))
    pat_limit_set = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=80))
    pat_limit_set_version = fields.Integer(load_default=None, allow_none=True,
                                           validate=validate.Range(min=1, max=2**31 - 1))


class TestProgramOut(Schema):
    __test__ = False

    id = fields.Integer()
    product = fields.Function(lambda p: p.product.code)
    step = fields.String(attribute="step_code")
    job_name = fields.String()
    job_rev = fields.String()
    temperature_c = fields.Float()
    temperature_tolerance_c = fields.Float()
    part_type = fields.String(allow_none=True)
    pat_limit_set = fields.String(allow_none=True)
    pat_limit_set_version = fields.Integer(allow_none=True)
    released = fields.Boolean()
    released_at = fields.AwareDateTime()
    released_by = fields.String(allow_none=True)
    superseded_at = fields.AwareDateTime(allow_none=True)
    superseded_by = fields.String(allow_none=True)


class TestProgramQuery(ListArgs):
    __test__ = False

    step = fields.String(load_default=None, validate=CODE)


class StepQuery(Schema):
    step = fields.String(required=True, validate=CODE)


class BinDefIn(Schema):
    bin = fields.Integer(required=True, validate=BIN)
    kind = fields.String(required=True, validate=validate.OneOf(BinKind.codes()))
    passed = fields.Boolean(required=True, data_key="pass")
    name = fields.String(required=True, validate=_TEXT)
    reason = fields.String(load_default=None, allow_none=True, validate=CODE)
    sba = fields.Boolean(load_default=False)
    pat = fields.Boolean(load_default=False)


class BinDefsIn(Schema):
    step = fields.String(required=True, validate=CODE)
    bins = fields.List(fields.Nested(BinDefIn), required=True,
                       validate=validate.Length(max=2 * 65536))
    pat_fallout_limit_pct = fields.Float(load_default=0.5,
                                         validate=validate.Range(min=0, max=100,
                                                                 min_inclusive=False))


class BinDefOut(Schema):
    bin = fields.Integer()
    kind = fields.String()
    passed = fields.Boolean(attribute="passing", data_key="pass")
    name = fields.String()
    reason = fields.Function(lambda b: b.reason.code if b.reason is not None else None)
    sba = fields.Boolean()
    pat = fields.Boolean()


class BinDefsOut(Schema):
    step = fields.String(attribute="step_code")
    bins = fields.List(fields.Nested(BinDefOut))
    pat_fallout_limit_pct = fields.Float()


class PatTestsIn(Schema):
    step = fields.String(required=True, validate=CODE)
    tests = fields.List(fields.Integer(validate=TEST_NUM), required=True,
                        validate=validate.Length(max=100_000))


class PatTestsOut(Schema):
    step = fields.String(attribute="step_code")
    # None: no list chosen; PAT screens every test with enough passing values.
    tests = fields.List(fields.Integer(), attribute="pat_tests", allow_none=True)


class VoidIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


# --- versioned static PAT limit sets ---------------------------------------------------

class PatVersionIn(PatComputeIn):
    """A computation kept as the next version of the step's named set."""

    name = fields.String(load_default=None, allow_none=True,
                         validate=validate.Length(max=80))


class PatVersionOut(Schema):
    id = fields.Integer()
    product = fields.Function(lambda v: v.product.code)
    step = fields.String(attribute="step_code")
    name = fields.String()
    version = fields.Integer()
    method = fields.String()
    k = fields.Float()
    source_lots = fields.List(fields.String())
    valid_until = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)
    limits = fields.List(fields.Nested(PatLimitSetOut))
    # Only in the answer of a computation: the tests left out for want of history.
    skipped = fields.List(fields.Nested(PatSkippedOut))


class PatVersionQuery(ListArgs):
    step = fields.String(load_default=None, validate=CODE)


class PatDynamicLimitOut(Schema):
    test = fields.Integer()
    low = fields.Float(allow_none=True)
    high = fields.Float(allow_none=True)
    n = fields.Integer()


class PatDynamicLimitsOut(Schema):
    tests = fields.List(fields.Nested(PatDynamicLimitOut))
class RejectLineOut(Schema):
    reason = fields.String()
    qty = fields.Integer()


class ProposalOut(Schema):
    good_qty = fields.Integer()
    rejects = fields.List(fields.Nested(RejectLineOut))
    unaccounted = fields.Integer()


class PassOut(Schema):
    pass_ = fields.String(attribute="pass", data_key="pass")
    kind = fields.String()
    run_ids = fields.List(fields.Integer())
    units = fields.Integer()
    good = fields.Integer()


def _insertion_pat(insertion: Any) -> dict[str, Any]:
    pat = insertion.pat or {}
    return {key: pat.get(key) for key in ("limit_set", "dynamic", "escapes", "removed")} | (
        {"fallout": pat["fallout"]} if "fallout" in pat else {})


class InsertionOut(Schema):
    """A lot's test insertion at a test step (API.md, "Test programs, bins and
    insertions")."""

    id = fields.Integer()
    lot_no = fields.Function(lambda i: i.lot.lot_no)
    step = fields.String(attribute="step_code")
    state = fields.String()
    passes = fields.List(fields.Nested(PassOut))
    units = fields.Integer()
    first_pass_good = fields.Integer()
    final_good = fields.Integer()
    first_pass_yield = fields.Float(allow_none=True)
    final_yield = fields.Float(allow_none=True)
    final_hard_bins = fields.Dict(keys=fields.String(), values=fields.Integer())
    final_soft_bins = fields.Dict(keys=fields.String(), values=fields.Integer())
    pat = fields.Function(_insertion_pat)
    sba = fields.Dict(allow_none=True)
    proposal = fields.Nested(ProposalOut, allow_none=True)
    opened_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    tracked_out_at = fields.AwareDateTime(allow_none=True)
