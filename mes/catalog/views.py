"""Master data pages for engineers and admins; the E10 state form for the floor.

Forms are converted to the API's shape and validated with the API's input schemas, then
handed to the same services, so a page and the API accept and refuse exactly the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from mes import db
from mes.auth.permissions import Permission, has_permission, require
from mes.catalog import aec, maintenance, services
from mes.catalog import schemas as s
from mes.catalog.models import (
    Customer,
    Durable,
    Equipment,
    EquipmentStateChange,
    MaterialLot,
    Product,
    ReasonCode,
    Route,
    RouteStep,
)
from mes.errors import ErrorCode, InvalidInput
from mes.testfloor import programs
from mes.vocabulary import (
    CustomerCategory,
    DurableKind,
    EquipmentKind,
    EquipmentState,
    MaterialType,
    MslLevel,
    ProductKind,
    QualStandard,
    QualStatus,
    ReasonKind,
    StepKind,
)
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("catalog", __name__, url_prefix="/catalog")

READ, WRITE = Permission.MASTER_READ, Permission.MASTER_WRITE
STATE_HISTORY = 20
T = TypeVar("T")

# The product's temperature grade: AEC-Q100's grades (Q104 takes the same, Q101 a subset).
GRADE_LABELS = dict(aec.GRADES[QualStandard.AEC_Q100])

STEP_COLUMNS = ("code", "name", "kind", "equipment_kind", "min_yield", "materials", "name_zh",
                "ideal_uph", "touchdowns_per_unit")
TEST_COLUMNS = ("test", "sample_size", "lots", "fails", "preconditioned")
BOM_COLUMNS = ("step", "material", "part_numbers", "qty_per_unit")


def _options(values: Iterable[Any], labels: dict[Any, Any]) -> list[tuple[Any, str]]:
    return [(value, str(labels[value])) for value in values]


@bp.app_context_processor
def _inject_can() -> dict[str, Any]:
    def can(permission: str) -> bool:
        return has_permission(current_user, Permission(permission))

    return {"can": can}


# --- form conversion -------------------------------------------------------------------
# Each form field has a kind saying how an HTML form value maps to the schema's shape:
#   text  stripped; empty -> omitted (the schema reports a missing required field)
#   keep  stripped; kept even when empty (patch forms: an emptied name must be refused)
#   opt   stripped; empty -> None (an optional value left blank, or cleared)
#   bool  a checkbox: absent -> False, present -> its value for the schema to read
#   dt    a datetime-local input in the plant time zone -> aware UTC ISO string; empty -> None

def _plant_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["PLANT_TIMEZONE"])


def _to_utc_iso(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # the schema names the problem
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_plant_zone())
    return moment.astimezone(UTC).isoformat()


def to_local_input(moment: datetime | None) -> str:
    """An aware time as the value of a datetime-local input, in the plant time zone."""
    if moment is None:
        return ""
    return moment.astimezone(_plant_zone()).strftime("%Y-%m-%dT%H:%M")


def _convert(form: MultiDict[str, str], spec: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, kind in spec.items():
        if kind == "bool":
            data[name] = form.get(name) or False
            continue
        value = form.get(name, "").strip()
        if kind == "dt":
            data[name] = _to_utc_iso(value) if value else None
        elif value or kind == "keep":
            data[name] = value
        elif kind == "opt":
            data[name] = None
    return data


def _submit(action: Callable[[], T]) -> tuple[T | None, dict[str, list[str]], int]:
    """Run a form's load-and-save; on a refusal return the messages per field and the
    status the page is re-rendered with (the request then rolls back). A refusal that
    names no field is the form's, or the code's when the code is taken."""
    result, refused = forms.attempt(action)
    if refused is None:
        return result, {}, 200
    if refused.fields:
        return None, refused.fields, refused.status
    field = "code" if refused.code == ErrorCode.DUPLICATE else "_schema"
    return None, {field: [refused.message]}, refused.status


# --- lines of a textarea (route steps, qualification tests) ----------------------------

def _parse_lines(text: str, columns: tuple[str, ...], required: int,
                 ) -> tuple[list[dict[str, Any]], list[int], list[tuple[int, str]]]:
    """Split `A | B | C` lines into dicts by column; blank lines are skipped. Returns the
    rows, the line number of each row, and (line, message) for lines that do not split."""
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        if not required <= len(parts) <= len(columns):
            if required == len(columns):
                message = _("Line %(line)d: write %(count)d values separated by '|' (found "
                            "%(found)d).", line=number, count=required, found=len(parts))
            else:
                message = _("Line %(line)d: write %(min)d to %(max)d values separated by '|' "
                            "(found %(found)d).", line=number, min=required, max=len(columns),
                            found=len(parts))
            problems.append((number, message))
            continue
        rows.append({col: part for col, part in zip(columns, parts, strict=False) if part})
        numbers.append(number)
    return rows, numbers, problems


def _load_with_lines(schema: type[Schema], data: dict[str, Any], key: str,
                     rows: list[dict[str, Any]], numbers: list[int],
                     problems: list[tuple[int, str]]) -> dict[str, Any]:
    """Validate a form whose `key` list was typed as lines; every message about an item
    names its line, and lines that did not split are reported with the schema's findings."""
    if rows:
        data[key] = rows
    try:
        loaded = forms.load(schema, data)
    except ValidationError as err:
        messages = err.normalized_messages()
    else:
        if not problems:
            return loaded
        messages = {}
    found = list(problems)
    general: list[str] = []
    item_messages = messages.pop(key, None)
    if isinstance(item_messages, dict):
        for index, item in item_messages.items():
            if isinstance(index, int) and index < len(numbers):
                found += [(numbers[index], _("Line %(line)d, %(message)s", line=numbers[index],
                                              message=msg)) for msg in forms.flatten(item)]
            else:
                general += forms.flatten(item)
    elif item_messages is not None and not (problems and not rows):
        # "missing" is not news when every line was refused already
        general += forms.flatten(item_messages)
    lines = general + [msg for _line, msg in sorted(found, key=lambda pair: pair[0])]
    if lines:
        messages[key] = lines
    raise ValidationError(messages)


