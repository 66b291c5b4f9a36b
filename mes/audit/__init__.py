"""Audit trail: `record(...)` (and `record_many(...)` for bulk actions, `next_record(...)` +
`insert_records(...)` for a writer that inserts the record together with a row of its own)
are the only writers of audit rows."""

from mes.audit.services import (
    GENESIS,
    insert_records,
    next_record,
    record,
    record_many,
    verify,
)

__all__ = ["GENESIS", "insert_records", "next_record", "record", "record_many", "verify"]
