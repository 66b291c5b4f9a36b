"""Audit trail: `record(...)` (and `record_many(...)` for bulk actions) are the only writers of
audit rows."""

from mes.audit.services import GENESIS, record, record_many, verify

__all__ = ["GENESIS", "record", "record_many", "verify"]
