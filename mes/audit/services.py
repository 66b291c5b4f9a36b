"""The one writer of audit records, their checkpoints, and the verifier.

What holds against someone who can write the database but does not hold the audit key (kept
outside the database: `AUDIT_KEY`, by default the file `audit_key` of the instance folder):

- every record's `hash` is an HMAC under the key, over its content, its place in its series
  and the previous hash of its subject: an edited or re-hashed record no longer verifies;
- every record has a number in one of `SERIES` series, counted without gaps by a row of
  `audit_counter` updated in the writer's own transaction (a rolled-back write gives its
  number back): a deleted record, even the newest of its series, is a missing number;
- checkpoints seal every record counted so far with a keyed, chained digest, are numbered
  without gaps, are made automatically (every `AUDIT_CHECKPOINT_RECORDS` records or
  `AUDIT_CHECKPOINT_MINUTES` minutes) and can be appended to a witness file kept elsewhere
  (`mes audit checkpoint --export FILE`), against which `mes audit verify --witness FILE`
  checks the database: deleting records together with the counters and the checkpoint rows
  is caught there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, event, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql import column, table

from mes.audit.models import AuditCheckpoint, AuditCounter, AuditEvent
from mes.auth.actor import Actor, actor_name
from mes.db import utcnow

GENESIS = "0" * 64

# The series of record numbers (rows of audit_counter, made by migration 0015). On
# PostgreSQL each database connection claims one for as long as it lives, so up to this
# many connections write at once without waiting for a number; SQLite writes one
# transaction at a time and uses series 0.
SERIES = 64

# The advisory lock class by which a PostgreSQL connection claims its series; the lock
# (of the same class, key -1) held by the one transaction making an automatic checkpoint.
_CLAIM_CLASS = 7320
_CHECKPOINT_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_CLAIM_CLASS}, -1)")

log = logging.getLogger(__name__)


class AuditError(Exception):
    """The audit trail cannot be keyed or read as asked; the message says why."""


@dataclass
class AuditSettings:
    """The audit key and the automatic checkpoint policy of one application, given to each
    of its sessions in `session.info["audit"]`. The counters decide, per process, when to
    ask the database whether a checkpoint is due (so a request rarely asks)."""

    key: bytes
    checkpoint_records: int = 1000
    checkpoint_minutes: int = 60
    _pending: int = 0
    _asked: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def should_ask(self, written: int) -> bool:
        """Whether this process should look for a due checkpoint after writing `written`
        records: after an eighth of the records' threshold, or a minute since it last did."""
        with self._lock:
            self._pending += written
            now = time.monotonic()
            if (self._pending * 8 < self.checkpoint_records
                    and now - self._asked < min(60.0, self.checkpoint_minutes * 60.0)):
                return False
            self._pending, self._asked = 0, now
            return True


def configure(info: dict[str, Any], config: Mapping[str, Any]) -> AuditSettings:
    """Give the sessions whose `info` is `info` the audit key and checkpoint policy of
    `config` (AUDIT_KEY, AUDIT_CHECKPOINT_RECORDS, AUDIT_CHECKPOINT_MINUTES)."""
    settings = AuditSettings(key=str(config["AUDIT_KEY"]).encode(),
                             checkpoint_records=max(1, int(config["AUDIT_CHECKPOINT_RECORDS"])),
                             checkpoint_minutes=max(1, int(config["AUDIT_CHECKPOINT_MINUTES"])))
    info["audit"] = settings
    return settings


def _settings(session: Session) -> AuditSettings:
    settings = session.info.get("audit")
    if not isinstance(settings, AuditSettings):
        raise AuditError("this session has no audit key (sessions come from mes.db)")
    return settings


