"""Audit trail: `record(...)` is the only writer of audit rows."""

from mes.audit.services import record, verify

__all__ = ["record", "verify"]
