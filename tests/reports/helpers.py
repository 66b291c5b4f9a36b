"""The calendar of the report tests' plant history (tests/reports/conftest.py): "now", the
range of interest, the route's step numbers, and T(), a UTC time in 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime

NOW = datetime(2026, 3, 16, tzinfo=UTC)
START, END = date(2026, 3, 2), date(2026, 3, 15)
SEQ = {"SAW": 1, "FT": 2, "PACK": 3}


def T(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)
