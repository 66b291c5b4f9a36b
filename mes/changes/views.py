"""Change control pages: engineers record a change to products, follow its requalification
on the new BOM revision and send its PCNs; plant roles read them (MASTER_READ)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from mes import db
from mes.auth.permissions import Permission, has_permission, require
from mes.changes import schemas as s
from mes.changes import services
from mes.changes.reference import CHANGE_STRESSES
from mes.vocabulary import ChangeKind, PcnStatus
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("changes", __name__, url_prefix="/changes")

FIELDS = ("title", "kind", "products", "bom_revision", "items", "description")


def _items(text: str) -> list[dict[str, str]] | None:
    """`STEP | material` per line; no line: the items are found from the revisions."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        step, _sep, material = line.partition("|")
        rows.append({"step": step.strip(), "material": material.strip()})
    return rows or None


@bp.route("/")
@require(Permission.MASTER_READ)
def index() -> Any:
    sess = db.session()
    page = pager(services.change_query())
    shown = [services.present(sess, change) for change in page.items]
    return render_template("changes/index.html", rows=shown, page=page,
                           kind_labels=ChangeKind.labels(),
                           can_write=has_permission(current_user, Permission.MASTER_WRITE))


@bp.route("/new", methods=["GET", "POST"])
@require(Permission.MASTER_WRITE)
def new() -> Any:
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        sess = db.session()

        def action() -> Any:
            data = forms.load(s.ChangeIn, {
                "title": forms.text(request.form, "title"),
                "kind": forms.text(request.form, "kind"),
                "products": [p.strip() for p in forms.text(request.form, "products")
                             .replace(",", " ").split() if p.strip()],
                "bom_revision": forms.text(request.form, "bom_revision") or None,
                "items": _items(request.form.get("items", "")),
                "description": forms.text(request.form, "description")})
            return services.create_change(sess, current_user, data)

        change, refused = forms.attempt(action)
        if change is not None:
            return forms.done(_("Change %(id)s recorded; it needs %(stresses)s on the new "
                                "revision.", id=change.id,
                                stresses=", ".join(change.required_stresses)),
                              "changes.detail", change_id=change.id)
        assert refused is not None
        errors = {**refused.fields, **({"_schema": [refused.message]}
                                       if not refused.fields else {})}
        status = refused.status
    return render_template("changes/form.html", form=form, errors=errors, fields=FIELDS,
                           kinds=ChangeKind.choices(), table=CHANGE_STRESSES,
                           kind_labels=ChangeKind.labels()), status


def _detail(change_id: int, errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    sess = db.session()
    shown = services.present(sess, services.get_change(sess, change_id))
    return render_template("changes/detail.html", shown=shown, change=shown.change,
                           errors=errors or {}, kind_labels=ChangeKind.labels(),
                           pcn_labels=PcnStatus.labels(),
                           minimum=services.notice_days_minimum(),
                           can_write=has_permission(current_user, Permission.MASTER_WRITE)
                           ), status


@bp.route("/<int:change_id>")
@require(Permission.MASTER_READ)
def detail(change_id: int) -> Any:
    return _detail(change_id)


@bp.route("/<int:change_id>/pcns", methods=["POST"])
@require(Permission.MASTER_WRITE)
def send_pcns(change_id: int) -> Any:
    sess = db.session()
    change = services.get_change(sess, change_id)

    def action() -> Any:
        days = forms.text(request.form, "notice_days")
        data = forms.load(s.PcnsIn, {"notice_days": days or None})
        return services.send_pcns(sess, current_user, change, data.get("notice_days"))

    pcns, refused = forms.attempt(action)
    if pcns is not None:
        return forms.done(_("%(n)s PCN(s) sent: %(customers)s.", n=len(pcns),
                            customers=", ".join(p.customer.code for p in pcns)),
                          "changes.detail", change_id=change_id)
    assert refused is not None
    return _detail(change_id, {**refused.fields, "_schema": [refused.message]},
                   refused.status)
