"""Set-based statements for many rows at once: conditions on many ids (one array
parameter on PostgreSQL) and upserts of many rows (a binary COPY and one INSERT on
PostgreSQL), in batches on SQLite. A forecast refresh of a whole plant writes 100,000 rows
this way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    Text,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

BATCH = 5000


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, ids: Sequence[int]) -> list[ColumnElement[bool]]:
    """Conditions that together select the rows whose `column` is one of `ids`: one
    `= ANY(array)` on PostgreSQL (one parameter whatever the count), IN lists of BATCH on
    SQLite (run one query per condition)."""
    if not ids:
        return []
    if _pg(session):
        # IN (SELECT unnest(...)): the array is read once, where `= ANY(CAST(...))` would
        # parse it again for every row of a sequential scan.
        return [column.in_(select(func.unnest(cast(bindparam(None, _array(ids), type_=Text),
                                                   ARRAY(BigInteger)))))]
    return [column.in_(ids[i:i + BATCH]) for i in range(0, len(ids), BATCH)]


def upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: str,
           keep: Sequence[str] = ()) -> None:
    """Insert `rows` into `table`, updating the row of the same `key` where there is one
    (every column but the key and those in `keep`)."""
    if not rows:
        return
    columns = [c for c in table.c if c.name in rows[0]]
    updated = [c.name for c in columns if c.name != key and c.name not in keep]
    if _pg(session):
        _copy_upsert(session, table, [c.name for c in columns], updated, rows, key)
        return
    insert = sqlite_insert(table)
    insert = insert.on_conflict_do_update(index_elements=[table.c[key]], set_={
        name: insert.excluded[name] for name in updated})
    for i in range(0, len(rows), BATCH):
        session.execute(insert, list(rows[i:i + BATCH]))


def _copy_upsert(session: Session, table: Table, names: list[str], updated: list[str],
                 rows: Sequence[dict[str, Any]], key: str) -> None:
    """PostgreSQL: the rows go to a temporary table by a binary COPY (values in their
    native form: nothing to parse, times included), then into `table` by one INSERT ...
    ON CONFLICT. The temporary table lives as long as the connection, empty between
    transactions."""
    temp = f"_upsert_{table.name}_" + "_".join(
        str(i) for i, c in enumerate(table.c) if c.name in names)
    cols = ", ".join(names)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} ON COMMIT DELETE ROWS "
                       f"AS SELECT {cols} FROM {table.name} WITH NO DATA")
        cursor.execute(f"TRUNCATE {temp}")
        cursor.execute("SELECT attname, atttypid FROM pg_attribute WHERE attrelid = "
                       "%s::regclass AND attnum > 0 AND NOT attisdropped", (temp,))
        oids = dict(cursor.fetchall())
        with cursor.copy(f"COPY {temp} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([oids[name] for name in names])
            write = copy.write_row
            for row in rows:
                write([row[name] for name in names])
        sets = ", ".join(f"{name} = excluded.{name}" for name in updated)
        cursor.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {temp} "
                       f"ON CONFLICT ({key}) DO UPDATE SET {sets}")


def _quoted(value: Any) -> str:
    text_ = value.isoformat() if isinstance(value, datetime) else str(value)
    return '"' + text_.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _iso(value: datetime, texts: dict[datetime, str]) -> str:
    found = texts.get(value)
    if found is None:
        found = texts[value] = f'"{value.isoformat()}"'
    return found


def _array(values: Sequence[Any], texts: dict[datetime, str] | None = None) -> str:
    """An array in PostgreSQL's text form ({1,2,NULL}), cast by the statement: psycopg's
    own adaptation of a Python list looks at every element, several times slower for the
    hundred thousand values of a plant's refresh."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        items = ("NULL" if v is None else "t" if v else "f" for v in values)
    elif isinstance(sample, int | float):
        items = ("NULL" if v is None else repr(v) for v in values)
    elif isinstance(sample, datetime):
        known = {} if texts is None else texts
        items = ("NULL" if v is None else _iso(v, known) for v in values)
    else:
        items = ("NULL" if v is None else _quoted(v) for v in values)
    return "{" + ",".join(items) + "}"
