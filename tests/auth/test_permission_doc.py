"""docs/permissions.md is generated from the code and must not go stale."""

from __future__ import annotations

from pathlib import Path

from mes.auth.matrix import permission_matrix
from mes.auth.permissions import ROLE_PERMISSIONS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_permission_doc_matches_the_code(app):
    assert DOC.read_text() == permission_matrix(app), (
        "docs/permissions.md is stale: regenerate it with `mes permissions > "
        "docs/permissions.md`")


def test_permission_doc_lists_every_endpoint_once_per_method(app):
    text = permission_matrix(app)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert f"| {method} | `{rule.rule}` |" in text


def test_permission_doc_marks_roles_by_the_role_table(app):
    row = next(line for line in permission_matrix(app).splitlines()
               if line.startswith("| POST | `/api/v1/lots` |"))
    cells = [c.strip() for c in row.strip("|").split("|")][3:]
    expected = ["yes" if Permission.LOT_RECEIVE in ROLE_PERMISSIONS[r] else "-" for r in Role]
    assert cells == expected
    assert expected.count("yes") == 2  # planner and admin


def test_cli_prints_the_permission_matrix(app):
    result = app.test_cli_runner().invoke(args=["permissions"])
    assert result.exit_code == 0
    assert result.output == permission_matrix(app)
