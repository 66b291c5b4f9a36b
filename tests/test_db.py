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