def _canonical_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical(values: Any) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def compute_hash(*, seq: int, at: datetime, actor: str | None, code: str, subject_type: str,
                 subject_key: str, data: dict[str, Any], prev_hash: str) -> str:
    """The public, unkeyed formula of records written before the trail was keyed (migration
    0015); `rekey` checks them with it before keying them."""
    payload = json.dumps(
        [seq, _canonical_time(at), actor, code, subject_type, subject_key, data, prev_hash],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record_mac(key: bytes, *, series: int, number: int, seq: int, at: datetime,
               actor: str | None, code: str, subject_type: str, subject_key: str,
               data: dict[str, Any], prev_hash: str) -> str:
    """The keyed hash of a record: HMAC-SHA256 under the audit key."""
    payload = _canonical(["audit-record-1", series, number, seq, _canonical_time(at), actor,
                          code, subject_type, subject_key, data, prev_hash])
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _jsonable(value: Any) -> Any:
    # Round-trip through JSON so the hash is computed over exactly what the database keeps.
    return json.loads(json.dumps(value, default=str))


# Subjects whose chain head lives on their own row (see `head_on`).
ROW_CHAINED = frozenset({"lot"})

_COUNTER = AuditCounter.__table__


def _draw_statement(take_free: bool) -> Any:
    values = {"value": _COUNTER.c.value + bindparam("n", type_=_COUNTER.c.value.type)}
    if take_free:
        # A series no other open transaction holds: writers never queue for a number.
        free = (select(_COUNTER.c.series).order_by(func.random()).limit(1)
                .with_for_update(skip_locked=True).scalar_subquery())
        return (update(_COUNTER).where(_COUNTER.c.series == free).values(values)
                .returning(_COUNTER.c.series, _COUNTER.c.value))
    return (update(_COUNTER).where(_COUNTER.c.series == bindparam("s"))
            .values(values).returning(_COUNTER.c.series, _COUNTER.c.value))


_DRAW_HELD = _draw_statement(take_free=False)
_DRAW_FREE = _draw_statement(take_free=True)
# The first series no other connection has claimed, from a random start (a session-level
# advisory lock, released when the connection closes). LIMIT 1 stops at the first claim.
_CLAIM = text(
    f"SELECT (s + :start) % {SERIES} FROM generate_series(0, {SERIES - 1}) AS s "
    f"WHERE pg_try_advisory_lock({_CLAIM_CLASS}, (s + :start) % {SERIES}) LIMIT 1")


def _claimed_series(connection: Any) -> int | None:
    """The series this PostgreSQL connection has claimed (claiming one on first use), or None
    when every series is claimed by other connections. A claim only spares the writer a
    search: the counter row's lock is what keeps the numbers in order."""
    if "audit_series" not in connection.info:
        connection.info["audit_series"] = connection.execute(
            _CLAIM, {"start": random.randrange(SERIES)}).scalar()
    series: int | None = connection.info["audit_series"]
    return series


# The next number of a series, taken by a caller's own first query (`number_ahead`).
_AHEAD = (update(_COUNTER).where(_COUNTER.c.series == bindparam("ahead_series"))
          .values(value=_COUNTER.c.value + 1)
          .returning(_COUNTER.c.series, _COUNTER.c.value).cte("audit_ahead"))


def number_ahead(session: Session) -> tuple[Any, dict[str, Any]] | None:
    """For a caller that will write an audit record in this transaction whatever happens
    unless it raises (a move), on PostgreSQL: a WITH taking the next number of this
    connection's series (columns `series`, `value`) for the caller to join into the query
    it runs first, and its parameters; the caller hands the row to `took_ahead`. Spares
    the move a round trip. None when the transaction holds a series already, on SQLite, or
    when this connection has no series of its own."""
    if "audit_series" in session.info:
        return None
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    series = _claimed_series(connection)
    if series is None:
        return None
    return _AHEAD, {"ahead_series": series}


def took_ahead(session: Session, series: int, number: int) -> None:
    """The number `number_ahead`'s WITH took: the transaction's next audit record gets it.
    A transaction that would commit without using it fails (AuditError): a number given
    out and never used would be a gap in its series."""
    session.info["audit_series"] = series
    session.info["audit_ahead"] = number


def _draw(session: Session, count: int) -> tuple[int, int]:
    """Take `count` consecutive numbers of the series this transaction holds (taking one
    first): (series, first number). The counter row stays locked until the transaction
    ends, so the numbers of a series are given out in order and a rollback returns them."""
    ahead = session.info.pop("audit_ahead", None)
    if ahead is not None:
        # The number taken ahead, then the rest after it.
        if count > 1:
            session.connection().execute(
                _DRAW_HELD, {"n": count - 1, "s": session.info["audit_series"]})
        session.info["audit_written"] = session.info.get("audit_written", 0) + count
        return session.info["audit_series"], ahead
    connection = session.connection()
    series = session.info.get("audit_series")
    row = None
    if series is None:
        if connection.dialect.name != "postgresql":
            series = 0
        elif (series := _claimed_series(connection)) is None:
            # More connections than series: one no open transaction holds.
            row = connection.execute(_DRAW_FREE, {"n": count}).first()
            if row is None:
                # Every series is held by an open transaction: wait for one of them.
                series = random.randrange(SERIES)
    if row is None:
        row = connection.execute(_DRAW_HELD, {"n": count, "s": series}).one()
    series, last = row
    session.info["audit_series"] = series
    session.info["audit_written"] = session.info.get("audit_written", 0) + count
    return series, last - count + 1


def _next_record(session: Session, *, actor: Actor | None, code: str, subject_type: str,
                 subject_key: str, data: dict[str, Any] | None = None, head_on: Any = None,
                 new_subject: bool = False, place: tuple[int, int] | None = None
                 ) -> dict[str, Any]:
    """The column values of the next record of a chain; the chain's head moves to it."""
    if (subject_type in ROW_CHAINED) != (head_on is not None):
        raise ValueError(f"audit records of {subject_type} subjects need head_on" if head_on
                         is None else f"{subject_type} chains are not kept on a row")
    key = _settings(session).key
    name = actor_name(actor) if actor is not None else None
    subject_key = str(subject_key)
    # Heads written earlier in this transaction are remembered, so the query below never
    # needs to flush pending rows first (an autoflush per audit record is costly).
    heads = session.info.setdefault("audit_heads", {})
    head = heads.get((subject_type, subject_key))
    if head_on is not None:
        head = (head_on.audit_seq, head_on.audit_hash) if head_on.audit_seq else None
    elif head is None and not new_subject:
        with session.no_autoflush:
            head = session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.subject_type == subject_type,
                       AuditEvent.subject_key == subject_key)
                .order_by(AuditEvent.seq.desc()).limit(1)
            ).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    series, number = place or _draw(session, 1)
    # Microseconds are the finest unit both databases keep.
    at = utcnow()
    payload = _jsonable(data or {})
    digest = record_mac(key, series=series, number=number, seq=seq, at=at, actor=name,
                        code=code, subject_type=subject_type, subject_key=subject_key,
                        data=payload, prev_hash=prev)
    heads[(subject_type, subject_key)] = (seq, digest)
    if head_on is not None:
        head_on.audit_seq, head_on.audit_hash = seq, digest
    return {"at": at, "actor": name, "code": code, "subject_type": subject_type,
            "subject_key": subject_key, "seq": seq, "series": series, "number": number,
            "data": payload, "prev_hash": prev, "hash": digest}


