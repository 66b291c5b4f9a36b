"""Input and output schemas of master data."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mes import marking
from mes.vocabulary import (
    CARRIERS,
    CustomerCategory,
    CustomerKind,
    DurableKind,
    EquipmentState,
    MslLevel,
    ProductKind,
    QualStandard,
    ReasonKind,
    StepKind,
)

CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$",
                       error=_l("Use 1 to 40 letters, digits, '.', '_' or '-'."))
NAME = validate.Length(min=1, max=200)
# Every integer a client sends is bounded: a number the database cannot store is the
# caller's mistake (422), never a driver overflow (500).
ROW_ID = validate.Range(min=1, max=2**63 - 1, error=_l("Not a known id."))
MAX_COUNT = 100_000_000
COUNT = validate.Range(min=0, max=MAX_COUNT)
POSITIVE_COUNT = validate.Range(min=1, max=MAX_COUNT)


def code_field(**kw: Any) -> fields.String:
    return fields.String(required=True, validate=CODE, **kw)


class MarkTemplate(fields.String):
    """A mark template: lines of text with fields in braces (mes.marking.MARK_FIELDS)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kw)
        if text is None:
            return None
        text = text.replace("\r\n", "\n").strip()
        if not text or len(text) > marking.TEMPLATE_LENGTH:
            raise ValidationError(_l("Give 1 to %(max)s characters.",
                                     max=marking.TEMPLATE_LENGTH))
        unknown = marking.unknown_fields(text)
        if unknown:
            raise ValidationError(_l("Unknown field %(items)s; use %(fields)s.",
                                     items=", ".join(unknown),
                                     fields=", ".join(f"{{{n}}}" for n in marking.MARK_FIELDS)))
        return text


class PackQuantities(fields.Field):
    """Standard pack quantities: one number (every carrier) or {reel: n, tray: n, tube: n}
    (carriers left out have none). Loaded as the mapping."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError(_l("Give a number or a number per carrier."))
        if isinstance(value, int):
            value = {carrier.value: value for carrier in CARRIERS}
        if not isinstance(value, dict) or not value:
            raise ValidationError(_l("Give a number or a number per carrier."))
        carriers = [c.value for c in CARRIERS]
        result = {}
        for key, qty in value.items():
            if key not in carriers:
                raise ValidationError(_l("Unknown carrier %(carrier)s; use %(carriers)s.",
                                         carrier=key, carriers=", ".join(carriers)))
            if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= 10_000_000:
                raise ValidationError(_l("Quantities per carrier are whole numbers from 1 to "
                                         "10,000,000."))
            result[key] = qty
        return result

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kw: Any) -> Any:
        return value


# A customer's part number goes on labels and into 2D symbols: printable ASCII only.
CUSTOMER_PART = validate.Regexp(r"^[!-~][ -~]{0,59}$",
                                error=_l("Use 1 to 60 printable characters (ASCII)."))


# --- customers -------------------------------------------------------------------------

class CustomerIn(Schema):
    code = code_field()
    name = fields.String(required=True, validate=NAME)
    automotive = fields.Boolean(load_default=False)
    # A partner organisation (a Tier-1, a vehicle maker) is a customer record of kind partner.
    kind = fields.String(load_default=CustomerKind.CUSTOMER,
                         validate=validate.OneOf(CustomerKind.codes()))


class CustomerPatch(Schema):
    name = fields.String(validate=NAME)
    automotive = fields.Boolean()


class CustomerOut(Schema):
    code = fields.String()
    name = fields.String()
    automotive = fields.Boolean()
    kind = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


# --- routes ----------------------------------------------------------------------------

class BakeRecipe(Schema):
    """A bake: oven temperature, time and (below 125 °C) the oven's humidity."""

    temperature_c = fields.Float(required=True, validate=validate.Range(min=20, max=200))
    hours = fields.Float(required=True, validate=validate.Range(min=0, max=24 * 200,
                                                                 min_inclusive=False))
    rh_pct = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 100))


