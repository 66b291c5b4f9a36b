"""Periodic jobs the worker runs (`mes worker`): a package registers a function taking the
worker's session, and the worker calls it every `every` seconds in a transaction of its
own, which it commits (the job itself never commits). With several workers each job runs
once per period between them (mes.events.models.JobRun). A job that raises is logged and
retried at its next period; the others go on.

    from mes.events.jobs import periodic

    @periodic("forecasts", every=300)
    def refresh_stale_forecasts(session: Session) -> None: ...

A registration made in a module the application imports (a package's services or views)
is seen by every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

JobFunction = Callable[[Session], Any]
F = TypeVar("F", bound=JobFunction)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    run: JobFunction


# name -> job, in registration order.
PERIODIC_JOBS: dict[str, PeriodicJob] = {}


def register_periodic(name: str, every: float, run: JobFunction) -> PeriodicJob:
    """Register `run(session)` to be called every `every` seconds under `name` (at most 80
    characters; registering a name again replaces the job)."""
    if not name or len(name) > 80:
        raise ValueError("a job's name is 1 to 80 characters")
    if every <= 0:
        raise ValueError("a job's period must be positive")
    job = PeriodicJob(name, timedelta(seconds=every), run)
    PERIODIC_JOBS[name] = job
    return job


def periodic(name: str, every: float) -> Callable[[F], F]:
    """Decorator form of `register_periodic`."""
    def decorate(fn: F) -> F:
        register_periodic(name, every, fn)
        return fn
    return decorate