def record(session: Session, *, actor: Actor | None, code: str, subject_type: str,
           subject_key: str, data: dict[str, Any] | None = None, head_on: Any = None,
           new_subject: bool = False) -> AuditEvent:
    """Append an audit record for `subject_type:subject_key` in the caller's transaction.

    `actor` is a user (its username is kept), a system actor, or None for no one (a failed
    login). `code` reads `subject:action`. A simultaneous write to the same subject fails
    at commit on the (subject, seq) unique key and becomes a 409. For subjects in
    ROW_CHAINED, `head_on` is the subject's row, which carries the chain head in
    `audit_seq`/`audit_hash`; records of those subjects must always go through it
    (ValueError otherwise). `new_subject=True` says the subject was created in this
    transaction (a row just inserted), so its chain starts here without a query for its
    head.
    """
    row = AuditEvent(**_next_record(session, actor=actor, code=code,
                                    subject_type=subject_type, subject_key=subject_key,
                                    data=data, head_on=head_on, new_subject=new_subject))
    session.add(row)
    return row


_INSERT = insert(AuditEvent.__table__)


def record_many(session: Session, entries: Iterable[dict[str, Any]]) -> int:
    """Append many audit records at once, each given as the keyword arguments of `record`
    (same chains, same hashes), with one executemany INSERT instead of an object per
    record: for actions on thousands of subjects (a mass hold). Returns the count."""
    entries = list(entries)
    if not entries:
        return 0
    series, first = _draw(session, len(entries))
    return insert_records(session, [_next_record(session, **entry, place=(series, first + i))
                                    for i, entry in enumerate(entries)])


