"""The permission matrix as a document: every endpoint, what it requires, and which roles
may call it — derived from the application, never written by hand (docs/permissions.md)."""

from __future__ import annotations

from flask import Flask

from mes.auth.permissions import PUBLIC, ROLE_PERMISSIONS, Role

IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})


def permission_matrix(app: Flask) -> str:
    """Markdown: one row per endpoint and method, one column per role."""
    roles = list(Role)
    lines = [
        "# Permission matrix",
        "",
        "Generated from the application by `mes permissions` (`mes permissions > "
        "docs/permissions.md`); a test fails when this file is stale. `yes` = allowed, "
        "`-` = 403 (anonymous callers get 401 on the API and the login page elsewhere). "
        "Customer users are further limited to their own customer's objects (404 otherwise), "
        "and read them without staff names, internal comments or hold match criteria (a "
        "lot's history and traces in their own customer schemas; docs/decisions.md, "
        "\"Customer portal\").",
        "",
        "| method | path | requires | " + " | ".join(r.value for r in roles) + " |",
        "|---|---|---|" + "---|" * len(roles),
    ]
    rows = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        declared = getattr(app.view_functions[rule.endpoint], "mes_permissions", None)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            if declared == PUBLIC:
                needs, allowed = "public", ["yes"] * len(roles)
            else:
                perms = tuple(declared or ())
                needs = ", ".join(p.value for p in perms) or "login"
                allowed = ["yes" if set(perms) <= ROLE_PERMISSIONS[role] else "-"
                           for role in roles]
            rows.append(f"| {method} | `{rule.rule}` | {needs} | " + " | ".join(allowed) + " |")
    return "\n".join(lines + sorted(rows)) + "\n"
