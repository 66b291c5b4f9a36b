"""The forecast tables: the duration distributions forecasts are drawn from, and the
forecast of each open or banked lot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import DistributionKind, DistributionSource, LineStatus


class ForecastDistribution(Base):
    """The recent durations (hours) of a route's step (`key` "ROUTE/STEP", queue plus
    process, from track-in arrival to track-out) or of the holds of a reason (`key` the
    reason code), summarised as at most 100 sorted points (mes.forecast.distributions),
    with the step's yield. Rebuilt from the history by `refresh_distributions`, so that
    a forecast never reads the history itself."""

    __tablename__ = "forecast_distribution"
    __table_args__ = (one_of("kind", DistributionKind), one_of("source", DistributionSource))

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(90), primary_key=True)
    source: Mapped[str] = mapped_column(String(8))
    # How many recorded durations the points summarise (0 for the default).
    samples: Mapped[int]
    points: Mapped[list[Any]] = mapped_column(default=list)
    # Good out / in over the same runs (steps only; None: unknown, taken as 1).
    expected_yield: Mapped[float | None]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class LotForecast(Base):
    """A lot's completion forecast as last computed. It is stale when the lot's row
    version has moved on (a move, a hold, a release), or when it is older than
    FORECAST_MAX_AGE_MINUTES (a waiting lot's time at its step grows)."""

    __tablename__ = "lot_forecast"
    # PostgreSQL: fillfactor 50 (migration 0036), so that a refresh rewriting every row
    # makes heap-only updates (no column of an index changes).

    lot_id: Mapped[int] = mapped_column(BigID, ForeignKey("lot.id"), primary_key=True,
                                        autoincrement=False)
    # lot.version when computed.
    lot_version: Mapped[int]
    # None: no forecast (a banked lot without a planned start).
    p50_at: Mapped[datetime | None]
    p90_at: Mapped[datetime | None]
    expected_quantity: Mapped[int | None]
    remaining_steps: Mapped[int]
    on_hold: Mapped[bool]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The P90 last announced to the customer (lot.eta.changed): a change is measured from
    # it, so that a P90 drifting by small steps is announced once it has moved enough.
    announced_p90_at: Mapped[datetime | None]


class LineOutlook(Base):
    """An order line's status as last computed from its lots' forecasts, so that a change
    is announced once (order.status.changed)."""

    __tablename__ = "order_line_outlook"
    __table_args__ = (one_of("status", LineStatus),)

    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), primary_key=True,
                                         autoincrement=False)
    status: Mapped[str] = mapped_column(String(10))
    projected_p50: Mapped[int]
    projected_p90: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
