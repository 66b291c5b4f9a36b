"""Small helpers shared by the foundation tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def row_counts(session: Session, *models: Any) -> dict[str, int]:
    """Rows per table, to show that a refused request changed nothing in the database."""
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in models}


def audit_codes(session: Session, subject_type: str, subject_key: str) -> list[str]:
    """The audit codes of one subject, oldest first."""
    from mes.audit.models import AuditEvent

    return list(session.scalars(
        select(AuditEvent.code)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_key == subject_key)
        .order_by(AuditEvent.seq)))
