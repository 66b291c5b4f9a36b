"""The type checker's escape hatch is used sparingly: every `type: ignore` in mes/ names the
error it silences and says why (mypy itself, `make typecheck`, reports ignores no longer
needed)."""

from __future__ import annotations

import re
from pathlib import Path

import mes

# `# type: ignore[code]` followed by a comment giving the reason.
EXPLAINED = re.compile(r"# type: ignore\[[a-z-]+(, [a-z-]+)*\]  # \S")


def unexplained_ignores(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "type: ignore" in line and not EXPLAINED.search(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_every_type_ignore_names_its_error_and_its_reason():
    assert unexplained_ignores(Path(mes.__file__).parent) == []


def test_an_ignore_without_a_reason_is_found(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = f()  # type: ignore[no-untyped-call]\n"
                                  "y = g()  # type: ignore\n"
                                  "z = h()  # type: ignore[misc]  # h is generated\n")
    assert unexplained_ignores(package) == [
        "pkg/a.py:1: x = f()  # type: ignore[no-untyped-call]",
        "pkg/a.py:2: y = g()  # type: ignore"]
