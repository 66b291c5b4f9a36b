"""Service modules depend on each other in one direction only: the imports of every module
of mes/ (read from the source, function-level imports included) form no cycle through a
service module, and service modules import the project's modules at the top, where the
dependency is declared, never inside a function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

MES = Path(__file__).resolve().parents[1] / "mes"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(MES.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in MES.rglob("*.py")}


def is_service(module: str) -> bool:
    """mes/<domain>/services*.py, and every module of a services package."""
    return any(part.startswith("services") for part in module.split(".")[1:])


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every import statement, with whether it sits in a function (imports seen only by
    the type checker are left out: they do not run)."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        yield from _imports(node, in_function or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))


def _targets(module: str, node: ast.AST) -> set[str]:
    """The project modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if not str(MODULES[module]).endswith("__init__.py"):
                package = package[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        # `from package import name` loads the module package.name when there is one.
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names]
    return {name for name in names if name in MODULES}


def import_graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[str, int]]]]:
    """Module -> the project modules it imports; and, per module, its function-level
    imports of project modules (target, line)."""
    graph: dict[str, set[str]] = {}
    deferred: dict[str, list[tuple[str, int]]] = {}
    for module, path in MODULES.items():
        graph[module] = set()
        for node, in_function in _imports(ast.parse(path.read_text(), str(path))):
            targets = _targets(module, node) - {module}
            graph[module] |= targets
            if in_function:
                deferred.setdefault(module, []).extend(
                    (target, node.lineno) for target in sorted(targets))
    return graph, deferred


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's cycles, as strongly connected components of more than one module
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checks_see_a_cycle_and_a_deferred_import():
    graph = {"mes.a.services": {"mes.b.views"}, "mes.b.views": {"mes.b.services"},
             "mes.b.services": {"mes.a.services"}, "mes.c.services": {"mes.a.services"}}
    assert strongly_connected(graph) == [["mes.a.services", "mes.b.services", "mes.b.views"]]
    tree = ast.parse("import mes.db\n\ndef f():\n    from mes.floor import services\n")
    assert [(in_function, _targets("mes.x.services", node)) for node, in_function
            in _imports(tree)] == [(False, {"mes.db"}), (True, {"mes.floor.services"})]
    assert is_service("mes.quality.services.holds") and is_service("mes.floor.services")
    assert not is_service("mes.floor.views")


def test_no_import_cycle_runs_through_a_service_module():
    graph, _ = import_graph()
    assert "mes.floor.services" in graph["mes.quality.services.holds"]
    cycles = [cycle for cycle in strongly_connected(graph)
              if any(is_service(module) for module in cycle)]
    assert cycles == []


def test_service_modules_import_the_project_at_the_top_only():
    _, deferred = import_graph()
    assert {module: found for module, found in deferred.items() if is_service(module)} == {}
