"""A failure-analysis attachment as an HTTP download (the pages and the API answer alike)."""

from __future__ import annotations

from typing import Any

from flask import Response


def attachment_response(found: Any) -> Response:
    """The file as a download; never rendered inline as something else (nosniff)."""
    from urllib.parse import quote

    resp = Response(found.content, mimetype=found.content_type)
    resp.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(found.filename)}")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
