"""Test-floor pages: STDF upload and bin summary forms, the test run page, PAT per product,
step and test, and the SBA yield trend per product and step.

The forms hand their data to the same services (and input schemas) as the API, so a page
accepts and refuses exactly what the API does; a refused form is shown again with the
service's message and the API's status (409 or 422) and the request rolls back.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from mes import db
from mes.auth.permissions import Permission, has_permission, require
from mes.catalog import services as catalog
from mes.catalog.models import Product, ReasonCode
from mes.catalog.services import current_route, route_step_infos
from mes.errors import InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.i18n import localized
from mes.testfloor import charts, programs, services
from mes.testfloor import pat as pat_screen
from mes.testfloor import schemas as s
from mes.testfloor.models import PatLimitSet, TestParam, TestRun
from mes.vocabulary import BinKind, PatMode, ReasonKind, SbaStatus, StepKind, TestRunSource
from mes.web import forms

bp = Blueprint("testfloor", __name__)

# The bin summary form offers at least this many empty rows.
BIN_ROWS = 8
MAX_BIN_ROWS = 200
# The SBA trend shows the latest run of this many lots.
TREND_LOTS = 30

@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"sba_labels": SbaStatus.labels(), "pat_mode_labels": PatMode.labels(),
            "bin_kind_labels": BinKind.labels()}


def _test_steps(steps: Any) -> list[tuple[str, str]]:
    return [(st.code, f"{st.code} · {localized(st.name, st.name_zh)}") for st in steps
            if st.kind == StepKind.TEST]


def _product_test_steps(product: Product) -> list[tuple[str, str]]:
    sess = db.session()
    route = current_route(sess, product.route_code)
    return _test_steps(route_step_infos(sess, route) if route is not None else ())


# --- test floor index ------------------------------------------------------------------

@bp.route("/test-floor")
@require(Permission.TEST_READ)
def index() -> Any:
    sess = db.session()
    products = list(sess.scalars(select(Product).order_by(Product.code)))
    runs = list(sess.scalars(select(TestRun).order_by(TestRun.id.desc()).limit(20)))
    return render_template("testfloor/index.html", runs=runs, products=[
        (p, _product_test_steps(p)) for p in products])


# --- STDF upload -----------------------------------------------------------------------

def _upload_page(lot: Lot, *, step: str | None, refused: forms.Refused | None = None) -> Any:
    steps = _test_steps(floor.route_steps(lot))
    return render_template(
        "testfloor/upload.html", lot=lot, steps=steps, step=step or lot.step_code,
        refused=refused, errors=refused.fields if refused else {}), \
        refused.status if refused else 200


@bp.route("/lots/<lot_no>/stdf/upload", methods=["GET", "POST"])
@require(Permission.TEST_WRITE)
def upload(lot_no: str) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    if request.method == "GET":
        return _upload_page(lot, step=None)
    step = (request.form.get("step") or "").strip() or None

    def action() -> TestRun:
        args = forms.load(s.StdfQuery, {"step": step})
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            message = _("Choose the STDF file to upload.")
            raise InvalidInput(message, fields={"file": [message]})
        return services.import_stdf(sess, current_user, lot, upload.read(), step=args["step"])

    run, refused = forms.attempt(action)
    if run is not None:
        message = _("STDF file imported as test run %(run)d of %(lot)s at %(step)s: "
                    "%(units)d units, final yield %(yield)s %%.", run=run.id, lot=lot.lot_no,
                    step=run.step_code, units=run.units, **{"yield": run.final_yield})
        return forms.done(message, "testfloor.run", run_id=run.id)
    return _upload_page(lot, step=step, refused=refused)


# --- bin summary -----------------------------------------------------------------------

def _typed_bins(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    # `rows` is the form's own hidden count of rows; anything else than a number in range
    # means the default.
    try:
        count = int(form.get("rows") or 0)
    except ValueError:
        count = 0
    count = min(count, MAX_BIN_ROWS) if count > 0 else BIN_ROWS
    return [{"bin": (form.get(f"bin_{i}") or "").strip(),
             "count": (form.get(f"count_{i}") or "").strip(),
             "pass": bool(form.get(f"pass_{i}"))} for i in range(count)]


def _bin_rows(rows: list[dict[str, Any]], extra: int = 0) -> list[dict[str, Any]]:
    count = min(max(len(rows), BIN_ROWS) + extra, MAX_BIN_ROWS)
    return rows + [{"bin": "", "count": "", "pass": False}] * (count - len(rows))


def _bins_data(rows: list[dict[str, Any]], step: str | None) -> dict[str, Any]:
    """The rows in the API's shape (empty rows skipped), validated by BinsIn; messages
    about a bin name the row it was typed in."""
    filled = [(number, row) for number, row in enumerate(rows, start=1)
              if row["bin"] or row["count"]]
    data = {"step": step, "bins": [row for _number, row in filled]}
    try:
        return forms.load(s.BinsIn, data)
    except ValidationError as err:
        messages = err.normalized_messages()
        bins = messages.get("bins") if isinstance(messages, dict) else None
        if isinstance(bins, dict):
            assert isinstance(messages, dict)
            messages["bins"] = [
                _("Row %(row)d: %(message)s", row=filled[index][0], message=msg)
                if isinstance(index, int) and index < len(filled) else msg
                for index, item in bins.items() for msg in forms.flatten(item)]
        raise ValidationError(messages) from None


@bp.route("/lots/<lot_no>/bins/new", methods=["GET", "POST"])
@require(Permission.TEST_WRITE)
def bins(lot_no: str) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    steps = _test_steps(floor.route_steps(lot))
    if request.method == "GET":
        return render_template("testfloor/bins.html", lot=lot, steps=steps,
                               step=lot.step_code, rows=_bin_rows([]), refused=None,
                               errors={})
    step = (request.form.get("step") or "").strip() or None
    typed = _typed_bins(request.form)
    if request.form.get("action") == "add_rows":
        return render_template("testfloor/bins.html", lot=lot, steps=steps, step=step,
                               rows=_bin_rows(typed, BIN_ROWS), refused=None, errors={})
    run, refused = forms.attempt(lambda: services.record_bins(
        sess, current_user, lot, **_bins_data(typed, step)))
    if run is not None:
        return forms.done(_("Bin summary recorded as test run %(run)d of %(lot)s: %(units)d "
                            "units, yield %(yield)s %%.", run=run.id, lot=lot.lot_no,
                            units=run.units, **{"yield": run.final_yield}),
                          "testfloor.run", run_id=run.id)
    assert refused is not None
    return render_template("testfloor/bins.html", lot=lot, steps=steps, step=step,
                           rows=_bin_rows(typed), refused=refused,
                           errors=refused.fields), refused.status


# --- test runs -------------------------------------------------------------------------

def _bin_table(run: TestRun) -> list[dict[str, Any]]:
    failing = set(run.failing_bins or [])
    rows = [{"bin": int(b), "count": n, "final": (run.final_bins or {}).get(b, 0),
             "failing": int(b) in failing} for b, n in (run.hard_bins or {}).items()]
    return sorted(rows, key=lambda r: r["bin"])


def run_charts(run: TestRun) -> dict[str, str]:
    """The run page's pictures: the failing bins' Pareto and first-pass vs final yield."""
    failing = set(run.failing_bins or [])
    final = run.final_bins or {}
    pareto = [(_("Bin %(bin)s", bin=b), float(n)) for b, n in final.items()
              if int(b) in failing and n]
    return {
        "pareto": charts.bar_chart(pareto, title=_("Failing bins by units (final result)"),
                                   empty=_("No failing units.")),
        "yields": charts.bar_chart(
            [(_("First pass"), run.first_pass_yield), (_("Final"), run.final_yield)],
            title=_("First-pass and final yield"), empty=_("No yield."), unit=" %",
            sort=False, css="bars yields"),
    }


@bp.route("/test-runs/<int:run_id>")
@require(Permission.TEST_READ)
def run(run_id: int) -> Any:
    sess = db.session()
    test_run = services.get_test_run(sess, run_id)
    product = sess.get(Product, test_run.product_id)
    pat_tests = sorted(((int(num), entry) for num, entry in
                        (test_run.pat.get("per_test") or {}).items()),
                       key=lambda item: (-item[1].get("failures", 0), item[0]))
    hold = (test_run.sba or {}).get("hold")
    hold_url = None
    if hold is not None:
        hold_url = (url_for("quality.hold_detail", hold_id=hold)
                    if "quality.hold_detail" in current_app.view_functions
                    else url_for("floor.lot_detail", lot_no=test_run.lot.lot_no))
    return render_template("testfloor/run.html", run=test_run, product=product,
                           hold_url=hold_url,
                           bins=_bin_table(test_run), soft_bins=sorted(
                               ((int(b), n) for b, n in (test_run.soft_bins or {}).items())),
                           charts=run_charts(test_run), pat_tests=pat_tests,
                           pat_min_parts=services.PAT_MIN_PARTS, sba=test_run.sba or {},
                           can_void=has_permission(current_user, Permission.TEST_VOID))


@bp.route("/lots/<lot_no>/test-runs/view")
@require(Permission.TEST_READ)
def lot_runs(lot_no: str) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    runs = list(sess.scalars(services.lot_runs_query(lot)))
    return render_template("testfloor/lot_runs.html", lot=lot, runs=runs,
                           can_write=has_permission(current_user, Permission.TEST_WRITE))


# --- PAT -------------------------------------------------------------------------------

def _recent_params(product: Product, step: str, test_num: int) -> list[TestParam]:
    """The test's stored values in the latest STDF run of each of the product's latest
    lots at the step, newest first (the runs static PAT pools)."""
    sess = db.session()
    latest = (select(func.max(TestRun.id)).where(TestRun.product_id == product.id,
                                                 TestRun.step_code == step,
                                                 TestRun.source == TestRunSource.STDF,
                                                 programs.live())
              .group_by(TestRun.lot_id))
    return list(sess.scalars(
        select(TestParam).where(TestParam.run_id.in_(latest), TestParam.test_num == test_num)
        .order_by(TestParam.run_id.desc()).limit(services.PAT_HISTORY_LOTS)))


def _step_of(product: Product, step: str) -> str:
    if step not in {code for code, _label in _product_test_steps(product)}:
        raise NotFound(_("%(step)s is not a test step of product %(product)s.", step=step,
                         product=product.code))
    return step


@bp.route("/products/<code>/pat")
@require(Permission.TEST_READ)
def pat_index(code: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    tests = sess.execute(
        select(TestRun.step_code, TestParam.test_num, func.max(TestParam.name),
               func.count(func.distinct(TestRun.lot_id)))
        .join(TestRun, TestRun.id == TestParam.run_id)
        .where(TestRun.product_id == product.id, programs.live())
        .group_by(TestRun.step_code, TestParam.test_num)
        .order_by(TestRun.step_code, TestParam.test_num)).all()
    sets = {(ls.step_code, ls.test_num): ls for ls in sess.scalars(
        services.pat_limit_query(product, {"active": True}))}
    return render_template(
        "testfloor/pat_index.html", product=product, steps=_product_test_steps(product),
        tests=[{"step": step, "test_num": num, "name": name, "lots": lots,
                "set": sets.get((step, num))} for step, num, name, lots in tests],
        can_compute=has_permission(current_user, Permission.LIMITS_WRITE))


def _pat_lines(param: TestParam | None, limit_set: PatLimitSet | None,
               dynamic: dict[str, Any] | None) -> list[charts.Line]:
    lines = []
    if param is not None:
        for value, label in ((param.spec_lo, _("spec low")), (param.spec_hi, _("spec high")),
                             (param.lo, _("test low")), (param.hi, _("test high"))):
            if value is not None:
                lines.append(charts.Line(value, label, "spec"))
    if limit_set is not None and not limit_set.flagged:
        for value, label in ((limit_set.lo, _("static PAT low")),
                             (limit_set.hi, _("static PAT high"))):
            if value is not None:
                lines.append(charts.Line(value, label, "pat-static"))
    if dynamic and not dynamic.get("flagged"):
        for value, label in ((dynamic.get("lo"), _("dynamic PAT low")),
                             (dynamic.get("hi"), _("dynamic PAT high"))):
            if value is not None:
                lines.append(charts.Line(value, label, "pat-dynamic"))
    return lines


@bp.route("/products/<code>/pat/<step>/<int:test_num>")
@require(Permission.TEST_READ)
def pat(code: str, step: str, test_num: int) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    _step_of(product, step)
    params = _recent_params(product, step, test_num)
    values = [v for param in params for v in services.passing_values(param)]
    newest = params[0] if params else None
    latest_run = sess.get(TestRun, newest.run_id) if newest is not None else None
    dynamic = None
    if latest_run is not None:
        dynamic = ((latest_run.pat.get("per_test") or {}).get(str(test_num)) or {}) \
            .get("dynamic")
    sets = list(sess.scalars(services.pat_limit_query(product, {"step": step,
                                                                "test": test_num})))
    in_force = services.active_static_limits(sess, product.id, step).get(test_num)
    name = newest.name if newest is not None else (sets[0].test_name if sets else None)
    units = newest.units if newest is not None else (sets[0].units if sets else None)
    chart = charts.histogram(
        values, title=_("Passing parts of test %(num)d over the latest %(lots)d lots",
                        num=test_num, lots=len(params)),
        empty=_("No stored values for this test."),
        lines=_pat_lines(newest, in_force, dynamic), unit=units or "")
    return render_template(
        "testfloor/pat.html", product=product, step=step, test_num=test_num, name=name,
        units=units, chart=chart, values=len(values), lots=len(params), newest=newest,
        latest_run=latest_run, dynamic=dynamic, in_force=in_force, sets=sets,
        can_compute=has_permission(current_user, Permission.LIMITS_WRITE),
        min_lots=services.PAT_MIN_LOTS, min_parts=services.PAT_MIN_PARTS)


@bp.route("/products/<code>/pat/<step>/compute", methods=["POST"])
@require(Permission.LIMITS_WRITE)
def pat_compute(code: str, step: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    test = (request.form.get("test") or "").strip()
    tests = [int(test)] if test.isdigit() else None
    done, refused = forms.attempt(lambda: services.compute_pat_limits(
        sess, current_user, product, step=step, tests=tests))
    if done is not None:
        message = _("Static PAT limits computed for %(count)d test(s) of %(product)s at "
                    "%(step)s.", count=len(done.limit_sets), product=product.code, step=step)
        if done.skipped:
            message += " " + _("Left out for want of history: %(tests)s.", tests=", ".join(
                str(item["test_num"]) for item in done.skipped))
        if tests:
            return forms.done(message, "testfloor.pat", code=product.code, step=step,
                              test_num=tests[0])
        return forms.done(message, "testfloor.pat_index", code=product.code)
    assert refused is not None
    return render_template("testfloor/refused.html", refused=refused, product=product,
                           back=request.referrer or url_for("testfloor.pat_index",
                                                            code=product.code)), \
        refused.status


# --- SBA -------------------------------------------------------------------------------

@bp.route("/products/<code>/sba/<step>")
@require(Permission.TEST_READ)
def sba(code: str, step: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    _step_of(product, step)
    latest = (select(func.max(TestRun.id)).where(TestRun.product_id == product.id,
                                                 TestRun.step_code == step, programs.live())
              .group_by(TestRun.lot_id))
    runs = list(reversed(list(sess.scalars(
        select(TestRun).where(TestRun.id.in_(latest)).order_by(TestRun.id.desc())
        .limit(TREND_LOTS)))))
    verdict = (runs[-1].sba or {}) if runs else {}
    limits = verdict.get("yield") or {}
    lines = [charts.Line(limits[key], label, kind) for key, label, kind in
             (("syl1", "SYL1", "syl1"), ("syl2", "SYL2", "syl2"))
             if limits.get(key) is not None]
    chart = charts.line_chart(
        [(r.lot.lot_no, r.final_yield) for r in runs],
        title=_("Final yield of the latest lots of %(product)s at %(step)s",
                product=product.code, step=step),
        empty=_("No test runs yet."), lines=lines, unit=" %")
    return render_template("testfloor/sba.html", product=product, step=step,
                           table_runs=runs[::-1],
                           chart=chart, verdict=verdict, limits=limits,
                           min_lots=services.SBA_MIN_LOTS)



# --- test programs, bin definitions, PAT tests -----------------------------------------

# The bin definition form offers this many empty rows beyond the defined bins.
BIN_DEF_ROWS = 6
# The latest limit set versions a step shows on the test programs page.
_LIMIT_SET_ROWS = 10


def _reject_reasons() -> list[tuple[str, str]]:
    return [(r.code, f"{r.code} · {localized(r.description, r.description_zh)}")
            for r in db.session().scalars(
                select(ReasonCode).where(ReasonCode.kind == ReasonKind.REJECT,
                                         ReasonCode.active.is_(True))
                .order_by(ReasonCode.code))]


def _bin_def_rows(setup: Any) -> list[dict[str, Any]]:
    return [{"bin": b.bin, "kind": b.kind, "pass": b.passing, "name": b.name,
             "reason": b.reason.code if b.reason is not None else "", "sba": b.sba,
             "pat": b.pat} for b in setup.bins]


def _programs_page(product: Product, *, refused: forms.Refused | None = None,
                   form: dict[str, Any] | None = None, section: str | None = None) -> Any:
    sess = db.session()
    steps = _product_test_steps(product)
    history = list(sess.scalars(programs.program_query(product)))
    per_step = []
    for code, label in steps:
        setup = programs.setup_of(sess, product, code)
        per_step.append({
            "code": code, "label": label,
            "programs": [p for p in history if p.step_code == code],
            "setup": setup,
            "limit_sets": list(sess.scalars(pat_screen.version_query(product, code)
                                            .limit(_LIMIT_SET_ROWS))),
            "in_force": pat_screen.limits_in_force(sess, product.id, code).label,
        })
    return render_template(
        "testfloor/programs.html", product=product, steps=steps, per_step=per_step,
        refused=refused, form=form or {}, section=section,
        errors=refused.fields if refused else {},
        can_write=has_permission(current_user, Permission.PROGRAM_WRITE),
        can_compute=has_permission(current_user, Permission.LIMITS_WRITE)), \
        refused.status if refused else 200


@bp.route("/products/<code>/test-programs/view")
@require(Permission.TEST_READ)
def programs_page(code: str) -> Any:
    product = catalog.get_product(db.session(), code)
    return _programs_page(product)


@bp.route("/products/<code>/test-programs/new", methods=["POST"])
@require(Permission.PROGRAM_WRITE)
def program_new(code: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    typed = {name: forms.text(request.form, name) for name in (
        "step", "job_name", "job_rev", "temperature_c", "temperature_tolerance_c",
        "part_type", "pat_limit_set", "pat_limit_set_version")}
    data = {key: value for key, value in typed.items() if value != ""}

    def action() -> Any:
        return programs.release_program(sess, current_user, product,
                                        **forms.load(s.TestProgramIn, data))

    program, refused = forms.attempt(action)
    if program is not None:
        return forms.done(_("%(job)s revision %(rev)s released for %(product)s at %(step)s.",
                            job=program.job_name, rev=program.job_rev, product=product.code,
                            step=program.step_code), "testfloor.programs_page",
                          code=product.code)
    return _programs_page(product, refused=refused, form=typed, section="program")


@bp.route("/products/<code>/pat-limit-sets/<step>/compute", methods=["POST"])
@require(Permission.LIMITS_WRITE)
def pat_limit_set_compute(code: str, step: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    typed = {"step": step, "name": forms.text(request.form, "name")}
    data = {key: value for key, value in typed.items() if value != ""}

    def action() -> Any:
        return services.compute_pat_limits(sess, current_user, product,
                                           **forms.load(s.PatVersionIn, data))

    made, refused = forms.attempt(action)
    if made is not None:
        assert made.version is not None
        message = _("PAT limit set %(name)s version %(version)d computed for %(product)s at "
                    "%(step)s (%(count)d test(s)).", name=made.version.name,
                    version=made.version.version, product=product.code, step=step,
                    count=len(made.limit_sets))
        if made.skipped:
            message += " " + _("Left out for want of history: %(tests)s.", tests=", ".join(
                str(item["test_num"]) for item in made.skipped))
        return forms.done(message, "testfloor.programs_page", code=product.code)
    return _programs_page(product, refused=refused, form=typed, section="limit_set")


def _typed_bin_defs(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    try:
        count = int(form.get("rows") or 0)
    except ValueError:
        count = 0
    count = min(count, MAX_BIN_ROWS) if count > 0 else BIN_DEF_ROWS
    return [{"bin": forms.text(form, f"bin_{i}"), "kind": forms.text(form, f"kind_{i}"),
             "pass": bool(form.get(f"pass_{i}")), "name": forms.text(form, f"name_{i}"),
             "reason": forms.text(form, f"reason_{i}"), "sba": bool(form.get(f"sba_{i}")),
             "pat": form.get("pat_row") == str(i)} for i in range(count)]


def _bins_form(product: Product, step: str, rows: list[dict[str, Any]],
               limit: Any, refused: forms.Refused | None = None) -> Any:
    rows = rows + [{"bin": "", "kind": "hard", "pass": False, "name": "", "reason": "",
                    "sba": False, "pat": False}] * BIN_DEF_ROWS
    return render_template(
        "testfloor/bin_defs.html", product=product, step=step, rows=rows[:MAX_BIN_ROWS],
        limit=limit, reasons=_reject_reasons(), kinds=BinKind.choices(), refused=refused,
        errors=refused.fields if refused else {}), refused.status if refused else 200


@bp.route("/products/<code>/bins/<step>/edit", methods=["GET", "POST"])
@require(Permission.PROGRAM_WRITE)
def bin_defs(code: str, step: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    _step_of(product, step)
    if request.method == "GET":
        setup = programs.setup_of(sess, product, step)
        return _bins_form(product, step, _bin_def_rows(setup), setup.pat_fallout_limit_pct)
    typed = _typed_bin_defs(request.form)
    filled = [row for row in typed if row["bin"] or row["name"]]
    limit = forms.text(request.form, "pat_fallout_limit_pct")
    data: dict[str, Any] = {
        "step": step, "bins": [{**row, "reason": row["reason"] or None} for row in filled]}
    if limit:
        data["pat_fallout_limit_pct"] = limit
    saved, refused = forms.attempt(lambda: programs.set_bins(
        sess, current_user, product, **forms.load(s.BinDefsIn, data)))
    if saved is not None:
        return forms.done(_("Bins of %(product)s at %(step)s saved: %(count)d bin(s).",
                            product=product.code, step=step, count=len(saved.bins)),
                          "testfloor.programs_page", code=product.code)
    return _bins_form(product, step, filled, limit, refused)


@bp.route("/products/<code>/pat-tests/<step>", methods=["POST"])
@require(Permission.PROGRAM_WRITE)
def pat_tests_set(code: str, step: str) -> Any:
    sess = db.session()
    product = catalog.get_product(sess, code)
    _step_of(product, step)
    typed = forms.text(request.form, "tests")
    numbers = [part for part in typed.replace(",", " ").split() if part]

    def action() -> Any:
        return programs.set_pat_tests(sess, current_user, product, **forms.load(
            s.PatTestsIn, {"step": step, "tests": numbers}))

    chosen, refused = forms.attempt(action)
    if chosen is not None:
        return forms.done(_("PAT tests of %(product)s at %(step)s: %(tests)s.",
                            product=product.code, step=step,
                            tests=", ".join(map(str, chosen.pat_tests or [])) or _("none")),
                          "testfloor.programs_page", code=product.code)
    return _programs_page(product, refused=refused, form={"tests": typed, "step": step},
                          section="pat_tests")


@bp.route("/test-runs/<int:run_id>/void", methods=["POST"])
@require(Permission.TEST_VOID)
def run_void(run_id: int) -> Any:
    sess = db.session()
    test_run = services.get_test_run(sess, run_id)
    reason = forms.text(request.form, "reason")
    done, refused = forms.attempt(lambda: programs.void_run(
        sess, current_user, test_run, reason=forms.load(s.VoidIn, {"reason": reason})["reason"]))
    if done is not None:
        return forms.done(_("Test run %(run)d voided.", run=run_id), "testfloor.run",
                          run_id=run_id)
    assert refused is not None
    return render_template("testfloor/refused.html", refused=refused, product=None,
                           back=url_for("testfloor.run", run_id=run_id)), refused.status
