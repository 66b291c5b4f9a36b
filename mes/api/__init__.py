"""JSON API /api/v1: the same services as the pages, described by OpenAPI."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from mes.api.registry import api_route

bp = Blueprint("api", __name__, url_prefix="/api/v1")

@api_route(bp, "/openapi.json", permission=None, tag="meta")
def openapi_document() -> Response:
    """The OpenAPI 3 description of this API."""
    from mes.api.openapi import build_spec

    # Built once per application: the operations and schemas do not change while it runs.
    doc = current_app.extensions.get("mes.openapi")
    if doc is None:
        doc = current_app.extensions["mes.openapi"] = build_spec(
            current_app.config["PLANT_NAME"] + " API")
    return jsonify(doc)


# Each module registers its endpoints on `bp` when imported.
from mes.api import (  # noqa: E402,F401
    catalog,
    changes,
    commonality,
    complaints,
    forecast,
    holds,
    labels,
    lots,
    maintenance,
    moisture,
    orders,
    packing,
    partners,
    portal,
    reports,
    shipping,
    spc,
    testdata,
    trace,
    webhooks,
)