class RouteStepIn(Schema):
    code = code_field()
    name = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=validate.OneOf(StepKind.codes()))
    equipment_kind = fields.String(load_default=None, allow_none=True, validate=CODE)
    min_yield = fields.Float(load_default=None, allow_none=True,
                             validate=validate.Range(0, 100))
    materials = fields.List(fields.String(validate=CODE), load_default=list)
    # The step's name in Simplified Chinese, shown to zh_CN users (optional).
    name_zh = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=200))
    # Units per hour at the ideal rate (OEE performance), optional.
    ideal_uph = fields.Float(load_default=None, allow_none=True,
                             validate=validate.Range(min=0, max=10_000_000, min_inclusive=False))
    # Uses each unit adds to every durable mounted on the tool (wires per device ...).
    touchdowns_per_unit = fields.Integer(load_default=1, validate=validate.Range(1, 100_000))
    # The step whose track-out starts the moisture exposure clock (post-mold cure).
    moisture_start = fields.Boolean(load_default=False)
    # A bake step's recipe: its track-out records this bake (J-STD-033 bake table).
    bake = fields.Nested(BakeRecipe, load_default=None, allow_none=True)
    # The marking step (date code and mark text); none flagged: the step coded MARK.
    marks = fields.Boolean(load_default=False)


class RouteIn(Schema):
    code = code_field()
    name = fields.String(required=True, validate=NAME)
    steps = fields.List(fields.Nested(RouteStepIn), required=True,
                        validate=validate.Length(min=1, max=200))

    @validates_schema
    def _unique_steps(self, data: dict[str, Any], **_kw: Any) -> None:
        codes = [s["code"] for s in data.get("steps", [])]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValidationError(_l("Step codes must be unique in a route: %(codes)s.",
                                     codes=", ".join(dupes)),
                                  field_name="steps")


class RouteStepOut(Schema):
    seq = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    equipment_kind = fields.String(allow_none=True)
    min_yield = fields.Float(allow_none=True)
    materials = fields.List(fields.String())
    name_zh = fields.String(allow_none=True)
    ideal_uph = fields.Float(allow_none=True)
    touchdowns_per_unit = fields.Integer()
    moisture_start = fields.Boolean()
    bake = fields.Nested(BakeRecipe, allow_none=True)
    marks = fields.Boolean()


class RouteOut(Schema):
    code = fields.String()
    version = fields.Integer()
    name = fields.String()
    created_at = fields.AwareDateTime()
    steps = fields.List(fields.Nested(RouteStepOut))


class RouteQuery(Schema):
    version = fields.Integer(load_default=None, validate=POSITIVE_COUNT)


# --- products --------------------------------------------------------------------------

class ProductIn(Schema):
    code = code_field()
    name = fields.String(required=True, validate=NAME)
    package = fields.String(required=True, validate=validate.Length(min=1, max=40))
    route = code_field()
    aec_grade = fields.Integer(load_default=None, allow_none=True,
                               validate=validate.Range(0, 3))
    msl = fields.String(load_default=MslLevel.L1, validate=validate.OneOf(MslLevel.codes()))
    customer = fields.String(load_default=None, allow_none=True, validate=CODE)
    kind = fields.String(load_default=ProductKind.IC,
                         validate=validate.OneOf(ProductKind.codes()))
    qual_family = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(min=1, max=40))
    # Moisture control: body thickness (bake table row), peak reflow temperature (caution
    # label), manufacturer's exposure time in hours (most exposure at dry pack).
    body_thickness_mm = fields.Float(load_default=None, allow_none=True,
                                     validate=validate.Range(min=0.05, max=50))
    peak_reflow_c = fields.Integer(load_default=None, allow_none=True,
                                   validate=validate.Range(min=150, max=300))
    met_hours = fields.Float(load_default=24.0,
                             validate=validate.Range(min=0, max=8760, min_inclusive=False))
    mark_template = MarkTemplate(load_default=None, allow_none=True)
    standard_pack_qty = PackQuantities(load_default=None, allow_none=True)
    customer_part_number = fields.String(load_default=None, allow_none=True,
                                         validate=CUSTOMER_PART)