def next_record(session: Session, **entry: Any) -> dict[str, Any]:
    """The column values of the next audit record of a chain, as `record` takes them; the
    chain's head moves to it. The caller inserts it (`insert_records`) in this transaction:
    for a caller that writes it together with a row of its own in one statement."""
    return _next_record(session, **entry)


def insert_records(session: Session, rows: list[dict[str, Any]]) -> int:
    """INSERT audit records made by `next_record`; returns the count."""
    if rows:
        session.connection().execute(_INSERT, rows)
    return len(rows)


def _forget(session: Session) -> int:
    # After the transaction ends, the database is again the only source of chain heads, and
    # the series it held is free again.
    session.info.pop("audit_heads", None)
    session.info.pop("audit_series", None)
    session.info.pop("audit_ahead", None)
    return int(session.info.pop("audit_written", 0))


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_heads(session: Session, *_args: Any) -> None:
    _forget(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if "audit_ahead" in session.info and not session.in_nested_transaction():
        raise AuditError("an audit record number was taken and not used")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint released inside the transaction: nothing has committed yet.
        return
    written = _forget(session)
    settings = session.info.get("audit")
    if written and isinstance(settings, AuditSettings) and settings.should_ask(written):
        if isinstance(session.bind, Engine) and session.bind.dialect.name != "sqlite":
            _checkpoint_later(session.bind, settings)
        else:
            # SQLite serialises writers (a thread of this process writing beside the request
            # could only make it wait, or deadlock a deferred transaction); a session bound
            # to a caller's connection (the test suite) makes it in that transaction: now.
            auto_checkpoint(session.bind, settings)


# One thread per process makes the due checkpoints, so that the request whose commit made
# one due answers without waiting for it (reading the counters and hashing a thousand
# records' hashes). Created at first use in each process (gunicorn forks its workers);
# its thread is joined at interpreter exit, so a command's last checkpoint is made.
_checkpointer: tuple[int, ThreadPoolExecutor] | None = None
_checkpointer_lock = threading.Lock()


def _checkpoint_later(engine: Engine, settings: AuditSettings) -> None:
    global _checkpointer
    with _checkpointer_lock:
        if _checkpointer is None or _checkpointer[0] != os.getpid():
            _checkpointer = (os.getpid(), ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="audit-checkpoint"))
        _checkpointer[1].submit(auto_checkpoint, engine, settings)


def wait_for_checkpoints() -> None:
    """Return once every checkpoint handed to this process's thread is made (tests, and
    commands that report the checkpoint they caused)."""
    with _checkpointer_lock:
        pending = _checkpointer[1] if _checkpointer and _checkpointer[0] == os.getpid() \
            else None
    if pending is not None:
        pending.submit(lambda: None).result()


# --- checkpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Seal:
    """A checkpoint as the database row and the witness line both carry it."""

    number: int
    at: datetime
    marks: dict[str, int]
    records: int
    digest: str
    mac: str

    def line(self) -> str:
        return json.dumps({"checkpoint": self.number, "at": _canonical_time(self.at),
                           "marks": self.marks, "records": self.records,
                           "digest": self.digest, "mac": self.mac}, sort_keys=True) + "\n"

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _seal_mac(key, self.number, self.at, self.marks,
                                                       self.records, self.digest))


def _seal_mac(key: bytes, number: int, at: datetime, marks: dict[str, int], records: int,
              digest: str) -> str:
    payload = _canonical(["audit-checkpoint-1", number, _canonical_time(at), marks, records,
                          digest])
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _seal_of(cp: Any) -> Seal:
    return Seal(cp.number, cp.at, {str(k): int(v) for k, v in cp.marks.items()},
                cp.event_count, cp.digest, cp.mac)


def _chain_digest(previous: str, segments: dict[str, str]) -> str:
    """The digest of a checkpoint: the previous one's, then, per series, the SHA-256 of the
    hashes of the records it adds (in number order)."""
    return hashlib.sha256(_canonical([previous, segments])).hexdigest()


# Plain rows, not ORM objects: what the database holds now, never an object the caller's
# session remembers.
_CHECKPOINT = select(AuditCheckpoint.number, AuditCheckpoint.at, AuditCheckpoint.marks,
                     AuditCheckpoint.event_count, AuditCheckpoint.digest, AuditCheckpoint.mac)


