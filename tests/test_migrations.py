"""Migrations are the schema: on an empty database of the suite's backend they build exactly
the models, step back down to nothing, and build again."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import column, insert, inspect, table, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mes import MIGRATIONS_DIR, migrate
from mes.db import Base, make_engine, utcnow
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


def _rows(conn) -> dict[str, int]:
    return {table: conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
            for table in ("customer", "route", "route_step", "product", "equipment",
                          "equipment_state_change", "reason_code", "lot", "lot_event",
                          "hold")}


def test_closed_set_checks_go_on_and_off_a_database_with_rows(empty_engine):
    """The CHECK migration rebuilds tables on SQLite while other rows refer to them: the
    rows and their references survive both ways, and afterwards a stray code is refused."""
    from mes.catalog.models import (
        Customer,
        Equipment,
        EquipmentStateChange,
        Product,
        Route,
        RouteStep,
    )
    from mes.floor.models import Lot, LotEvent
    from mes.quality.models import Hold

    with empty_engine.begin() as conn:
        migrate.upgrade(conn, "0009")
        ins = {m: insert(m.__table__) for m in (Customer, Route, RouteStep, Product, Equipment,
                                                 EquipmentStateChange, Lot,
                                                 LotEvent, Hold)}
        # The customer table as it was at 0009 (its kind came later).
        customer_0009 = table("customer", *(column(c) for c in (
            "id", "code", "name", "automotive", "created_at", "updated_at")))
        conn.execute(insert(customer_0009), {"id": 1, "code": "C", "name": "C",
                                             "automotive": False, "created_at": utcnow(),
                                             "updated_at": utcnow()})
        conn.execute(ins[Route], {"id": 1, "code": "R", "version": 1, "name": "R"})
        conn.execute(ins[RouteStep], {"route_id": 1, "seq": 1, "code": "S", "name": "S",
                                      "kind": "assembly"})
        # The product table as it was at 0009 (its kind came later).
        product_0009 = table("product", *(column(c) for c in (
            "id", "code", "name", "package", "route_code", "msl", "customer_id",
            "created_at", "updated_at")))
        conn.execute(insert(product_0009), {"id": 1, "code": "P", "name": "P",
                                            "package": "QFN", "route_code": "R", "msl": "1",
                                            "customer_id": 1, "created_at": utcnow(),
                                            "updated_at": utcnow()})
        conn.execute(ins[Equipment], {"id": 1, "code": "E", "kind": "bond",
                                      "state": "standby"})
        conn.execute(ins[EquipmentStateChange], {"equipment_id": 1, "to_state": "standby"})
        # The reason code table as it was at 0009 (later columns are not there yet).
        reason_0009 = table("reason_code", *(column(c) for c in (
            "id", "code", "kind", "description", "description_zh", "active")))
        conn.execute(insert(reason_0009), {"id": 1, "code": "H", "kind": "hold",
                                           "description": "H", "description_zh": "",
                                           "active": True})
        conn.execute(ins[Lot], {"id": 1, "lot_no": "L1", "product_id": 1, "customer_id": 1,
                                "route_id": 1, "step_seq": 1, "step_code": "S",
                                "state": "queued", "quantity": 10, "fab_lot": "F",
                                "equipment_id": 1})
        conn.execute(ins[LotEvent], {"lot_id": 1, "kind": "receive"})
        conn.execute(ins[Hold], {"lot_id": 1, "reason_id": 1, "comment": "c",
                                 "source": "manual", "status": "open", "placed_by": "qa"})
        before = _rows(conn)
    with empty_engine.begin() as conn:
        migrate.upgrade(conn)
    with empty_engine.begin() as conn:
        assert _rows(conn) == before
        assert conn.execute(text("SELECT state FROM lot")).scalar_one() == "queued"
        migrate.check(conn)
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(text("UPDATE lot SET state = 'lost'"))
    with empty_engine.begin() as conn:
        assert conn.execute(text("SELECT state FROM lot")).scalar_one() == "queued"
        migrate.downgrade(conn, "0009")
    with empty_engine.begin() as conn:
        assert _rows(conn) == before
        conn.execute(text("UPDATE lot SET state = 'lost'"))  # no CHECK any more
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
