"""Alembic environment: the models' metadata, on a connection handed over by the app (the
`mes db` commands and the tests) or on the configured database (plain `alembic`)."""

from __future__ import annotations

import logging.config
from contextlib import nullcontext
from typing import Any

from alembic import context

import mes.models  # noqa: F401  (imports every model so the metadata is complete)
from mes.db import Base, UTCDateTime, make_engine

config = context.config
if config.config_file_name and not config.attributes.get("connection"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell plain SQLAlchemy types, never the app's Python wrappers.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=_render_item,
    )


def _migrate(connection: Any) -> None:
    """Run the migrations inside the connection's transaction (one is begun if none is).

    SQLite alters a table by copying it and dropping the original (batch mode), which an
    enforced foreign key refuses while other rows refer to the table, and SQLite switches
    enforcement off only between transactions. So on SQLite the migrations get a database
    transaction of their own (the caller's is committed first, SQLAlchemy's stays open):
    enforcement off, migrate, check every reference, commit, enforcement on again.
    """
    if connection.dialect.name != "sqlite":
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with connection.begin() if not connection.in_transaction() else nullcontext():
        driver = connection.connection.driver_connection
        if driver.in_transaction:
            driver.execute("COMMIT")
        driver.execute("PRAGMA foreign_keys=OFF")
        driver.execute("BEGIN")
        try:
            _configure(connection)
            context.run_migrations()
            broken = driver.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError("The migrations leave rows that refer to missing rows "
                                   f"(table, rowid, parent, key): {broken[:10]}")
            driver.execute("COMMIT")
        except BaseException:
            driver.execute("ROLLBACK")
            raise
        finally:
            driver.execute("PRAGMA foreign_keys=ON")
            driver.execute("BEGIN")  # what SQLAlchemy's transaction will end


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from mes.config import load_config

        url = load_config()["DATABASE_URL"]
    engine = make_engine(url)
    with engine.connect() as conn:
        _migrate(conn)
        conn.commit()
    engine.dispose()


run()
