"""Periodic jobs registered with mes.events.jobs run in the worker once per period between
all workers; a failing job is recorded and does not stop the others."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mes.db import session_scope
from mes.events import jobs
from mes.events.models import JobRun
from mes.events.worker import Worker


@pytest.fixture
def registry() -> Iterator[dict[str, jobs.PeriodicJob]]:
    saved = dict(jobs.PERIODIC_JOBS)
    jobs.PERIODIC_JOBS.clear()
    yield jobs.PERIODIC_JOBS
    jobs.PERIODIC_JOBS.clear()
    jobs.PERIODIC_JOBS.update(saved)


def test_a_job_runs_once_per_period_whichever_worker_asks(worker_db, registry):
    calls: list[str] = []

    @jobs.periodic("count", every=3600)
    def count(session) -> None:
        calls.append("ran")

    first, second = Worker(worker_db.app), Worker(worker_db.app)
    try:
        with worker_db.app.app_context():
            assert first.run_jobs() == 1
            assert second.run_jobs() == 0
            assert first.run_jobs() == 0
    finally:
        first.close()
        second.close()
    assert calls == ["ran"]
    with worker_db.app.app_context(), session_scope(worker_db.app) as session:
        row = session.scalars(select(JobRun)).one()
        assert row.name == "count" and row.last_run_at is not None and row.last_error == ""


def test_a_failing_job_is_recorded_and_the_others_still_run(worker_db, registry):
    ran: list[str] = []

    def broken(session) -> None:
        raise RuntimeError("forecast model missing")

    jobs.register_periodic("broken", 60, broken)
    jobs.register_periodic("fine", 60, lambda session: ran.append("fine"))
    worker = Worker(worker_db.app)
    try:
        with worker_db.app.app_context():
            assert worker.run_jobs() == 2
    finally:
        worker.close()
    assert ran == ["fine"]
    with worker_db.app.app_context(), session_scope(worker_db.app) as session:
        errors = dict(session.execute(select(JobRun.name, JobRun.last_error)).all())
    assert errors == {"broken": "forecast model missing", "fine": ""}


def test_a_job_needs_a_name_and_a_positive_period(registry):
    with pytest.raises(ValueError):
        jobs.register_periodic("", 10, lambda session: None)
    with pytest.raises(ValueError):
        jobs.register_periodic("x", 0, lambda session: None)
    assert registry == {}