def _step_line(step: Any) -> str:
    min_yield = "" if step.min_yield is None else f"{step.min_yield:g}"
    ideal = "" if step.ideal_uph is None else f"{step.ideal_uph:g}"
    touchdowns = "" if (step.touchdowns_per_unit or 1) == 1 else str(step.touchdowns_per_unit)
    return " | ".join([step.code, step.name, step.kind, step.equipment_kind or "", min_yield,
                       ", ".join(step.materials or []), step.name_zh or "",
                       ideal, touchdowns]).rstrip(" |")


def _parse_step_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row.setdefault("equipment_kind", None)
        row.setdefault("min_yield", None)
        row.setdefault("name_zh", None)
        row.setdefault("ideal_uph", None)
        if not row.get("touchdowns_per_unit"):
            row.pop("touchdowns_per_unit", None)
        row["materials"] = [m.strip() for m in row.get("materials", "").split(",")
                            if m.strip()]
    return rows


# --- landing page ----------------------------------------------------------------------

def _count(stmt: Select[Any]) -> int:
    return db.session().scalar(stmt) or 0


@bp.route("/")
@require(READ)
def index() -> Any:
    counts = {
        "customers": _count(select(func.count(Customer.id))),
        "routes": _count(select(func.count(func.distinct(Route.code)))),
        "products": _count(select(func.count(Product.id))),
        "equipment": _count(select(func.count(Equipment.id))),
        "equipment_down": _count(select(func.count(Equipment.id)).where(
            Equipment.state.in_((EquipmentState.SCHEDULED_DOWN,
                                 EquipmentState.UNSCHEDULED_DOWN)))),
        "reasons": _count(select(func.count(ReasonCode.id))),
        "materials": _count(select(func.count(MaterialLot.id))),
        "materials_expired": _count(select(func.count(MaterialLot.id)).where(
            MaterialLot.expires_at.is_not(None),
            MaterialLot.expires_at <= datetime.now(UTC))),
    }
    return render_template("catalog/index.html", counts=counts)


# --- customers -------------------------------------------------------------------------

CUSTOMER_FIELDS = ("code", "name", "automotive")


@bp.route("/customers")
@require(READ)
def customer_list() -> Any:
    page = pager(select(Customer).order_by(Customer.code))
    return render_template("catalog/customers.html", customers=page.items, next_url=page.next_url,
                           prev_url=page.prev_url)


@bp.route("/customers/new", methods=["GET", "POST"])
@require(WRITE)
def customer_new() -> Any:
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        customer, errors, status = _submit(lambda: services.create_customer(
            db.session(), current_user, forms.load(s.CustomerIn, _convert(
                request.form, {"code": "text", "name": "text", "automotive": "bool"}))))
        if customer is not None:
            return forms.done(_("Customer %(code)s created.", code=customer.code),
                              "catalog.customer_list")
    return render_template("catalog/customer_form.html", customer=None, form=form,
                           errors=errors, fields=CUSTOMER_FIELDS), status


