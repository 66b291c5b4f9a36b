"""Alembic environment: the models' metadata, on a connection handed over by the app (the
`mes db` commands and the tests) or on the configured database (plain `alembic`)."""

from __future__ import annotations

import logging.config
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


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from mes.config import load_config

        url = load_config()["DATABASE_URL"]
    engine = make_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()
    engine.dispose()


run()
