"""Writing chains of audit records, and changing the database behind the application's back
as someone who can write it (but does not hold the audit key) would."""

from __future__ import annotations

from sqlalchemy import JSON, bindparam, text

from mes.audit.models import AuditEvent
from mes.audit.services import record


def chain(session, key: str = "L0001", n: int = 3, *, subject_type: str = "item",
          actor: str = "alice") -> list[AuditEvent]:
    events = [record(session, actor=actor, code=f"{subject_type}:move",
                     subject_type=subject_type, subject_key=key,
                     data={"step": f"S{i}", "qty": i * 10})
              for i in range(1, n + 1)]
    session.commit()
    return events


def tamper(session, sql: str, **params) -> None:
    stmt = text(sql)
    if "data" in params:
        stmt = stmt.bindparams(bindparam("data", type_=JSON))
    session.execute(stmt, params)
    # No expire_all(): the session still remembers the old values, and verify() must read
    # what the database holds now.
    session.commit()
