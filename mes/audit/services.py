"""The one writer of audit records, and the verifier of their chains."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from mes.audit.models import AuditCheckpoint, AuditEvent
from mes.auth.actor import Actor, actor_name
from mes.db import utcnow

GENESIS = "0" * 64


def _canonical_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compute_hash(*, seq: int, at: datetime, actor: str | None, code: str, subject_type: str,
                 subject_key: str, data: dict[str, Any], prev_hash: str) -> str:
    payload = json.dumps(
        [seq, _canonical_time(at), actor, code, subject_type, subject_key, data, prev_hash],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    # Round-trip through JSON so the hash is computed over exactly what the database keeps.
    return json.loads(json.dumps(value, default=str))


# Subjects whose chain head lives on their own row (see `head_on`).
ROW_CHAINED = frozenset({"lot"})


def _next_record(session: Session, *, actor: Actor | None, code: str, subject_type: str,
                 subject_key: str, data: dict[str, Any] | None = None, head_on: Any = None,
                 new_subject: bool = False) -> dict[str, Any]:
    """The column values of the next record of a chain; the chain's head moves to it."""
    if (subject_type in ROW_CHAINED) != (head_on is not None):
        raise ValueError(f"audit records of {subject_type} subjects need head_on" if head_on
                         is None else f"{subject_type} chains are not kept on a row")
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
    # Microseconds are the finest unit both databases keep.
    at = utcnow()
    payload = _jsonable(data or {})
    digest = compute_hash(seq=seq, at=at, actor=name, code=code,
                          subject_type=subject_type, subject_key=subject_key, data=payload,
                          prev_hash=prev)
    heads[(subject_type, subject_key)] = (seq, digest)
    if head_on is not None:
        head_on.audit_seq, head_on.audit_hash = seq, digest
    return {"at": at, "actor": name, "code": code, "subject_type": subject_type,
            "subject_key": subject_key, "seq": seq, "data": payload, "prev_hash": prev,
            "hash": digest}


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
    return insert_records(session, [_next_record(session, **entry) for entry in entries])


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


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget_heads(session: Session, *_args: Any) -> None:
    # After the transaction ends, the database is again the only source of chain heads.
    session.info.pop("audit_heads", None)


@dataclass
class VerifyResult:
    ok: bool
    events: int
    checkpoints: int
    problem: str | None = None
    bad_event_id: int | None = None


def _digest(hashes: list[str]) -> str:
    h = hashlib.sha256()
    for item in hashes:
        h.update(item.encode())
    return h.hexdigest()


def checkpoint(session: Session, margin: timedelta = timedelta(minutes=5)) -> AuditCheckpoint:
    """Record a digest over every audit record written until `margin` ago (run it
    periodically, e.g. hourly).

    The margin matters on PostgreSQL: record ids come from a sequence, so a transaction that
    is still open may commit a lower id later. Requests are short, so a record older than the
    margin has committed (or never will) when the checkpoint is taken.
    """
    until = utcnow() - margin
    rows = session.execute(select(AuditEvent.id, AuditEvent.hash)
                           .where(AuditEvent.at <= until).order_by(AuditEvent.id)).all()
    cp = AuditCheckpoint(covers_until=until, max_event_id=rows[-1][0] if rows else 0,
                         event_count=len(rows), digest=_digest([r[1] for r in rows]))
    session.add(cp)
    return cp


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Check every chain (contiguous seq, prev_hash links, recomputed hashes) and every
    checkpoint. Returns the first bad record by id."""
    heads: dict[tuple[str, str], tuple[int, str]] = {}
    problems: list[tuple[int, str]] = []
    count = 0
    # Plain rows, not ORM objects: the check reads what the database holds now (never an
    # object remembered by the caller's session) and keeps no identity map of every record.
    stmt = select(AuditEvent.id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor,
                  AuditEvent.code, AuditEvent.subject_type, AuditEvent.subject_key,
                  AuditEvent.data, AuditEvent.prev_hash, AuditEvent.hash) \
        .order_by(AuditEvent.subject_type, AuditEvent.subject_key, AuditEvent.seq) \
        .execution_options(yield_per=batch)
    for ev in session.execute(stmt):
        count += 1
        key = (ev.subject_type, ev.subject_key)
        last_seq, last_hash = heads.get(key, (0, GENESIS))
        where = f"audit record {ev.id} ({ev.code} {ev.subject_type}:{ev.subject_key} #{ev.seq})"
        if ev.seq != last_seq + 1:
            problems.append((ev.id, f"{where}: records before it are missing "
                                    f"(expected #{last_seq + 1})"))
        elif ev.prev_hash != last_hash:
            problems.append((ev.id, f"{where}: does not link to the record before it"))
        expected = compute_hash(seq=ev.seq, at=ev.at, actor=ev.actor, code=ev.code,
                                subject_type=ev.subject_type, subject_key=ev.subject_key,
                                data=ev.data, prev_hash=ev.prev_hash)
        if expected != ev.hash:
            problems.append((ev.id, f"{where}: content does not match its hash (edited)"))
        heads[key] = (ev.seq, ev.hash)

    cps = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
    for cp in cps:
        rows = session.execute(select(AuditEvent.hash).where(AuditEvent.at <= cp.covers_until)
                               .order_by(AuditEvent.id)).scalars().all()
        if len(rows) != cp.event_count or _digest(list(rows)) != cp.digest:
            problems.append((cp.max_event_id, f"checkpoint {cp.id} of {cp.at:%Y-%m-%d %H:%M} "
                             f"no longer matches: records up to {cp.max_event_id} were "
                             f"deleted or edited ({len(rows)} now, {cp.event_count} then)"))
    if problems:
        problems.sort()
        return VerifyResult(False, count, len(cps), problems[0][1], problems[0][0])
    return VerifyResult(True, count, len(cps))

