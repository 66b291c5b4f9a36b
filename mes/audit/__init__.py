"""Audit trail: `record(...)` (and `record_many(...)` for bulk actions, `next_record(...)` +
`insert_records(...)` for a writer that inserts the record together with a row of its own,
`number_ahead(...)` for one that takes the record's number with its first query) are the
only writers of audit rows."""

from mes.audit.services import (
    GENESIS,
    insert_records,
    next_record,
    number_ahead,
    record,
    record_many,
    took_ahead,
    verify,
)

__all__ = ["GENESIS", "insert_records", "next_record", "number_ahead", "record", "record_many",
           "took_ahead", "verify"]
