"""Database: declarative base, engine and session factory, one session per request.

The request commits once, in `finish_request`, or rolls back on any error. Services never
commit; CLI commands use `session_scope()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; times are stored as aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigID = BigInteger().with_variant(Integer(), "sqlite")


_clock: ContextVar[datetime | None] = ContextVar("mes_clock", default=None)
_write_intent: ContextVar[bool] = ContextVar("mes_write_intent", default=False)


@contextmanager
def write_intent() -> Iterator[None]:
    """Transactions begun inside the block will write (outside a request: the worker): on
    SQLite they take the write lock at BEGIN (BEGIN IMMEDIATE), waiting their turn, instead
    of failing with SQLITE_BUSY when they upgrade after another writer committed."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def utcnow() -> datetime:
    """Now, in UTC; or the time set by `simulated_time` (demo history generation)."""
    return _clock.get() or datetime.now(UTC)


@contextmanager
def simulated_time(at: datetime) -> Iterator[None]:
    """Run code as if it were `at`: used to build a plausible past for the demo plant."""
    token = _clock.set(at)
    try:
        yield
    finally:
        _clock.reset(token)


class Base(DeclarativeBase):
    # Every model is mapped to a plain Table (none to a join or a select), so insert() and
    # `.c` may be used on `Model.__table__`; SQLAlchemy itself types it as any FromClause.
    __table__: ClassVar[Table]
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def one_of(column: str, codes: Iterable[str]) -> CheckConstraint:
    """The CHECK that keeps `column` to the codes of a closed set (mes.vocabulary; NULL
    passes), named ck_<table>_<column>. A migration adds it with the same SQL."""
    listed = ", ".join(f"'{code}'" for code in codes)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


def _configure_sqlite(engine: Engine) -> None:
    # Python 3.11's sqlite3 opens transactions itself and breaks SAVEPOINT; take over BEGIN
    # (the documented SQLAlchemy recipe) and use WAL so readers never block the writer.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writing request takes the write lock up front: a deferred transaction that later
        # upgrades fails at once with SQLITE_BUSY instead of waiting its turn.
        # Reads of a writing request made in `reading()` take no lock.
        if _write_intent.get() or (has_request_context() and request.method not in SAFE_METHODS
                                   and not g.get("mes_reading")):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Create the empty file `path`, readable and writable by its owner only (0600), unless
    it exists. SQLite gives its -wal and -shm files the database file's permissions."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


# The most parameters of a statement whose conversion psycopg keeps (its own limit is 50).
STATEMENT_CACHE_PARAMS = 256


def _cache_large_statements() -> None:
    """Let psycopg keep its conversion of statements with up to STATEMENT_CACHE_PARAMS
    parameters. psycopg turns each statement's %(name)s placeholders into PostgreSQL's $n
    and keeps the result for statements of at most 50 parameters
    (`psycopg._queries.MAX_CACHED_STATEMENT_PARAMS`); a track-in or track-out is one
    statement of about 70 (mes.floor.persistence.write_move), converted again on every
    move: a seventh of the Python function calls of a move (bench/floor.py). The limit
    is the module's own setting, read at each call; tests/test_db.py fails if a psycopg
    release drops it, so the gain is not lost unnoticed."""
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", STATEMENT_CACHE_PARAMS) \
            < STATEMENT_CACHE_PARAMS:
        _queries.MAX_CACHED_STATEMENT_PARAMS = STATEMENT_CACHE_PARAMS


class _ResultColumns(Sequence[Any]):
    """A psycopg cursor's `description`, its Column objects made on first use. psycopg
    makes every column's Column (its name decoded, its type looked up) each time
    `description` is read; SQLAlchemy reads it after every statement but, once it knows a
    cached statement's result columns, only tests it against None. A move reads about a
    hundred columns, so a hundred Column objects a request went unused."""

    __slots__ = ("_cursor", "_result", "_columns")

    def __init__(self, cursor: Any, result: Any) -> None:
        self._cursor = cursor
        self._result = result
        self._columns: list[Any] | None = None

    def _made(self) -> list[Any]:
        if self._columns is None:
            from psycopg import Column

            # The columns of the result the description was read from, even when the
            # cursor has run another statement since.
            cursor = self._cursor
            source = cursor if cursor.pgresult is self._result else _ResultOf(cursor,
                                                                             self._result)
            self._columns = [Column(cast(Any, source), i) for i in range(self._result.nfields)]
        return self._columns

    def __len__(self) -> int:
        return int(self._result.nfields)

    def __getitem__(self, index: Any) -> Any:
        return self._made()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._made())

    def __eq__(self, other: object) -> bool:
        return self._made() == other

    __hash__ = None  # type: ignore[assignment]  # unhashable, as the list it stands for

    def __repr__(self) -> str:
        return repr(self._made())


