"""Error codes are ErrorCode members, and each endpoint's documented 409 codes are derived
from the code it runs (mes.api.conflicts). The autouse fixture `conflicts_are_documented`
(tests/fixtures/app.py) checks every 409 any test provokes against the document."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import FunctionType

import pytest
from blinker import Signal

import mes
from mes.api.conflicts import ConflictsUnreadable, conflicts_of, endpoint_conflicts
from mes.api.registry import OPERATIONS
from mes.errors import Conflict, DomainError, ErrorCode, InvalidInput
from mes.quality import moisture

MES = Path(mes.__file__).parent


def _error_classes() -> dict[str, type[DomainError]]:
    for module in pkgutil.walk_packages(mes.__path__, "mes."):
        importlib.import_module(module.name)
    found: dict[str, type[DomainError]] = {}
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _constructions() -> list[tuple[str, type[DomainError], ast.expr | None]]:
    """Every construction of an error class in mes: where, which class, its `code=`."""
    classes = _error_classes()
    found = []
    for path in sorted(MES.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else \
                getattr(node.func, "id", None)
            if name in classes:
                code = next((k.value for k in node.keywords if k.arg == "code"), None)
                where = f"{path.relative_to(MES.parent)}:{node.lineno}"
                found.append((where, classes[name], code))
    return found


def _mes_functions() -> list[FunctionType]:
    """Every function written in mes: module-level ones and the methods of its classes."""
    found = []
    for info in pkgutil.walk_packages(mes.__path__, "mes."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            members = list(vars(value).values()) if isinstance(value, type) else [value]
            for member in members:
                # Exact types: a class may hold a request-bound proxy (current_user).
                fn = member.__func__ if type(member) in (staticmethod, classmethod) else member
                if type(fn) is FunctionType and fn.__module__ == module.__name__ \
                        and fn.__code__.co_filename.startswith(str(MES)):
                    found.append(fn)
    return found


def test_no_error_is_constructed_with_a_string_code():
    strings = [where for where, _cls, code in _constructions() if code is not None
               and any(isinstance(n, ast.Constant | ast.JoinedStr) for n in ast.walk(code))]
    assert strings == []


def test_every_conflict_code_can_be_read_where_it_is_constructed():
    """What makes the derivation complete: no 409 code is computed at run time."""
    functions = _mes_functions()
    assert len(functions) > 500
    unreadable = []
    for fn in functions:
        try:
            conflicts_of(fn)
        except ConflictsUnreadable as exc:
            unreadable.append(str(exc))
    assert unreadable == []


def test_no_method_constructs_a_conflict():
    """The derivation follows functions named through modules and classes, not methods
    called on objects; a Conflict raised from a method would go undocumented."""
    conflicts = {name for name, cls in _error_classes().items()
                 if cls.status == Conflict.status}
    found = []
    for path in sorted(MES.rglob("*.py")):
        for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(cls, ast.ClassDef):
                found += [f"{path.relative_to(MES.parent)}:{node.lineno}"
                          for node in ast.walk(cls) if isinstance(node, ast.Call)
                          and getattr(node.func, "id", getattr(node.func, "attr", None))
                          in conflicts]
    assert found == []


def test_the_string_check_sees_the_constructions():
    constructions = _constructions()
    assert len(constructions) > 50
    assert {cls for _where, cls, _code in constructions} >= {Conflict, InvalidInput}
    assert any(isinstance(code, ast.Attribute) for _w, _c, code in constructions)


def test_an_error_refuses_a_plain_string_code():
    with pytest.raises(TypeError):
        Conflict("Lot L1 is on hold.", code="lot_on_hold")  # type: ignore[arg-type]
    assert Conflict("Lot L1 is on hold.", code=ErrorCode.LOT_ON_HOLD).code == "lot_on_hold"


def test_codes_keep_their_api_values():
    assert {code.value for code in ErrorCode} >= {
        "bad_request", "unauthenticated", "forbidden", "not_found", "conflict", "invalid",
        "rate_limited", "stale", "duplicate", "lot_on_hold", "wrong_step", "not_running",
        "already_running", "equipment_unavailable", "two_person_rule", "not_qualified",
        "floor_life_expired", "quantity_mismatch"}
    assert all(code.value == code.name.lower() for code in ErrorCode)


# --- the derivation ----------------------------------------------------------------------

def _operation(method: str, rule: str):
    return next(op for op in OPERATIONS if op.method == method and op.rule == "/api/v1" + rule)


def test_a_code_raised_deep_in_another_domain_is_documented():
    # track-in -> floor.track_in -> quality.moisture.check_floor_life (at a pack step)
    track_in = _operation("post", "/lots/<lot_no>/track-in")
    assert ErrorCode.FLOOR_LIFE_EXPIRED in track_in.conflicts
    assert {ErrorCode.WRONG_EQUIPMENT, ErrorCode.MATERIAL_REQUIRED, ErrorCode.WRONG_STEP,
            ErrorCode.LOT_ON_HOLD, ErrorCode.STALE} <= set(track_in.conflicts)


def test_codes_follow_the_services_an_endpoint_calls():
    assert _operation("post", "/customers").conflicts == (
        ErrorCode.CONFLICT, ErrorCode.STALE, ErrorCode.DUPLICATE)
    assert set(_operation("post", "/shipments").conflicts) >= {
        ErrorCode.WRONG_CUSTOMER, ErrorCode.NOT_COMPLETED, ErrorCode.ALREADY_SHIPPED,
        ErrorCode.LOT_ON_HOLD, ErrorCode.FLOOR_LIFE_EXPIRED, ErrorCode.NOT_QUALIFIED}


def test_reads_document_no_conflict():
    assert _operation("get", "/lots/<lot_no>").conflicts == ()
    assert _operation("get", "/customers").conflicts == ()


def test_only_conflicts_are_listed():
    # receive_lot raises InvalidInput quantity_mismatch (422) besides Conflict duplicate.
    receive = _operation("post", "/lots").conflicts
    assert ErrorCode.DUPLICATE in receive
    assert ErrorCode.QUANTITY_MISMATCH not in receive


def test_a_conflict_with_a_computed_code_cannot_be_documented():
    def refuse(code: ErrorCode) -> None:
        raise Conflict("Refused.", code=code)

    with pytest.raises(ConflictsUnreadable, match="refuse"):
        conflicts_of(refuse)


def test_functions_named_but_not_called_are_followed():
    def handler() -> list[object]:
        return [moisture.check_floor_life]

    assert conflicts_of(handler) == {ErrorCode.FLOOR_LIFE_EXPIRED}


def test_local_imports_and_default_codes_are_read():
    def handler() -> None:
        from mes.quality.moisture import check_floor_life

        if check_floor_life:
            raise Conflict("Refused.")
        raise InvalidInput("Not valid.", code=ErrorCode.NO_MATCH)

    assert conflicts_of(handler) == {ErrorCode.FLOOR_LIFE_EXPIRED, ErrorCode.CONFLICT}
    assert endpoint_conflicts(handler, writes=False) == (
        ErrorCode.CONFLICT, ErrorCode.FLOOR_LIFE_EXPIRED)


ALREADY = {"open": ErrorCode.ALREADY_OPEN, "sealed": ErrorCode.ALREADY_SEALED}


def test_a_code_picked_from_a_table_documents_every_entry():
    def refuse(state: str) -> None:
        raise Conflict("Refused.", code=ALREADY[state])

    assert conflicts_of(refuse) == {ErrorCode.ALREADY_OPEN, ErrorCode.ALREADY_SEALED}


def test_the_receivers_of_a_signal_sent_are_followed():
    moved = Signal()
    moved.connect(moisture.check_floor_life)

    def handler() -> None:
        moved.send("LOT-1")

    assert conflicts_of(handler) == {ErrorCode.FLOOR_LIFE_EXPIRED}
    moved.disconnect(moisture.check_floor_life)
    assert conflicts_of(handler) == set()


def test_the_document_lists_the_derived_codes_under_409(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/lots/{lot_no}/track-in"]["post"]
    description = operation["responses"]["409"]["description"]
    assert "floor_life_expired" in description and "wrong_equipment" in description
    assert "409" not in document["paths"]["/api/v1/lots/{lot_no}"]["get"]["responses"]