class ProductPatch(Schema):
    name = fields.String(validate=NAME)
    package = fields.String(validate=validate.Length(min=1, max=40))
    route = fields.String(validate=CODE)
    aec_grade = fields.Integer(allow_none=True, validate=validate.Range(0, 3))
    msl = fields.String(validate=validate.OneOf(MslLevel.codes()))
    customer = fields.String(allow_none=True, validate=CODE)
    kind = fields.String(validate=validate.OneOf(ProductKind.codes()))
    qual_family = fields.String(allow_none=True, validate=validate.Length(min=1, max=40))
    # Moisture control: body thickness (bake table row), peak reflow temperature (caution
    # label), manufacturer's exposure time in hours (most exposure at dry pack).
    body_thickness_mm = fields.Float(allow_none=True,
                                     validate=validate.Range(min=0.05, max=50))
    peak_reflow_c = fields.Integer(allow_none=True,
                                   validate=validate.Range(min=150, max=300))
    met_hours = fields.Float(validate=validate.Range(min=0, max=8760, min_inclusive=False))
    mark_template = MarkTemplate(allow_none=True)
    standard_pack_qty = PackQuantities(allow_none=True)
    customer_part_number = fields.String(allow_none=True, validate=CUSTOMER_PART)


class ProductOut(Schema):
    code = fields.String()
    name = fields.String()
    package = fields.String()
    route = fields.String(attribute="route_code")
    aec_grade = fields.Integer(allow_none=True)
    msl = fields.String()
    customer = fields.Function(lambda p: p.customer.code if p.customer else None,
                               allow_none=True)
    kind = fields.String()
    qual_family = fields.String(allow_none=True)
    qualified = fields.Boolean()
    body_thickness_mm = fields.Float(allow_none=True)
    peak_reflow_c = fields.Integer(allow_none=True)
    met_hours = fields.Float()
    mark_template = fields.String(allow_none=True)
    standard_pack_qty = PackQuantities(allow_none=True)
    customer_part_number = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


# --- equipment -------------------------------------------------------------------------

# The most lots and units one tool runs at once.
MAX_CAPACITY = 500
MAX_UNIT_CAPACITY = 10_000_000

class EquipmentIn(Schema):
    code = code_field()
    kind = code_field()
    name = fields.String(load_default="", validate=validate.Length(max=200))
    state = fields.String(load_default=EquipmentState.STANDBY,
                          validate=validate.OneOf(EquipmentState.codes()))
    # Lots at once (more than 1: a batch tool) and, optionally, units at once.
    capacity = fields.Integer(load_default=1, validate=validate.Range(1, MAX_CAPACITY))
    unit_capacity = fields.Integer(load_default=None, allow_none=True,
                                   validate=validate.Range(1, MAX_UNIT_CAPACITY))


class EquipmentPatch(Schema):
    state = fields.String(validate=validate.OneOf(EquipmentState.codes()))
    name = fields.String(validate=validate.Length(max=200))
    comment = fields.String(load_default="", validate=validate.Length(max=500))
    # The downtime reason code; required to enter a down state.
    reason = fields.String(load_default=None, validate=validate.Length(max=40))
    capacity = fields.Integer(validate=validate.Range(1, MAX_CAPACITY))
    unit_capacity = fields.Integer(allow_none=True, validate=validate.Range(1, MAX_UNIT_CAPACITY))


class EquipmentOut(Schema):
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    state = fields.String()
    state_since = fields.AwareDateTime()
    capacity = fields.Integer()
    unit_capacity = fields.Integer(allow_none=True)
    lots_running = fields.Integer()


class EquipmentQuery(Schema):
    kind = fields.String(load_default=None)
    state = fields.String(load_default=None, validate=validate.OneOf(EquipmentState.codes()))


# --- durables --------------------------------------------------------------------------

# A life limit up to a trillion uses: a probe card's touchdowns fit, a driver overflow never.
MAX_LIFE = 10**12


class DurableIn(Schema):
    code = code_field()
    kind = fields.String(required=True, validate=validate.OneOf(DurableKind.codes()))
    life_limit = fields.Integer(required=True, validate=validate.Range(1, MAX_LIFE))
    warn_at_pct = fields.Integer(load_default=90, validate=validate.Range(1, 100))
    # The uses it has had already (a part moved in from elsewhere); default 0.
    used = fields.Integer(load_default=0, validate=validate.Range(0, MAX_LIFE))


class DurableMountIn(Schema):
    durable = code_field()


