"""The engine's settings for PostgreSQL: psycopg keeps its conversion of the statements a
move writes (mes.db._cache_large_statements)."""

from __future__ import annotations

import pytest

from mes import db
from mes.floor import persistence
from tests.floor.helpers import advance


def test_psycopg_keeps_the_conversion_of_a_move_statement(session, receive):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("psycopg is PostgreSQL's driver")
    from psycopg import _queries

    # A psycopg release without the setting fails here: the move statements would be
    # converted on every move again.
    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= db.STATEMENT_CACHE_PARAMS
    advance(session, receive(100, lot_no="L-DB"), 2)
    dialect = session.get_bind().dialect
    counts = [len(stmt.compile(dialect=dialect).params) for stmt in persistence._MOVES.values()]
    assert counts and max(counts) > 50
    assert max(counts) <= db.STATEMENT_CACHE_PARAMS


def test_the_cursor_description_is_psycopgs_made_on_use(connection):
    """The engine's cursors make their `description` lazily (mes.db._ResultColumns): the
    same columns as psycopg's own, also when read after the cursor ran another statement;
    None where psycopg answers None."""
    if connection.dialect.name != "postgresql":
        pytest.skip("psycopg is PostgreSQL's driver")
    import psycopg

    raw = connection.connection.dbapi_connection
    lazy = raw.cursor()
    plain = psycopg.Cursor(raw)
    sql = "SELECT 1 AS one, 'x'::varchar(7) AS two, now() AS three, NULL::numeric(9, 2)"
    lazy.execute(sql)
    plain.execute(sql)
    described = lazy.description
    assert type(described).__name__ == "_ResultColumns"
    assert len(described) == 4 and bool(described)
    expected = [tuple(c) for c in plain.description]
    lazy.execute("SELECT 2 AS other")  # the description read before keeps its result
    assert [tuple(c) for c in described] == expected
    assert [c.name for c in described] == ["one", "two", "three", "numeric"]
    assert described[1].type_code == plain.description[1].type_code
    plain.execute("SELECT 2 AS other")
    again = lazy.description
    assert [tuple(c) for c in again] == [tuple(c) for c in plain.description]
    assert [tuple(c) for c in again[-1:]] == [tuple(again[0])]
    lazy.execute("SELECT")  # rows without columns: an empty description, as psycopg's
    plain.execute("SELECT")
    assert list(lazy.description) == list(plain.description) == []
    lazy.execute("SET LOCAL statement_timeout = 0")  # no rows: None, as psycopg's
    plain.execute("SET LOCAL statement_timeout = 0")
    assert lazy.description is None and plain.description is None


def test_the_lazy_description_makes_its_columns_from_the_result_it_was_read_from():
    """On any database (no server needed, a stand-in result): the lazy description makes
    nothing until read, then the Column objects of the result it was read from, even after
    the cursor ran another statement; no result fields and no rows: None, as psycopg's."""
    from types import SimpleNamespace

    from psycopg import adapters
    from psycopg.pq import ExecStatus

    class Result:
        status = ExecStatus.TUPLES_OK

        def __init__(self, names: list[bytes]) -> None:
            self.names = names
            self.nfields = len(names)

        def fname(self, i: int) -> bytes:
            return self.names[i]

        def ftype(self, i: int) -> int:
            return 23  # int4

        def fmod(self, i: int) -> int:
            return -1

        def fsize(self, i: int) -> int:
            return 4

    cursor = SimpleNamespace(pgresult=Result([b"id", b"qty"]), _encoding="utf-8",
                             adapters=adapters)
    description = db._lazy_description_cursor().description
    described = description.fget(cursor)
    assert len(described) == 2 and described._columns is None
    cursor.pgresult = Result([b"other"])  # the cursor ran another statement
    assert [c.name for c in described] == ["id", "qty"]
    assert described[1].type_code == 23 and described == list(described)
    assert "id" in repr(described)
    assert [c.name for c in description.fget(cursor)] == ["other"]
    command = Result([])
    command.status = ExecStatus.COMMAND_OK
    cursor.pgresult = command
    assert description.fget(cursor) is None
