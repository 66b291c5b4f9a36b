"""Audit trail: `record(...)` is the only writer of audit rows."""

from mes.audit.services import GENESIS, record, verify

__all__ = ["GENESIS", "record", "verify"]