class DurableOut(Schema):
    code = fields.String()
    kind = fields.String()
    life_limit = fields.Integer()
    warn_at_pct = fields.Integer()
    used = fields.Integer()
    reserved = fields.Integer()
    left = fields.Integer()
    warning = fields.Boolean()
    equipment = fields.Function(lambda durable: durable.equipment.code
                                if durable.equipment is not None else None, allow_none=True)
    mounted_at = fields.AwareDateTime(allow_none=True)


class DurableQuery(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(DurableKind.codes()))
    equipment = fields.String(load_default=None, validate=CODE)


# --- reason codes ----------------------------------------------------------------------

# The most steps or step kinds one reason code names.
MAX_REASON_STEPS = 50


class _Distinct(fields.List):
    """A list whose repeated items count once, in the order first given."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


def _reason_steps(**kw: Any) -> fields.List:
    return _Distinct(fields.String(validate=CODE), validate=validate.Length(
        max=MAX_REASON_STEPS), **kw)


def _reason_step_kinds(**kw: Any) -> fields.List:
    return _Distinct(fields.String(validate=validate.OneOf(StepKind.codes())),
                     validate=validate.Length(max=len(StepKind)), **kw)


class ReasonCodeIn(Schema):
    code = code_field()
    kind = fields.String(required=True, validate=validate.OneOf(ReasonKind.codes()))
    description = fields.String(required=True, validate=NAME)
    description_zh = fields.String(load_default="", validate=validate.Length(max=200))
    # What customers read of rejects and scrap under the code (their Pareto's category).
    customer_category = fields.String(load_default=CustomerCategory.OTHER.value,
                                      validate=validate.OneOf(CustomerCategory.codes()))
    # Where the reason applies (step codes, step kinds); both empty: everywhere.
    steps = _reason_steps(load_default=list)
    step_kinds = _reason_step_kinds(load_default=list)


class ReasonCodePatch(Schema):
    description = fields.String(validate=NAME)
    description_zh = fields.String(validate=validate.Length(max=200))
    active = fields.Boolean()
    customer_category = fields.String(validate=validate.OneOf(CustomerCategory.codes()))
    steps = _reason_steps()
    step_kinds = _reason_step_kinds()


class ReasonCodeOut(Schema):
    code = fields.String()
    kind = fields.String()
    description = fields.String()
    description_zh = fields.String()
    active = fields.Boolean()
    customer_category = fields.String()
    steps = fields.List(fields.String())
    step_kinds = fields.List(fields.String())


class ReasonCodeQuery(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(ReasonKind.codes()))


# --- material lots ---------------------------------------------------------------------

PART_NUMBER = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,59}$",
                              error=_l("Use 1 to 60 letters, digits, '.', '_', '/' or '-'."))

class MaterialLotIn(Schema):
    code = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}$", error=_l("Use 1 to 60 letters, digits, '.', '_' "
                                                       "or '-'.")))
    material = code_field()
    description = fields.String(load_default="", validate=validate.Length(max=200))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    part_number = fields.String(load_default=None, allow_none=True, validate=PART_NUMBER)
    thaw_minutes = fields.Integer(load_default=None, allow_none=True,
                                  validate=validate.Range(1, 7 * 24 * 60))
    work_life_hours = fields.Float(load_default=None, allow_none=True,
                                   validate=validate.Range(0.1, 10_000))


class MaterialLotPatch(Schema):
    description = fields.String(validate=validate.Length(max=200))
    expires_at = fields.AwareDateTime(allow_none=True)


class MaterialLotOut(Schema):
    code = fields.String()
    material = fields.String()
    description = fields.String()
    expires_at = fields.AwareDateTime(allow_none=True)
    expired = fields.Boolean()
    part_number = fields.String(allow_none=True)
    thaw_minutes = fields.Integer(allow_none=True)
    work_life_hours = fields.Float(allow_none=True)
    thawing_since = fields.AwareDateTime(allow_none=True)
    ready_at = fields.AwareDateTime(allow_none=True)
    opened_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()


class MaterialLotQuery(Schema):
    material = fields.String(load_default=None)


# --- qualifications --------------------------------------------------------------------

class QualificationTestIn(Schema):
    test = fields.String(required=True, validate=validate.Length(min=1, max=40))
    group = fields.String(load_default="", validate=validate.Length(max=10))
    sample_size = fields.Integer(required=True, validate=POSITIVE_COUNT)
    lots = fields.Integer(required=True, validate=POSITIVE_COUNT)
    fails = fields.Integer(required=True, validate=COUNT)
    preconditioned = fields.Boolean(load_default=False)


class QualificationIn(Schema):
    """`standard` defaults to the one of the product's kind (mes.catalog.aec)."""

    standard = fields.String(load_default=None,
                             validate=validate.OneOf(QualStandard.codes()))
    grade = fields.Integer(required=True, validate=validate.Range(0, 3))
    bom_revision = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=20))
    family = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(min=1, max=40))
    tests = fields.List(fields.Nested(QualificationTestIn), required=True,
                        validate=validate.Length(min=1, max=100))
    report = fields.String(load_default="", validate=validate.Length(max=200))


