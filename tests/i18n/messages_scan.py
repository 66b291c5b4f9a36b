"""Finds the refusals in mes/ whose message is not marked for translation: a DomainError,
a marshmallow ValidationError or a field message (`fields={name: [...]}`) built from a
plain string or an f-string, which a reader of another language would get in English."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from mes import PACKAGE_DIR

# Calls whose first argument is the message a person reads.
MESSAGE_FIRST = {"InvalidInput", "Conflict", "NotFound", "BadRequest", "Forbidden",
                 "Unauthenticated", "RateLimited", "Unavailable", "TooLarge",
                 "ValidationError", "DomainError"}
# Calls whose second argument is the message: the services' invalid(field, message).
MESSAGE_SECOND = {"invalid", "_invalid"}
# marshmallow's validators, whose `error=` is a message.
VALIDATORS = {"Regexp", "Length", "Range", "OneOf", "NoneOf", "Equal", "ContainsOnly",
              "Predicate", "URL", "Email", "And"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _plain(node: ast.expr | None) -> bool:
    """A message nobody translates: a string literal with a letter, or an f-string."""
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
        c.isalpha() for c in node.value)


def _field_messages(node: ast.expr) -> Iterator[ast.expr]:
    """The messages of a `fields={...}` argument: list items, comprehension elements."""
    if isinstance(node, ast.Dict):
        for value in node.values:
            yield from _field_messages(value)
    elif isinstance(node, ast.DictComp):
        yield from _field_messages(node.value)
    elif isinstance(node, ast.List | ast.Tuple):
        yield from node.elts
    elif isinstance(node, ast.ListComp):
        yield node.elt


def untranslated(root: Path = PACKAGE_DIR) -> list[str]:
    """`path:line: call` of every refusal with a message that is not translated."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            messages: list[ast.expr] = []
            if name in MESSAGE_FIRST and node.args:
                messages.append(node.args[0])
            if name in MESSAGE_SECOND and len(node.args) > 1:
                messages.append(node.args[1])
            for keyword in node.keywords:
                if keyword.arg == "error" and name in VALIDATORS:
                    messages.append(keyword.value)
                if keyword.arg == "fields" and (name in MESSAGE_FIRST or name in MESSAGE_SECOND):
                    messages += list(_field_messages(keyword.value))
            for message in messages:
                if _plain(message):
                    found.append(f"{path.relative_to(root.parent)}:{message.lineno}: "
                                 f"{ast.unparse(message)[:90]}")
    return found


# Parameters of a translated message that name a code of a closed set: passed as the raw
# code ("Lot X is running; use_as_is it ..."), a Chinese reader would see English.
CODE_PARAMS = {"state", "kind", "disposition", "source", "status", "role", "action", "target",
               "level", "mode"}
TRANSLATORS = {"_l", "_", "gettext", "lazy_gettext", "ngettext"}


def _worded(node: ast.expr) -> bool:
    """A parameter value that is a word, not a raw code: a translation (`_l(code)`) or a
    call that gives one (`EquipmentKind.word(code)`), a member's `.label`, or a variable
    named for the word it holds."""
    if isinstance(node, ast.Call):
        return True
    if isinstance(node, ast.IfExp):
        return _worded(node.body) and _worded(node.orelse)
    if isinstance(node, ast.Name):
        return node.id in {"label", "word"}  # a word looked up before
    return isinstance(node, ast.Attribute) and node.attr == "label"


def raw_code_params(root: Path = PACKAGE_DIR) -> list[str]:
    """`path:line: param` of every translated message given a closed set's code as is."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in TRANSLATORS:
                for keyword in node.keywords:
                    if keyword.arg in CODE_PARAMS and not _worded(keyword.value):
                        found.append(f"{path.relative_to(root.parent)}:{node.lineno}: "
                                     f"{keyword.arg}={ast.unparse(keyword.value)}")
    return found
