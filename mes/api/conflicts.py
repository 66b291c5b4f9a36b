"""The 409 codes an endpoint can answer, read from the code it runs.

An API handler's documented conflicts are not written by hand: they are every Conflict its
code constructs, following every function of the `mes` package it names through a module
or a class (called or passed on, at any depth, including lifecycle-signal receivers), plus
the database races any write can lose (mes.errors.translate_db_error).

So a Conflict names its code where it is constructed, as an `ErrorCode` member or picked
from a module-level table of them; a code computed otherwise cannot be read and is refused
here (ConflictsUnreadable), so the OpenAPI document cannot silently under-list. A method
called on an object is not followed, so no method constructs a Conflict (a test checks).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from functools import cache
from types import FunctionType, MethodType, ModuleType
from typing import Any

from blinker import Signal

from mes.errors import Conflict, DomainError, ErrorCode, translate_db_error

PACKAGE = "mes"
# CPython 3.11's parser is not safe in two threads at once ("AST constructor recursion depth
# mismatch"): the first requests a threaded server answers may read their conflicts together.
_PARSING = threading.Lock()


class ConflictsUnreadable(Exception):
    """A Conflict whose code is not an ErrorCode member named where it is constructed."""


def endpoint_conflicts(handler: Callable[..., Any], writes: bool) -> tuple[ErrorCode, ...]:
    """The 409 codes of an endpoint whose handler is `handler`, in ErrorCode's order.
    `writes`: the endpoint changes data, so it can also lose a race in the database."""
    found = conflicts_of(handler)
    if writes:
        found |= conflicts_of(translate_db_error)
    return tuple(code for code in ErrorCode if code in found)


def conflicts_of(fn: Callable[..., Any]) -> set[ErrorCode]:
    """Every code `fn` or a mes function it reaches constructs a Conflict with."""
    root = _function(fn)
    seen: set[FunctionType] = set()
    todo: list[Any] = [root]
    codes: set[ErrorCode] = set()
    while todo:
        for current in _functions(todo.pop()):
            if current in seen or (current is not root and not _ours(current)):
                continue
            seen.add(current)
            own, named = _read(current)
            codes |= own
            todo.extend(named)
    return codes


def _function(obj: Any) -> FunctionType | None:
    """The function `obj` is, through decorators (exact types only: a request-bound proxy
    such as current_user must not be asked anything)."""
    if type(obj) is MethodType:
        obj = obj.__func__
    if type(obj) is not FunctionType:
        return None
    obj = inspect.unwrap(obj)
    return obj if type(obj) is FunctionType else None


def _ours(fn: FunctionType) -> bool:
    module = fn.__module__ or ""
    return module == PACKAGE or module.startswith(PACKAGE + ".")


@cache
def _read(fn: FunctionType) -> tuple[frozenset[ErrorCode], tuple[Any, ...]]:
    """The codes `fn` constructs Conflicts with itself, and what it names that stands for
    functions (kept as named: a signal's receivers are looked up at each reading)."""
    tree = _definition(fn)
    names = _namespace(fn, tree)
    codes: set[ErrorCode] = set()
    named: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            error = _resolve(node.func, names)
            if isinstance(error, type) and issubclass(error, DomainError) \
                    and error.status == Conflict.status:
                codes |= _codes(fn, node, error, names)
        if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
            obj = _resolve(node, names)
            if isinstance(obj, Signal) or any(True for _ in _functions(obj)):
                named.append(obj)
    return frozenset(codes), tuple(named)


def _definition(fn: FunctionType) -> ast.AST:
    """The syntax tree of `fn`, found in its module's tree (parsed once per module) by its
    name and first line."""
    code = fn.__code__
    node = _definitions(code.co_filename).get((code.co_name, code.co_firstlineno))
    if node is None:
        raise ConflictsUnreadable(f"No source for {fn.__module__}.{fn.__qualname__}.")
    return node


@cache
def _definitions(filename: str) -> dict[tuple[str, int], ast.AST]:
    """Every function and lambda of a source file by name and first line (a decorated
    function's first line is its first decorator's, as in its code object)."""
    with open(filename, encoding="utf-8") as source, _PARSING:
        tree = ast.parse(source.read(), filename)
    found: dict[tuple[str, int], ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found[(node.name, first)] = node
        elif isinstance(node, ast.Lambda):
            found[("<lambda>", node.lineno)] = node
    return found


def _codes(fn: FunctionType, call: ast.Call, error: type[DomainError],
           names: dict[str, Any]) -> set[ErrorCode]:
    """The codes a construction can carry: the class's own, the ErrorCode member it names,
    or every member of the module-level table it picks one from (`_ALREADY[state]`)."""
    given = next((k.value for k in call.keywords if k.arg == "code"), None)
    if given is None:
        return {error.code}
    if isinstance(given, ast.Subscript):
        table = _resolve(given.value, names)
        choices = list(table.values()) if isinstance(table, dict) else \
            list(table) if isinstance(table, list | tuple) else []
        if choices and all(isinstance(code, ErrorCode) for code in choices):
            return set(choices)
    code = _resolve(given, names)
    if isinstance(code, ErrorCode):
        return {code}
    raise ConflictsUnreadable(
        f"{fn.__module__}.{fn.__qualname__} constructs {error.__name__} with the code "
        f"`{ast.unparse(given)}`; name an ErrorCode member there (or pick one from a "
        f"module-level table of them) so that the endpoints calling it can document it.")


def _namespace(fn: FunctionType, tree: ast.AST) -> dict[str, Any]:
    """The names `fn` sees: builtins, its module's globals, its closure and the imports made
    inside its body."""
    names: dict[str, Any] = {**vars(builtins), **fn.__globals__}
    names.update(inspect.getclosurevars(fn).nonlocals)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            module = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name) \
                    if hasattr(module, alias.name) \
                    else importlib.import_module(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as c` binds a.b.
                bound = alias.name if alias.asname else alias.name.partition(".")[0]
                names[alias.asname or bound] = importlib.import_module(bound)
    return names


def _resolve(node: ast.expr, names: dict[str, Any]) -> Any:
    """What a name or a dotted name stands for, looked up through modules and classes only
    (never through an object, whose attributes may run code or need a request)."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, names)
        if isinstance(base, ModuleType) or issubclass(type(base), type):
            return getattr(base, node.attr, None)
    return None


def _functions(obj: Any) -> Iterator[FunctionType]:
    """The functions a named object stands for: itself, a module-level table of functions,
    or the receivers of a signal (the lot lifecycle)."""
    if isinstance(obj, Signal):
        for receiver in list(obj.receivers.values()):
            target = receiver() if isinstance(receiver, weakref.ref) else receiver
            if (fn := _function(target)) is not None:
                yield fn
        return
    values: Any = obj.values() if isinstance(obj, dict) else obj \
        if isinstance(obj, list | tuple | set | frozenset) else (obj,)
    for value in values:
        if (fn := _function(value)) is not None:
            yield fn