class QualificationTestOut(Schema):
    test = fields.String()
    group = fields.String()
    sample_size = fields.Integer()
    lots = fields.Integer()
    fails = fields.Integer()
    preconditioned = fields.Boolean()


class QualificationOut(Schema):
    id = fields.Integer()
    product = fields.Function(lambda q: q.product.code)
    standard = fields.String()
    grade = fields.Integer()
    bom_revision = fields.Function(lambda q: q.bom.revision if q.bom is not None else None,
                                   allow_none=True)
    family = fields.String(allow_none=True)
    status = fields.String()
    report = fields.String()
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)
    tests = fields.List(fields.Nested(QualificationTestOut))


# --- bills of materials ----------------------------------------------------------------

class BomItemIn(Schema):
    step = code_field()
    material = code_field()
    part_numbers = fields.List(fields.String(validate=PART_NUMBER), required=True,
                               validate=validate.Length(min=1, max=50))
    qty_per_unit = fields.Float(load_default=None, allow_none=True,
                                validate=validate.Range(min=0, min_inclusive=False))


class BomIn(Schema):
    revision = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,19}$",
        error=_l("Use 1 to 20 letters, digits, '.', '_' or '-'.")))
    items = fields.List(fields.Nested(BomItemIn), required=True,
                        validate=validate.Length(min=1, max=200))


class BomItemOut(Schema):
    step = fields.String()
    material = fields.String()
    part_numbers = fields.List(fields.String())
    qty_per_unit = fields.Float(allow_none=True)


class BomOut(Schema):
    product = fields.Function(lambda bom: bom.product.code)
    revision = fields.String()
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)
    items = fields.List(fields.Nested(BomItemOut))


class BomQuery(Schema):
    revision = fields.String(load_default=None)


# --- preventive maintenance ------------------------------------------------------------

class PmPlanIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    every_days = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(1, 3650))
    every_units = fields.Integer(load_default=None, allow_none=True, validate=POSITIVE_COUNT)

    @validates_schema
    def _one_interval(self, data: dict[str, Any], **_kw: Any) -> None:
        if (data.get("every_days") is None) == (data.get("every_units") is None):
            message = _l("Give either a number of days or a number of units, not both.") \
                if data.get("every_days") is not None else \
                _l("Give a number of days or a number of units.")
            raise ValidationError({"every_days": [message], "every_units": [message]})


def _units_left(plan: Any) -> int | None:
    return None if plan.due_units is None else plan.due_units - plan.equipment.units_processed


class PmPlanOut(Schema):
    equipment = fields.Function(lambda p: p.equipment.code)
    name = fields.String()
    every_days = fields.Integer(allow_none=True)
    every_units = fields.Integer(allow_none=True)
    # Counted from (the plan's creation or its last PM).
    since_at = fields.AwareDateTime()
    # A calendar plan's due date; a plan by use's units left (negative: overdue).
    due_at = fields.AwareDateTime(allow_none=True)
    units_left = fields.Function(_units_left, allow_none=True)
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)


class PmRecordIn(Schema):
    plan = fields.String(required=True, validate=validate.Length(min=1, max=80))
    notes = fields.String(load_default="", validate=validate.Length(max=2000))


class PmRecordOut(Schema):
    id = fields.Integer()
    equipment = fields.Function(lambda r: r.plan.equipment.code)
    plan = fields.Function(lambda r: r.plan.name)
    done_at = fields.AwareDateTime()
    done_by = fields.String(allow_none=True)
    notes = fields.String()
    due_since = fields.AwareDateTime(allow_none=True)
    units_since = fields.Integer()
