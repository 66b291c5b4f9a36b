"""The rule of the house on imports, checked on the source of mes/:

- every module imports on its own, in an interpreter that has loaded nothing of the package
  (an import cycle that only works in create_app's order fails here);
- pages (`views` modules) are imported by the application factory only: a page never takes
  anything from another page, and a service, a model or the API never depends on a page;
- the JSON API (`mes.api`) is imported by the application factory and by itself only;
- services and models never import the web-form layer (`mes.web`).

What a page needs from another domain comes from that domain's services, schemas and read
models, from the shared vocabulary or from the web-form layer.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mes

PACKAGE = Path(mes.__file__).parent
# The application factory registers every blueprint, the pages' and the API's.
FACTORY = "mes"


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, str]:
    """Every module of the package by dotted name, with its source."""
    return {_name(path): path.read_text(encoding="utf-8")
            for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = sorted(sources())


# --- each module on its own --------------------------------------------------------------

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


# --- the import rule ---------------------------------------------------------------------

def _is_in(target: str, package: str) -> bool:
    return target == package or target.startswith(package + ".")


def _is_views(target: str) -> bool:
    return target.split(".")[-1] == "views"


def imports(module: str, text: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of `module`'s source, at any depth (inside
    functions too), relative ones resolved; `from a import b` also names a.b when that is a
    module of the package; importlib.import_module("...") with a literal counts too."""
    is_package = any(other.startswith(module + ".") for other in known)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level
                                          + (1 if is_package else 0)]
                base = ".".join([*parts, *([base] if base else [])])
            yield base, node.lineno
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    yield f"{base}.{alias.name}", node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def violations(texts: dict[str, str]) -> list[str]:
    """Every import in `texts` (module name -> source) that breaks the rule, in words."""
    known = set(texts)
    found = []
    for module, text in sorted(texts.items()):
        # A service module, or a module of a services package (mes.quality.services.holds).
        layer = "services" if "services" in module.split(".") else module.split(".")[-1]
        reported: set[int] = set()
        for target, line in imports(module, text, known):
            if target == module or not _is_in(target, "mes") or line in reported:
                continue
            where = f"{module} (line {line}) imports {target}"
            if _is_views(target) and module != FACTORY:
                found.append(f"{where}: pages are imported by the application factory only")
            elif (_is_in(target, "mes.api") and module != FACTORY
                  and not _is_in(module, "mes.api")):
                found.append(f"{where}: the API is imported by the application factory only")
            elif _is_in(target, "mes.web") and layer in ("services", "models"):
                found.append(f"{where}: services and models do not use the web-form layer")
            else:
                continue
            reported.add(line)
    return found


def test_every_import_keeps_to_the_rule_of_the_house():
    assert violations(sources()) == []


@pytest.mark.parametrize(("module", "text"), [
    # A page taking a helper from another domain's page.
    ("mes.trace.views", "from mes.quality.views import checked_match\n"),
    # The same, as `from package import module`.
    ("mes.trace.views", "from mes.quality import views\n"),
    # A page using the API's plumbing.
    ("mes.floor.views", "from mes.api.registry import paginate\n"),
    # An API module rendering through a page (the cycle api -> views -> api).
    ("mes.api.shipping", "from mes.shipping.views import render_coc\n"),
    # A service reaching up into a page, deferred into a function.
    ("mes.floor.services", "def f():\n    from mes.quality.views import x\n"),
    # A relative import of the API from a service.
    ("mes.quality.services", "from ..api import lots\n"),
    # By name, at run time.
    ("mes.floor.services", "import importlib\nimportlib.import_module('mes.floor.views')\n"),
    # A service using the web-form layer.
    ("mes.floor.services", "from mes.web.forms import attempt\n"),
    # The same from a module of a services package.
    ("mes.quality.services.holds", "from mes.web import forms\n"),
])
def test_the_rule_catches(module, text):
    known = {"mes", "mes.api", "mes.api.lots", "mes.quality.views", "mes.floor.views",
             "mes.web", "mes.web.forms"}
    assert len(violations({**dict.fromkeys(known, ""), module: text})) == 1


def test_the_rule_allows_the_factory_the_api_and_shared_modules():
    texts = {
        "mes": "def f():\n    from mes.api import bp\n    from mes.floor.views import bp\n",
        "mes.api": "from mes.api import lots\n",
        "mes.api.lots": "from mes.api.registry import api_route\nfrom mes.floor import services\n",
        "mes.trace.views": "from mes.quality.match_form import checked_match\n"
                           "from mes.web.forms import attempt\nfrom mes.quality import services\n",
        "mes.floor.views": "from . import services\n",
    }
    assert violations(texts) == []