@bp.route("/customers/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def customer_edit(code: str) -> Any:
    sess = db.session()
    customer = services.get_customer(sess, code)
    form: dict[str, Any] = {"name": customer.name, "automotive": customer.automotive}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        saved, errors, status = _submit(lambda: services.update_customer(
            sess, current_user, customer, forms.load(s.CustomerPatch, _convert(
                request.form, {"name": "keep", "automotive": "bool"}))))
        if saved is not None:
            return forms.done(_("Customer %(code)s saved.", code=code), "catalog.customer_list")
    return render_template("catalog/customer_form.html", customer=customer, form=form,
                           errors=errors, fields=CUSTOMER_FIELDS), status


# --- routes ----------------------------------------------------------------------------

ROUTE_FIELDS = ("code", "name", "steps")


@bp.route("/routes")
@require(READ)
def route_list() -> Any:
    page = pager(services.list_routes(db.session()))
    return render_template("catalog/routes.html", routes=page.items, next_url=page.next_url,
                           prev_url=page.prev_url)


@bp.route("/routes/<code>")
@require(READ)
def route_detail(code: str) -> Any:
    sess = db.session()
    wanted = request.args.get("version", "").strip()
    try:
        # The API's rule for ?version=: a whole number the plant can have made.
        version = forms.load(s.RouteQuery, {"version": wanted} if wanted else {})["version"]
    except ValidationError as err:
        raise InvalidInput(_l("No route %(code)s version %(version)s.", code=code,
                              version=wanted), fields=err.normalized_messages()) from None
    route = services.get_route(sess, code, version)
    versions = sess.execute(
        select(Route.version, Route.name, Route.created_at, func.count(RouteStep.id))
        .outerjoin(Route.steps).where(Route.code == code)
        .group_by(Route.id, Route.version, Route.name, Route.created_at)
        .order_by(Route.version.desc())).all()
    return render_template("catalog/route_detail.html", route=route, versions=versions,
                           current_version=versions[0].version,
                           kind_labels=StepKind.labels())


def _save_route(fixed_code: str | None) -> tuple[Route | None, dict[str, Any], int]:
    def action() -> Route:
        data = _convert(request.form, {"code": "text", "name": "text"})
        if fixed_code is not None:
            data["code"] = fixed_code
        rows, numbers, problems = _parse_lines(request.form.get("steps", ""), STEP_COLUMNS, 3)
        loaded = _load_with_lines(s.RouteIn, data, "steps", _parse_step_rows(rows), numbers,
                                  problems)
        return services.create_route(db.session(), current_user, loaded)

    return _submit(action)


def _route_form(route: Route | None, form: dict[str, Any], errors: dict[str, Any],
                status: int) -> Any:
    return render_template("catalog/route_form.html", route=route, form=form, errors=errors,
                           fields=ROUTE_FIELDS, kinds=StepKind.codes()), status


@bp.route("/routes/new", methods=["GET", "POST"])
@require(WRITE)
def route_new() -> Any:
    if request.method == "GET":
        return _route_form(None, {}, {}, 200)
    route, errors, status = _save_route(None)
    if route is not None:
        return forms.done(_("Route %(code)s version %(version)d saved.", code=route.code,
                            version=route.version), "catalog.route_list")
    return _route_form(None, request.form.to_dict(), errors, status)


@bp.route("/routes/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def route_edit(code: str) -> Any:
    current = services.get_route(db.session(), code)
    if request.method == "GET":
        form = {"name": current.name, "steps": "\n".join(_step_line(st) for st in current.steps)}
        return _route_form(current, form, {}, 200)
    route, errors, status = _save_route(code)
    if route is not None:
        return forms.done(_("Route %(code)s version %(version)d saved.", code=route.code,
                            version=route.version), "catalog.route_list")
    return _route_form(current, request.form.to_dict(), errors, status)


# --- products --------------------------------------------------------------------------

PRODUCT_FIELDS = ("code", "name", "package", "route", "kind", "aec_grade", "msl",
                  "qual_family", "customer", "mark_template", "standard_pack_qty",
                  "customer_part_number")
PACKING_SPEC = {"mark_template": "opt", "customer_part_number": "opt"}
PRODUCT_NEW_SPEC = {"code": "text", "name": "text", "package": "text", "route": "text",
                    "kind": "text", "aec_grade": "opt", "msl": "text", "qual_family": "opt",
                    "customer": "opt", **PACKING_SPEC}
PRODUCT_EDIT_SPEC = {"name": "keep", "package": "keep", "route": "keep", "kind": "text",
                     "aec_grade": "opt", "msl": "text", "qual_family": "opt",
                     "customer": "opt", **PACKING_SPEC}


def _pack_quantities(text: str) -> Any:
    """The form's standard pack quantities: one number, or "reel 5000, tube 100" (None when
    empty; what does not read as either goes to the schema as it is, which refuses it)."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    pairs = [part.split() for part in text.replace("=", " ").replace(":", " ").split(",")]
    if all(len(pair) == 2 and pair[1].isdigit() for pair in pairs):
        return {pair[0].lower(): int(pair[1]) for pair in pairs}
    return text


def _pack_text(quantities: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (quantities or {}).items())


def _product_data(spec: dict[str, str]) -> dict[str, Any]:
    data = _convert(request.form, spec)
    data["standard_pack_qty"] = _pack_quantities(request.form.get("standard_pack_qty", ""))
    return data


def _product_form(product: Product | None, form: dict[str, Any], errors: dict[str, Any],
                  status: int) -> Any:
    sess = db.session()
    routes = [r.code for r in services.list_routes(sess)]
    customers = [(c.code, f"{c.code} · {c.name}") for c in
                 sess.scalars(select(Customer).order_by(Customer.code))]
    return render_template("catalog/product_form.html", product=product, form=form,
                           errors=errors, fields=PRODUCT_FIELDS, routes=routes,
                           customers=customers, msl_levels=MslLevel.codes(),
                           kinds=ProductKind.choices(),
                           grades=_options(range(4), GRADE_LABELS)), status


@bp.route("/products")
@require(READ)
def product_list() -> Any:
    page = pager(
        select(Product).options(selectinload(Product.customer),
                                selectinload(Product.qualifications))
        .order_by(Product.code))
    return render_template("catalog/products.html", products=page.items, next_url=page.next_url,
                           prev_url=page.prev_url)


@bp.route("/products/<code>")
@require(READ)
def product_detail(code: str) -> Any:
    sess = db.session()
    product = services.get_product(sess, code)
    boms = services.list_boms(sess, product)
    coverage = {bom.id: services.revision_coverage(sess, product, bom) for bom in boms}
    route = services.current_route(sess, product.route_code)
    test_steps = [st.code for st in (services.route_step_infos(sess, route) if route else ())
                  if st.kind == StepKind.TEST]
    return render_template("catalog/product_detail.html", product=product,
                           coverage=coverage,
                           test_programs=[(code, programs.released_program(
                               sess, product.id, code)) for code in test_steps],
                           grade_labels=GRADE_LABELS, status_labels=QualStatus.labels(),
                           kind_labels=ProductKind.labels(),
                           standard=aec.standard_for(product.kind), boms=boms)


def _bom_line(item: Any) -> str:
    qty = "" if item.qty_per_unit is None else f"{item.qty_per_unit:g}"
    return " | ".join([item.step, item.material, ", ".join(item.part_numbers or []),
                       qty]).rstrip(" |")


@bp.route("/products/<code>/bom/new", methods=["GET", "POST"])
@require(WRITE)
def bom_new(code: str) -> Any:
    """A new BOM revision, typed as lines and started from the current one."""
    sess = db.session()
    product = services.get_product(sess, code)
    current = services.current_bom(sess, product)
    form: dict[str, Any] = {"items": "\n".join(_bom_line(i) for i in current.items)
                            if current is not None else ""}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()

        def action() -> Any:
            data = _convert(request.form, {"revision": "text"})
            rows, numbers, problems = _parse_lines(request.form.get("items", ""),
                                                   BOM_COLUMNS, 3)
            for row in rows:
                row["part_numbers"] = [p.strip() for p in row["part_numbers"].split(",")
                                       if p.strip()]
                if not row.get("qty_per_unit"):
                    row.pop("qty_per_unit", None)
            loaded = _load_with_lines(s.BomIn, data, "items", rows, numbers, problems)
            return services.create_bom(sess, current_user, product, loaded)

        bom, errors, status = _submit(action)
        if bom is not None:
            return forms.done(_("BOM revision %(revision)s of %(code)s created; lots received "
                                "from now on use it.", revision=bom.revision, code=code),
                              "catalog.product_detail", code=code)
    return render_template("catalog/bom_form.html", product=product, current=current,
                           form=form, errors=errors, fields=("revision", "items")), status


@bp.route("/products/new", methods=["GET", "POST"])
@require(WRITE)
def product_new() -> Any:
    if request.method == "GET":
        return _product_form(None, {"msl": "1", "kind": ProductKind.IC}, {}, 200)
    product, errors, status = _submit(lambda: services.create_product(
        db.session(), current_user,
        forms.load(s.ProductIn, _product_data(PRODUCT_NEW_SPEC))))
    if product is not None:
        return forms.done(_("Product %(code)s created.", code=product.code), "catalog.product_list")
    return _product_form(None, request.form.to_dict(), errors, status)


@bp.route("/products/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def product_edit(code: str) -> Any:
    sess = db.session()
    product = services.get_product(sess, code)
    if request.method == "GET":
        form = {"name": product.name, "package": product.package, "route": product.route_code,
                "kind": product.kind, "aec_grade": product.aec_grade, "msl": product.msl,
                "qual_family": product.qual_family or "",
                "customer": product.customer.code if product.customer else "",
                "mark_template": product.mark_template or "",
                "standard_pack_qty": _pack_text(product.standard_pack_qty),
                "customer_part_number": product.customer_part_number or ""}
        return _product_form(product, form, {}, 200)
    saved, errors, status = _submit(lambda: services.update_product(
        sess, current_user, product,
        forms.load(s.ProductPatch, _product_data(PRODUCT_EDIT_SPEC))))
    if saved is not None:
        return forms.done(_("Product %(code)s saved.", code=code), "catalog.product_list")
    return _product_form(product, request.form.to_dict(), errors, status)


QUALIFICATION_FIELDS = ("standard", "grade", "bom_revision", "family", "report", "tests")
QUALIFICATION_SPEC = {"standard": "text", "grade": "text", "bom_revision": "opt",
                      "family": "opt", "report": "text"}
# What a test line's last column may say to mark its units preconditioned.
PRECONDITIONED_WORDS = ("pc", "yes", "y", "true", "1", "x")


def _test_rows(text: str) -> tuple[list[dict[str, Any]], list[int], list[tuple[int, str]]]:
    rows, numbers, problems = _parse_lines(text, TEST_COLUMNS, len(TEST_COLUMNS) - 1)
    for row in rows:
        row["preconditioned"] = row.get("preconditioned", "").lower() in PRECONDITIONED_WORDS
    return rows, numbers, problems


@bp.route("/products/<code>/qualifications/new", methods=["GET", "POST"])
@require(Permission.LIMITS_WRITE)
def qualification_new(code: str) -> Any:
    """Record a qualification under the standard of the product's kind, at one of its
    grades and one of the product's BOM revisions; the form shows the standard's stresses
    with their minimum samples."""
    sess = db.session()
    product = services.get_product(sess, code)
    standard = aec.standard_for(product.kind)
    boms = services.list_boms(sess, product)
    form: dict[str, Any] = {"standard": standard, "grade": product.aec_grade,
                            "bom_revision": boms[0].revision if boms else "",
                            "family": product.qual_family or ""}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()

        def action() -> Any:
            data = _convert(request.form, QUALIFICATION_SPEC)
            rows, numbers, problems = _test_rows(request.form.get("tests", ""))
            loaded = _load_with_lines(s.QualificationIn, data, "tests", rows, numbers,
                                      problems)
            return services.add_qualification(sess, current_user, product, loaded)

        qual, errors, status = _submit(action)
        if qual is not None:
            return forms.done(_("Qualification of %(code)s recorded: %(status)s.", code=code,
                                status=QualStatus(qual.status).label),
                              "catalog.product_detail", code=code)
    grades = aec.GRADES[standard]
    return render_template("catalog/qualification_form.html", product=product, form=form,
                           errors=errors, fields=QUALIFICATION_FIELDS,
                           standards=[(standard, standard)],
                           grades=_options(grades, dict(grades)),
                           boms=[b.revision for b in boms],
                           families=[product.qual_family] if product.qual_family else [],
                           stresses=list(aec.STRESSES[standard].values()),
                           smd=aec.surface_mount(product.package)), status


# --- equipment -------------------------------------------------------------------------

EQUIPMENT_FIELDS = ("code", "kind", "name", "state", "capacity", "unit_capacity")
# The plans the equipment list shows as due next.
PM_NEXT = 10


@bp.route("/equipment")
@require(READ)
def equipment_list() -> Any:
    sess = db.session()
    kind = request.args.get("kind", "").strip()
    state = request.args.get("state", "")
    stmt = select(Equipment).order_by(Equipment.code)
    if kind:
        stmt = stmt.where(Equipment.kind == kind)
    if state in EquipmentState.codes():
        stmt = stmt.where(Equipment.state == state)
    page = pager(stmt)
    kinds = [(code, str(EquipmentKind.word(code))) for code in sess.scalars(
        select(Equipment.kind).distinct().order_by(Equipment.kind))]
    return render_template("catalog/equipment.html", equipment=page.items, next_url=page.next_url,
                           prev_url=page.prev_url, kinds=kinds, kind=kind,
                           pm_next=maintenance.due_next(sess, limit=PM_NEXT),
                           state=state if state in EquipmentState.codes() else "",
                           states=EquipmentState.choices())


@bp.route("/equipment/new", methods=["GET", "POST"])
@require(WRITE)
def equipment_new() -> Any:
    form: dict[str, Any] = {"state": EquipmentState.STANDBY}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        equipment, errors, status = _submit(lambda: services.create_equipment(
            db.session(), current_user, forms.load(s.EquipmentIn, _convert(
                request.form, {"code": "text", "kind": "text", "name": "text",
                               "state": "text", "capacity": "text",
                               "unit_capacity": "text"}))))
        if equipment is not None:
            return forms.done(_("Equipment %(code)s created.", code=equipment.code),
                              "catalog.equipment_list")
    return render_template("catalog/equipment_form.html", equipment=None, form=form,
                           errors=errors, fields=EQUIPMENT_FIELDS,
                           states=EquipmentState.choices()), status


@bp.route("/equipment/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def equipment_edit(code: str) -> Any:
    sess = db.session()
    equipment = services.get_equipment(sess, code)
    form: dict[str, Any] = {"name": equipment.name, "capacity": equipment.capacity,
                            "unit_capacity": equipment.unit_capacity or ""}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        saved, errors, status = _submit(lambda: services.update_equipment(
            sess, current_user, equipment,
            forms.load(s.EquipmentPatch, _convert(request.form, {
                "name": "keep", "capacity": "text", "unit_capacity": "opt"}))))
        if saved is not None:
            return forms.done(_("Equipment %(code)s saved.", code=code), "catalog.equipment_list")
    return render_template("catalog/equipment_form.html", equipment=equipment, form=form,
                           errors=errors, fields=("name", "capacity", "unit_capacity"),
                           states=EquipmentState.choices()), status


@bp.route("/equipment/<code>/state", methods=["GET", "POST"])
@require(Permission.EQUIPMENT_STATE)
def equipment_state(code: str) -> Any:
    sess = db.session()
    equipment = services.get_equipment(sess, code)
    form: dict[str, Any] = {"state": equipment.state}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        before = equipment.state
        saved, errors, status = _submit(lambda: services.update_equipment(
            sess, current_user, equipment, forms.load(s.EquipmentPatch, _convert(
                request.form, {"state": "keep", "reason": "code", "comment": "text"}))))
        if saved is not None:
            label = EquipmentState(saved.state).label
            message = _("%(code)s is now %(state)s.", code=code, state=label) \
                if saved.state != before else \
                _("%(code)s was already %(state)s; nothing changed.", code=code, state=label)
            return forms.done(message, "catalog.equipment_list")
    history = sess.scalars(
        select(EquipmentStateChange).where(EquipmentStateChange.equipment_id == equipment.id)
        .order_by(EquipmentStateChange.at.desc(), EquipmentStateChange.id.desc())
        .limit(STATE_HISTORY)).all()
    reasons = [(r.code, f"{r.code} — {r.description}") for r in sess.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.DOWNTIME,
                                 ReasonCode.active.is_(True)).order_by(ReasonCode.code))]
    return render_template("catalog/equipment_state.html", equipment=equipment, form=form,
                           errors=errors, history=history, reasons=reasons,
                           states=EquipmentState.choices()), status


# --- preventive maintenance ------------------------------------------------------------

def _pm_page(equipment: Equipment, *, plan_form: dict[str, Any] | None = None,
             plan_errors: dict[str, Any] | None = None, pm_form: dict[str, Any] | None = None,
             pm_errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    sess = db.session()
    plans = maintenance.due_next(sess, equipment)
    return render_template(
        "catalog/equipment_pm.html", equipment=equipment, plans=plans,
        history=maintenance.history(sess, equipment), plan_form=plan_form or {},
        plan_errors=plan_errors or {}, pm_form=pm_form or {}, pm_errors=pm_errors or {},
        plan_choices=[(p.plan.name, p.plan.name) for p in plans]), status


@bp.route("/equipment/<code>/pm")
@require(READ)
def equipment_pm(code: str) -> Any:
    """The tool's preventive maintenance: its plans, what is due, the PMs recorded."""
    return _pm_page(services.get_equipment(db.session(), code))


@bp.route("/equipment/<code>/pm-plans", methods=["POST"])
@require(WRITE)
def equipment_pm_plan(code: str) -> Any:
    sess = db.session()
    equipment = services.get_equipment(sess, code)
    plan, errors, status = _submit(lambda: maintenance.create_plan(
        sess, current_user, equipment, forms.load(s.PmPlanIn, _convert(
            request.form, {"name": "text", "every_days": "opt", "every_units": "opt"}))))
    if plan is not None:
        return forms.done(_("PM plan %(name)s added to %(code)s.", name=plan.name, code=code),
                          "catalog.equipment_pm", code=code)
    if "code" in errors:  # a plan of that name exists already
        errors = {"name": errors.pop("code"), **errors}
    return _pm_page(equipment, plan_form=request.form.to_dict(), plan_errors=errors,
                    status=status)


@bp.route("/equipment/<code>/pm", methods=["POST"])
@require(WRITE)
def equipment_pm_record(code: str) -> Any:
    sess = db.session()
    equipment = services.get_equipment(sess, code)
    record, errors, status = _submit(lambda: maintenance.record_pm(
        sess, current_user, equipment, forms.load(s.PmRecordIn, _convert(
            request.form, {"plan": "text", "notes": "text"}))))
    if record is not None:
        return forms.done(_("PM %(plan)s recorded on %(code)s; bring the tool up when it is "
                            "ready.", plan=record.plan.name, code=code),
                          "catalog.equipment_pm", code=code)
    return _pm_page(equipment, pm_form=request.form.to_dict(), pm_errors=errors, status=status)
# --- durables --------------------------------------------------------------------------

DURABLE_FIELDS = ("code", "kind", "life_limit", "warn_at_pct", "used")


@bp.route("/durables")
@require(READ)
def durable_list() -> Any:
    kind = request.args.get("kind", "")
    stmt = select(Durable).options(selectinload(Durable.equipment)).order_by(Durable.code)
    if kind in DurableKind.codes():
        stmt = stmt.where(Durable.kind == kind)
    page = pager(stmt)
    return render_template("catalog/durables.html", durables=page.items,
                           next_url=page.next_url, prev_url=page.prev_url,
                           kind=kind if kind in DurableKind.codes() else "",
                           kinds=DurableKind.choices())


@bp.route("/durables/new", methods=["GET", "POST"])
@require(WRITE)
def durable_new() -> Any:
    form: dict[str, Any] = {"warn_at_pct": "90"}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        durable, errors, status = _submit(lambda: services.create_durable(
            db.session(), current_user, forms.load(s.DurableIn, _convert(
                request.form, {"code": "text", "kind": "text", "life_limit": "text",
                               "warn_at_pct": "text", "used": "text"}))))
        if durable is not None:
            return forms.done(_("Durable %(code)s created.", code=durable.code),
                              "catalog.durable_list")
    return render_template("catalog/durable_form.html", form=form, errors=errors,
                           fields=DURABLE_FIELDS, kinds=DurableKind.choices()), status


def _durables_page(equipment: Equipment, errors: dict[str, Any], status: int) -> Any:
    sess = db.session()
    mounted = services.mounted_durables(sess, [equipment.id])[equipment.id]
    spare = [(d.code, f"{d.code} — {DurableKind.word(d.kind)}, {d.left:,} / {d.life_limit:,}")
             for d in sess.scalars(select(Durable).where(Durable.equipment_id.is_(None))
                                   .order_by(Durable.kind, Durable.code))]
    return render_template("catalog/equipment_durables.html", equipment=equipment,
                           mounted=mounted, spare=spare, errors=errors,
                           history=services.durable_history(sess, tool=equipment)), status


@bp.route("/equipment/<code>/durables")
@require(READ)
def equipment_durables(code: str) -> Any:
    """The durables mounted on a tool, with their counts and mount history."""
    return _durables_page(services.get_equipment(db.session(), code), {}, 200)


@bp.route("/equipment/<code>/durables", methods=["POST"])
@require(WRITE)
def equipment_durables_change(code: str) -> Any:
    """Mount (or change) a durable on the tool, or take one off (`unmount`)."""
    sess = db.session()
    equipment = services.get_equipment(sess, code)
    unmount = request.form.get("unmount", "").strip()
    if unmount:
        durable = services.get_durable(sess, unmount)
        done, errors, status = _submit(lambda: services.unmount_durable(
            sess, current_user, durable))
        message = _("%(durable)s taken off %(code)s.", durable=unmount, code=code)
    else:
        done, errors, status = _submit(lambda: services.mount_durable(
            sess, current_user, equipment,
            forms.load(s.DurableMountIn, _convert(request.form, {"durable": "text"}))["durable"]))
        message = _("%(durable)s mounted on %(code)s.",
                    durable=request.form.get("durable", "").strip(), code=code)
    if done is not None:
        return forms.done(message, "catalog.equipment_durables", code=code)
    return _durables_page(equipment, errors, status)


# --- reason codes ----------------------------------------------------------------------

REASON_FIELDS = ("code", "kind", "description", "description_zh", "steps", "step_kinds",
                 "customer_category", "active")


def _reason_places(form: MultiDict[str, str]) -> dict[str, Any]:
    """The reason form's steps (codes separated by spaces or commas) and step kinds
    (checkboxes) in the API's shape."""
    return {"steps": [w for w in (form.get("steps") or "").replace(",", " ").split() if w],
            "step_kinds": form.getlist("step_kinds")}


def _reason_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The typed form as shown again: the step kinds as a list."""
    return {**form.to_dict(), "step_kinds": form.getlist("step_kinds")}


@bp.route("/reason-codes")
@require(READ)
def reason_list() -> Any:
    kind = request.args.get("kind", "")
    stmt = select(ReasonCode).order_by(ReasonCode.kind, ReasonCode.code)
    if kind in ReasonKind.codes():
        stmt = stmt.where(ReasonCode.kind == kind)
    page = pager(stmt)
    return render_template("catalog/reasons.html", reasons=page.items, next_url=page.next_url,
                           prev_url=page.prev_url, kind=kind if kind in ReasonKind.codes() else "",
                           kinds=ReasonKind.choices(),
                           kind_labels=ReasonKind.labels(), step_kind_labels=StepKind.labels())


@bp.route("/reason-codes/new", methods=["GET", "POST"])
@require(WRITE)
def reason_new() -> Any:
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = _reason_form(request.form)
        reason, errors, status = _submit(lambda: services.create_reason_code(
            db.session(), current_user, forms.load(s.ReasonCodeIn, {**_convert(
                request.form, {"code": "text", "kind": "text", "description": "text",
                               "description_zh": "text", "customer_category": "text"}),
                **_reason_places(request.form)})))
        if reason is not None:
            return forms.done(_("Reason code %(code)s created.", code=reason.code),
                              "catalog.reason_list")
    return render_template("catalog/reason_form.html", reason=None, form=form, errors=errors,
                           fields=REASON_FIELDS, step_kinds=StepKind.choices(),
                           kinds=ReasonKind.choices(),
                           categories=CustomerCategory.choices()), status


@bp.route("/reason-codes/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def reason_edit(code: str) -> Any:
    sess = db.session()
    reason = services.get_reason_code(sess, code)
    form: dict[str, Any] = {"description": reason.description,
                            "description_zh": reason.description_zh, "active": reason.active,
                            "steps": " ".join(reason.steps), "step_kinds": reason.step_kinds,
                            "customer_category": reason.customer_category}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = _reason_form(request.form)
        saved, errors, status = _submit(lambda: services.update_reason_code(
            sess, current_user, reason, forms.load(s.ReasonCodePatch, {**_convert(
                request.form, {"description": "keep", "description_zh": "keep",
                               "active": "bool", "customer_category": "text"}),
                **_reason_places(request.form)})))
        if saved is not None:
            return forms.done(_("Reason code %(code)s saved.", code=code), "catalog.reason_list")
    return render_template("catalog/reason_form.html", reason=reason, form=form, errors=errors,
                           fields=REASON_FIELDS, step_kinds=StepKind.choices(),
                           kinds=ReasonKind.choices(),
                           categories=CustomerCategory.choices()), status


# --- material lots ---------------------------------------------------------------------

MATERIAL_FIELDS = ("code", "material", "part_number", "description", "expires_at",
                   "thaw_minutes", "work_life_hours")


@bp.route("/material-lots")
@require(READ)
def material_list() -> Any:
    material = request.args.get("material", "").strip()
    stmt = select(MaterialLot).order_by(MaterialLot.code)
    if material:
        stmt = stmt.where(MaterialLot.material == material)
    page = pager(stmt)
    materials = [(code, str(MaterialType.word(code))) for code in db.session().scalars(
        select(MaterialLot.material).distinct().order_by(MaterialLot.material))]
    return render_template("catalog/materials.html", lots=page.items, next_url=page.next_url,
                           prev_url=page.prev_url, material=material, materials=materials)


@bp.route("/material-lots/new", methods=["GET", "POST"])
@require(WRITE)
def material_new() -> Any:
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        lot, errors, status = _submit(lambda: services.create_material_lot(
            db.session(), current_user, forms.load(s.MaterialLotIn, _convert(
                request.form, {"code": "text", "material": "text", "description": "text",
                               "expires_at": "dt", "part_number": "text",
                               "thaw_minutes": "text", "work_life_hours": "text"}))))
        if lot is not None:
            return forms.done(_("Material lot %(code)s created.", code=lot.code),
                              "catalog.material_list")
    return render_template("catalog/material_form.html", lot=None, form=form, errors=errors,
                           fields=MATERIAL_FIELDS), status


@bp.route("/material-lots/<code>/edit", methods=["GET", "POST"])
@require(WRITE)
def material_edit(code: str) -> Any:
    sess = db.session()
    lot = services.get_material_lot(sess, code)
    form: dict[str, Any] = {"description": lot.description,
                            "expires_at": to_local_input(lot.expires_at)}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        saved, errors, status = _submit(lambda: services.update_material_lot(
            sess, current_user, lot, forms.load(s.MaterialLotPatch, _convert(
                request.form, {"description": "keep", "expires_at": "dt"}))))
        if saved is not None:
            return forms.done(_("Material lot %(code)s saved.", code=code), "catalog.material_list")
    return render_template("catalog/material_form.html", lot=lot, form=form, errors=errors,
                           fields=MATERIAL_FIELDS), status
