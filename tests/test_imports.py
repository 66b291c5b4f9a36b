"""Every module of mes/ imports on its own, in an interpreter that has loaded nothing of the
package: an import cycle that only works in create_app's order fails here."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mes

PACKAGE = Path(mes.__file__).parent


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, str]:
    """Every module of the package by dotted name, with its source."""
    return {_name(path): path.read_text(encoding="utf-8")
            for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = sorted(sources())

# Run by a fresh interpreter. The libraries the package imports are loaded first, then one
# child is forked per module: each child starts from an interpreter holding no module of the
# package, and none pays again for loading Flask and SQLAlchemy (a fresh interpreter per
# module takes minutes on a busy machine).
_ISOLATED = """
import importlib, json, os, sys, traceback
modules, libraries = json.loads(sys.stdin.read())
for library in libraries:
    try:
        importlib.import_module(library)
    except ImportError:
        pass  # an optional dependency; the module that needs it says so itself
assert not [m for m in sys.modules if m == "mes" or m.startswith("mes.")]
failures = {}
for module in modules:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            os._exit(1)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read().decode()
    _pid, status = os.waitpid(pid, 0)
    if status:
        failures[module] = output or f"exit status {status}"
print(json.dumps(failures))
"""


def _libraries(texts: dict[str, str]) -> list[str]:
    """The modules outside the package that the package's source imports."""
    found: set[str] = set()
    for text in texts.values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return sorted(n for n in found if n.split(".")[0] != "mes")


@pytest.fixture(scope="module")
def import_failures() -> dict[str, str]:
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    answer = subprocess.run(
        [sys.executable, "-c", _ISOLATED], cwd=PACKAGE.parent, capture_output=True, text=True,
        input=json.dumps([MODULES, _libraries(sources())]), timeout=600, check=True)
    return json.loads(answer.stdout)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_on_its_own(module, import_failures):
    assert module not in import_failures, import_failures.get(module)