def _latest(session: Session) -> Any:
    return session.execute(_CHECKPOINT.order_by(AuditCheckpoint.number.desc())
                           .limit(1)).first()


def _counters(session: Session) -> dict[int, int]:
    return {int(s): int(v) for s, v in session.execute(
        select(AuditCounter.series, AuditCounter.value))}


def checkpoint(session: Session) -> tuple[Seal | None, bool]:
    """Seal every record counted so far: (the newest checkpoint, whether it is new). A
    checkpoint is made only when records were written since the last one.

    The counters are read first: a series' counter commits together with its records, so
    every number up to it belongs to a committed record (or one of this transaction)."""
    key = _settings(session).key
    counters = _counters(session)
    last = _latest(session)
    previous = {str(k): int(v) for k, v in last.marks.items()} if last else {}
    marks = {str(s): v for s, v in sorted(counters.items()) if v}
    if marks == previous or not marks:
        return (_seal_of(last) if last else None), False
    segments = {}
    for name, upto in marks.items():
        since = previous.get(name, 0)
        if upto <= since:
            continue
        hashes = session.scalars(
            select(AuditEvent.hash).where(AuditEvent.series == int(name),
                                          AuditEvent.number > since,
                                          AuditEvent.number <= upto)
            .order_by(AuditEvent.number))
        segments[name] = hashlib.sha256("".join(hashes).encode()).hexdigest()
    digest = _chain_digest(last.digest if last else GENESIS, segments)
    number = (last.number if last else 0) + 1
    at = utcnow()
    records = sum(marks.values())
    mac = _seal_mac(key, number, at, marks, records, digest)
    session.add(AuditCheckpoint(number=number, at=at, marks=marks, event_count=records,
                                digest=digest, mac=mac))
    return Seal(number, at, marks, records, digest, mac), True


def checkpoint_due(session: Session, settings: AuditSettings) -> bool:
    """Whether AUDIT_CHECKPOINT_RECORDS records were counted since the last checkpoint, or
    AUDIT_CHECKPOINT_MINUTES passed since it (or since the oldest record, before the first)
    with records written since."""
    last = _latest(session)
    counted = sum(_counters(session).values())
    new = counted - (last.event_count if last else 0)
    if new <= 0:
        return False
    if new >= settings.checkpoint_records:
        return True
    since = last.at if last else session.scalar(
        select(func.min(AuditEvent.at)).where(AuditEvent.number.is_not(None)))
    return since is not None and utcnow() - since >= timedelta(
        minutes=settings.checkpoint_minutes)


def auto_checkpoint(bind: Any, settings: AuditSettings) -> Seal | None:
    """Make a checkpoint in a transaction of its own when one is due (after a commit that
    wrote records). On PostgreSQL one process at a time makes it (a transaction-level
    advisory lock; the others go on without waiting); elsewhere two processes making the
    same one at once collide on its number and one gives up. A failure is logged and never
    undoes the write that triggered it."""
    options: dict[str, Any] = {}
    if not isinstance(bind, Engine):
        # Inside a caller's transaction (the test suite): commit to a savepoint.
        options["join_transaction_mode"] = "create_savepoint"
    sess = Session(bind=bind, info={"audit": settings}, **options)
    try:
        if sess.connection().dialect.name == "postgresql" and not sess.execute(
                _CHECKPOINT_LOCK).scalar():
            sess.rollback()
            return None  # another process is making it
        seal = checkpoint(sess)[0] if checkpoint_due(sess, settings) else None
        sess.commit()
        return seal
    except SQLAlchemyError as exc:
        sess.rollback()
        log.warning("audit checkpoint not made: %s", str(getattr(exc, "orig", exc)).strip())
        return None
    finally:
        sess.close()