class _ResultOf:
    """What psycopg's Column reads of a cursor, for a result the cursor has left."""

    __slots__ = ("pgresult", "_encoding", "adapters")

    def __init__(self, cursor: Any, result: Any) -> None:
        self.pgresult = result
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


def _lazy_description_cursor() -> type:
    """psycopg's client cursor class with `description` made lazily (_ResultColumns)."""
    import psycopg
    from psycopg.pq import ExecStatus

    tuples = {ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE,
              getattr(ExecStatus, "TUPLES_CHUNK", ExecStatus.TUPLES_OK)}

    class Cursor(psycopg.Cursor[Any]):
        @property
        def description(self) -> Any:
            # As psycopg's: columns when the result has fields or holds rows, else None.
            res = self.pgresult
            if res and (res.nfields or res.status in tuples):
                return _ResultColumns(self, res)
            return None

    return Cursor


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5) -> Engine:
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:") \
                and os.path.isdir(os.path.dirname(os.path.abspath(database))):
            # The database holds password hashes and tokens: not readable by other users
            # (sqlite3 would create it 0644).
            create_private_file(database)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        _cache_large_statements()
        if make_url(url).get_driver_name() == "psycopg":
            kwargs["connect_args"] = {"cursor_factory": _lazy_description_cursor()}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


class Database:
    """The engine and session factory of one application."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        # Given to every session as its `info` (the audit trail's key and checkpoint policy).
        self.info: dict[str, Any] = {}
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False,
                                         info=self.info)

    def bind_to(self, connection: Any) -> None:
        """Tests: run every session inside the test's transaction, committing to savepoints."""
        self.sessionmaker = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint",
            info=self.info,
        )


def init_app(app: Flask) -> Database:
    db = Database(app.config["DATABASE_URL"], echo=app.config["DB_ECHO"],
                  pool_size=app.config["DB_POOL_SIZE"])
    app.extensions["mes.db"] = db
    app.teardown_appcontext(_close_session)
    return db


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["mes.db"]


def session() -> Session:
    """The session of the current request (or app context), created on first use."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


@contextmanager
def reading() -> Iterator[Session]:
    """The request's session for reads that come before slow work (a login's password hash):
    they run in a plain transaction, which takes no write lock on SQLite, ended on leaving
    the block, so the slow work after it holds no lock. The request's next statement begins
    its write transaction (BEGIN IMMEDIATE on SQLite) and commits as usual. Nothing may be
    written inside the block; it works as described when it comes before the request's
    first statement (tests/auth/test_login_lock.py checks the login page's order)."""
    sess = session()
    if sess.in_transaction():
        # Something read before (its transaction may hold the lock already): carry on in
        # it rather than end a transaction this block did not begin.
        yield sess
        return
    g.mes_reading = True
    try:
        yield sess
    finally:
        g.mes_reading = False
    if sess.new or sess.dirty or sess.deleted:
        raise RuntimeError("reading() is for reads only")
    sess.commit()


def end_reads() -> None:
    """End the request's transaction when so far it has only read (the user's load), so
    that slow work next (a password check) holds no write lock; the next statement begins
    a new transaction, which commits as usual."""
    sess = session()
    if sess.new or sess.dirty or sess.deleted:
        raise RuntimeError("end_reads() is for a transaction that has only read")
    sess.commit()


def finish_request(success: bool) -> None:
    """Commit the request's work when it succeeded, else roll it back. Called once."""
    sess: Session | None = g.get("db_session")
    if sess is None:
        return
    if success:
        sess.commit()
    else:
        sess.rollback()


def _close_session(_exc: BaseException | None) -> None:
    sess: Session | None = g.pop("db_session", None)
    if sess is not None:
        sess.close()


@contextmanager
def session_scope(app: Flask | None = None) -> Iterator[Session]:
    """A session for CLI commands and scripts: commit on success, roll back on error."""
    sess = get_db(app).sessionmaker()
    try:
        yield sess
        sess.commit()
    except BaseException:
        sess.rollback()
        raise
    finally:
        sess.close()
