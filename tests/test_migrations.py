"""Migrations are the schema: on an empty database of the suite's backend they build exactly
the models, step back down to nothing, and build again."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from mes import MIGRATIONS_DIR, migrate
from mes.db import Base, make_engine
from tests.helpers import create_pg_database


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new, empty database (not the suite's shared one)."""
    pg = os.environ.get("MES_TEST_DATABASE_URL")
    if pg:
        url, drop = create_pg_database(pg)
    else:
        url, drop = f"sqlite:///{tmp_path / 'fresh.db'}", None
    engine = make_engine(url)
    yield engine
    engine.dispose()
    if drop:
        drop()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return migrate.current(conn)


def test_upgrade_builds_the_models_and_check_finds_no_difference(empty_engine):
    with empty_engine.begin() as conn:
        migrate.upgrade(conn)
    assert _tables(empty_engine) == set(Base.metadata.tables)
    with empty_engine.begin() as conn:
        migrate.check(conn)


def test_every_migration_steps_down_to_an_empty_database_and_up_again(empty_engine):
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    with empty_engine.begin() as conn:
        migrate.upgrade(conn)
    assert _current(empty_engine) == head
    steps = 0
    while _current(empty_engine) is not None:
        with empty_engine.begin() as conn:
            migrate.downgrade(conn, "-1")
        steps += 1
        assert steps < 1000, "downgrade does not progress"
    assert _tables(empty_engine) == set()
    with empty_engine.begin() as conn:
        migrate.upgrade(conn)
    assert _current(empty_engine) == head
    with empty_engine.begin() as conn:
        migrate.check(conn)


def test_migrations_form_one_line_of_history():
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_migration_files_are_named_by_date_revision_and_slug():
    names = [p.name for p in Path(MIGRATIONS_DIR, "versions").glob("*.py")]
    assert names
    pattern = re.compile(r"^\d{8}_\d{4}_[0-9a-z]+_[0-9a-z_]+\.py$")
    assert [n for n in names if not pattern.match(n)] == []