def read_witness(lines: Iterable[str], source: str = "witness") -> list[Seal]:
    """The checkpoints of a witness file (lines written by `Seal.line`). A line that is not
    one is an AuditError naming its line number."""
    seals = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            seals.append(Seal(
                number=int(item["checkpoint"]),
                at=datetime.strptime(item["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=utcnow().tzinfo),
                marks={str(k): int(v) for k, v in dict(item["marks"]).items()},
                records=int(item["records"]), digest=str(item["digest"]),
                mac=str(item["mac"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuditError(f"{source} line {number}: not an audit checkpoint line") from None
    return seals


# --- verification --------------------------------------------------------------------------

@dataclass
class VerifyResult:
    ok: bool
    events: int
    checkpoints: int
    problem: str | None = None
    bad_event_id: int | None = None
    problems: list[str] = field(default_factory=list)
    witnessed: int = 0


# Problems are ordered: a missing or altered record first (the cause), then what follows
# from it (a broken link), then checkpoints and the witness.
_RECORD, _LINK, _SEAL = 0, 1, 2


def _name(ev: Any) -> str:
    place = f"{ev.series}:{ev.number}" if ev.number is not None else f"id {ev.id}"
    return (f"audit record {place} (id {ev.id}, {ev.code} {ev.subject_type}:{ev.subject_key} "
            f"#{ev.seq})")


def _missing(series: int, first: int, last: int, why: str) -> str:
    span = f"{series}:{first}" if first == last else f"{series}:{first} to {series}:{last}"
    count = "is" if first == last else f"({last - first + 1}) are"
    return f"audit record {span} {count} missing (deleted){why}"


def verify(session: Session, witness: list[Seal] | None = None,
           batch: int = 5000) -> VerifyResult:
    """Check every record (its keyed hash, its subject chain), that no number of any series
    is missing up to the series' counter and every checkpoint, and every checkpoint (its
    key, its number, its digest over the records), against the witness's checkpoints too
    when given. Returns the first problem: the first missing or altered record."""
    key = _settings(session).key
    # Read before the records: a record counted here has committed, or is this session's.
    counters = _counters(session)
    problems: list[tuple[int, tuple[int, int], str, int | None]] = []
    count = 0
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    stmt = select(AuditEvent.id, AuditEvent.seq, AuditEvent.series, AuditEvent.number,
                  AuditEvent.at, AuditEvent.actor, AuditEvent.code, AuditEvent.subject_type,
                  AuditEvent.subject_key, AuditEvent.data, AuditEvent.prev_hash,
                  AuditEvent.hash) \
        .order_by(AuditEvent.subject_type, AuditEvent.subject_key, AuditEvent.seq) \
        .execution_options(yield_per=batch)
    # Plain rows, not ORM objects: the check reads what the database holds now (never an
    # object remembered by the caller's session) and keeps no identity map of every record.
    for ev in session.execute(stmt):
        count += 1
        key_of = (ev.subject_type, ev.subject_key)
        last_seq, last_hash = heads.get(key_of, (0, GENESIS))
        place = (ev.series, ev.number) if ev.number is not None else (-1, ev.id)
        if ev.number is None or ev.series is None:
            problems.append((_RECORD, place, f"{_name(ev)}: not keyed (written before the "
                             "audit key, or altered; see mes audit rekey)", ev.id))
        elif not hmac.compare_digest(ev.hash, record_mac(
                key, series=ev.series, number=ev.number, seq=ev.seq, at=ev.at,
                actor=ev.actor, code=ev.code, subject_type=ev.subject_type,
                subject_key=ev.subject_key, data=ev.data, prev_hash=ev.prev_hash)):
            problems.append((_RECORD, place, f"{_name(ev)}: content does not match its keyed "
                             "hash (edited or re-hashed)", ev.id))
        if ev.seq != last_seq + 1:
            problems.append((_LINK, place, f"{_name(ev)}: records before it in its chain are "
                             f"missing (expected #{last_seq + 1})", ev.id))
        elif ev.prev_hash != last_hash:
            problems.append((_LINK, place, f"{_name(ev)}: does not link to the record before "
                             "it", ev.id))
        heads[key_of] = (ev.seq, ev.hash)

    seals, witnessed = _checkpoints(session, key, witness or [], problems)
    # The highest number each series has reached: its counter, or a checkpoint's mark.
    high = dict(counters)
    for seal in seals:
        for name, upto in seal.marks.items():
            high[int(name)] = max(high.get(int(name), 0), upto)
    _numbers(session, seals, high, problems, batch)
    if problems:
        problems.sort(key=lambda p: (p[0], p[1]))
        first = problems[0]
        return VerifyResult(False, count, len(seals), first[2], first[3],
                            [p[2] for p in problems], witnessed)
    return VerifyResult(True, count, len(seals), witnessed=witnessed)


def _checkpoints(session: Session, key: bytes, witness: list[Seal],
                 problems: list[tuple[int, tuple[int, int], str, int | None]]
                 ) -> tuple[list[Seal], int]:
    """The checkpoints to check the records against (the database's and the witness's, by
    number), noting any that is altered, missing or differs from the witness."""
    stored = {seal.number: seal for seal in map(_seal_of, session.execute(
        _CHECKPOINT.order_by(AuditCheckpoint.number)))}
    known = dict(stored)
    for seal in witness:
        if not seal.valid(key):
            problems.append((_SEAL, (seal.number, 0), f"witness checkpoint {seal.number}: not "
                             "made with this audit key", None))
            continue
        mine = stored.get(seal.number)
        if mine is None:
            problems.append((_SEAL, (seal.number, 0), f"checkpoint {seal.number} of "
                             f"{seal.at:%Y-%m-%d %H:%M} is in the witness but not in the "
                             "database (deleted)", None))
        elif (mine.digest, mine.marks, mine.mac) != (seal.digest, seal.marks, seal.mac):
            problems.append((_SEAL, (seal.number, 0), f"checkpoint {seal.number} differs from "
                             "the witness (replaced)", None))
        known[seal.number] = seal
    valid = []
    for number, seal in sorted(known.items()):
        if seal.valid(key):
            valid.append(seal)
        elif number in stored:
            problems.append((_SEAL, (number, 0), f"checkpoint {number}: does not match its "
                             "keyed hash (edited or forged)", None))
    expected = 1
    for seal in valid:
        if seal.number > expected:
            problems.append((_SEAL, (expected, 0), f"checkpoint {expected} is missing "
                             "(deleted)", None))
        expected = seal.number + 1
    return valid, len(witness)


def _numbers(session: Session, seals: list[Seal], high: dict[int, int],
             problems: list[tuple[int, tuple[int, int], str, int | None]],
             batch: int) -> None:
    """Walk every numbered record in series order: name every missing number up to the
    series' high-water mark, and recompute each checkpoint's digest."""
    # Per series, the checkpoints' marks in order, to find the checkpoint adding a number.
    marks_of: dict[int, list[int]] = {}
    for seal in seals:
        for name, upto in seal.marks.items():
            marks_of.setdefault(int(name), []).append(upto)
    by_series: dict[int, list[int]] = {}
    for index, seal in enumerate(seals):
        for name in seal.marks:
            by_series.setdefault(int(name), []).append(index)
    segments: dict[tuple[int, int], Any] = {}
    last: dict[int, int] = {}
    stmt = select(AuditEvent.series, AuditEvent.number, AuditEvent.hash) \
        .where(AuditEvent.number.is_not(None), AuditEvent.series.is_not(None)) \
        .order_by(AuditEvent.series, AuditEvent.number).execution_options(yield_per=batch)
    row: Any
    for row in session.execute(stmt):
        series, number, digest = int(row.series), int(row.number), row.hash
        before = last.get(series, 0)
        if number > before + 1:
            problems.append((_RECORD, (series, before + 1),
                             _missing(series, before + 1, number - 1, ""), None))
        last[series] = number
        marks = marks_of.get(series)
        if marks:
            at = bisect_left(marks, number)
            if at < len(marks):
                index = by_series[series][at]
                segments.setdefault((index, series), hashlib.sha256()).update(digest.encode())
    for series, upto in sorted(high.items()):
        seen = last.get(series, 0)
        if upto > seen:
            problems.append((_RECORD, (series, seen + 1), _missing(
                series, seen + 1, upto, f": the newest of series {series}, counted up to "
                f"{series}:{upto}"), None))
    previous_digest: str | None = GENESIS
    previous_marks: dict[str, int] = {}
    for index, seal in enumerate(seals):
        if index and seals[index - 1].number != seal.number - 1:
            previous_digest = None  # a checkpoint is missing: no chain to follow to this one
        parts = {name: segments.get((index, int(name)), hashlib.sha256()).hexdigest()
                 for name, upto in seal.marks.items() if upto > previous_marks.get(name, 0)}
        if previous_digest is not None and _chain_digest(previous_digest, parts) != seal.digest:
            problems.append((_SEAL, (seal.number, 1), f"checkpoint {seal.number}: the records "
                             "it sealed no longer match its digest", None))
        previous_digest, previous_marks = seal.digest, seal.marks


# --- keying records written before the key ------------------------------------------------

def rekey(session: Session) -> int:
    """Key the records written before the trail was keyed (migration 0015 leaves them
    without a number): check them with the public formula they were written with, number
    them in series 0 in the order they were written, and recompute the keyed hash of every
    record of their subjects (a lot's row keeps its chain's new head). Returns the count.

    Refused (AuditError) when a checkpoint exists already (the trail was keyed and sealed:
    a record without a number now was altered) or when a record does not verify."""
    key = _settings(session).key
    legacy = session.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.number.is_(None))) or 0
    if not legacy:
        return 0
    if session.scalar(select(func.count()).select_from(AuditCheckpoint)):
        raise AuditError(f"{legacy} audit record(s) have no number although the trail is "
                         "sealed by checkpoints: they were altered, not written before the "
                         "key (mes audit verify names them)")
    subjects = select(AuditEvent.subject_type, AuditEvent.subject_key) \
        .where(AuditEvent.number.is_(None)).distinct().subquery()
    rows = session.execute(
        select(AuditEvent).join(subjects, (AuditEvent.subject_type == subjects.c.subject_type)
                                & (AuditEvent.subject_key == subjects.c.subject_key))
        .order_by(AuditEvent.subject_type, AuditEvent.subject_key, AuditEvent.seq)
        # What the database holds, not what objects of this session remember.
        .execution_options(populate_existing=True)
    ).scalars().all()
    chains: dict[tuple[str, str], list[AuditEvent]] = {}
    for ev in rows:
        chains.setdefault((ev.subject_type, ev.subject_key), []).append(ev)
    for chain in chains.values():
        prev, keyed = GENESIS, False
        for position, ev in enumerate(chain, start=1):
            where = f"audit record id {ev.id} ({ev.code} {ev.subject_type}:{ev.subject_key} " \
                    f"#{ev.seq})"
            if ev.seq != position or ev.prev_hash != prev:
                raise AuditError(f"{where}: its chain is broken; not keyed")
            if ev.number is None:
                if keyed:
                    raise AuditError(f"{where}: has no number but follows a keyed record")
                expected = compute_hash(seq=ev.seq, at=ev.at, actor=ev.actor, code=ev.code,
                                        subject_type=ev.subject_type,
                                        subject_key=ev.subject_key, data=ev.data,
                                        prev_hash=ev.prev_hash)
            else:
                keyed = True
                expected = record_mac(key, series=ev.series or 0, number=ev.number,
                                      seq=ev.seq, at=ev.at, actor=ev.actor, code=ev.code,
                                      subject_type=ev.subject_type,
                                      subject_key=ev.subject_key, data=ev.data,
                                      prev_hash=ev.prev_hash)
            if expected != ev.hash:
                raise AuditError(f"{where}: content does not match its hash; not keyed")
            prev = ev.hash
    unnumbered = sorted((ev for ev in rows if ev.number is None), key=lambda ev: ev.id)
    connection = session.connection()
    last = connection.execute(_DRAW_HELD, {"n": len(unnumbered), "s": 0}).one()[1]
    for number, ev in enumerate(unnumbered, start=last - len(unnumbered) + 1):
        ev.series, ev.number = 0, number
    heads = []
    for (subject_type, subject_key), chain in chains.items():
        prev = GENESIS
        for ev in chain:
            ev.prev_hash = prev
            ev.hash = prev = record_mac(
                key, series=ev.series or 0, number=ev.number or 0, seq=ev.seq, at=ev.at,
                actor=ev.actor, code=ev.code, subject_type=ev.subject_type,
                subject_key=ev.subject_key, data=ev.data, prev_hash=ev.prev_hash)
        if subject_type in ROW_CHAINED:
            heads.append({"key": subject_key, "head": prev})
    session.flush()  # the records first: a lot's row names the last record of its chain
    if heads:
        # The lot table by name: the audit trail knows no domain's models.
        lots = table("lot", column("lot_no"), column("audit_hash"))
        connection.execute(update(lots).where(lots.c.lot_no == bindparam("key"))
                           .values(audit_hash=bindparam("head")), heads)
    return len(unnumbered)
