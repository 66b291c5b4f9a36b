"""The worker (`mes worker`): fans new events out into deliveries, POSTs due deliveries
signed per Standard Webhooks, retries with exponential backoff, and runs the registered
periodic jobs (mes.events.jobs).

Exactly once per event and subscription, with several workers on several hosts
(PostgreSQL): a worker takes the rows it works on with SELECT ... FOR UPDATE SKIP LOCKED
and holds their locks until it has recorded the outcome, so another worker skips them and,
once they are committed, no longer finds them due. A worker that dies mid-attempt leaves
its transaction to roll back and the delivery is tried again: a receiver may see a message
twice after a crash, and recognises it by its `webhook-id`.

SQLite has no row locks: there one worker runs (a second refuses to start, see
`single_worker_lock`), it reads what is due, POSTs outside any transaction (so the
application's writers never wait for a customer's endpoint) and records the outcomes in a
short write transaction.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from standardwebhooks.webhooks import Webhook as Signer

from mes.db import get_db, utcnow, write_intent
from mes.events.jobs import PERIODIC_JOBS, PeriodicJob
from mes.events.models import Delivery, Event, JobRun, Webhook
from mes.events.services import private_address
from mes.vocabulary import DeliveryState

log = logging.getLogger("mes.worker")

USER_AGENT = "MES-lite-webhooks/1"
DISPATCH_BATCH = 500


class WorkerError(Exception):
    """The worker cannot start (a second worker on one SQLite database)."""


@dataclass(frozen=True)
class Settings:
    poll: float = 0.25
    timeout: float = 10.0
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    max_age: timedelta = timedelta(hours=24)
    allow_private: bool = False
    batch: int = 16

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        return cls(poll=config["WORKER_POLL_MS"] / 1000,
                   timeout=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
                   backoff_base=config["WEBHOOK_BACKOFF_BASE_MS"] / 1000,
                   backoff_cap=float(config["WEBHOOK_BACKOFF_CAP_SECONDS"]),
                   max_age=timedelta(seconds=config["WEBHOOK_MAX_AGE_SECONDS"]),
                   allow_private=config["WEBHOOK_ALLOW_PRIVATE_URLS"])


@dataclass(frozen=True)
class Attempt:
    """One POST, built from the database and sent outside it."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def message_body(event: Event) -> bytes:
    """The body Standard Webhooks prescribes: `{type, timestamp, data}`, `timestamp` when
    the event occurred (ISO 8601, UTC)."""
    return json.dumps({"type": event.type,
                       "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
                       "data": event.data}, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def message_id(delivery: Delivery) -> str:
    """The `webhook-id`: one per delivery (event and subscription), the same on retries."""
    return f"msg_{delivery.id}"


def build_attempt(delivery: Delivery, now: datetime) -> Attempt:
    """The signed request for `delivery` at `now` (the signature covers id, time and body)."""
    body = message_body(delivery.event)
    msg_id = message_id(delivery)
    signature = Signer(delivery.webhook.secret).sign(msg_id, now, body)
    return Attempt(delivery.id, delivery.webhook.url, body, {
        "content-type": "application/json", "user-agent": USER_AGENT, "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect is an answer, not a new address to send the customer's data to (it could
    # point into the plant's network): it counts as a failed attempt.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def send(attempt: Attempt, *, timeout: float, allow_private: bool) -> Outcome:
    """POST the attempt; never raises. The answer's body is read (up to 64 KiB) and
    dropped."""
    host = urlsplit(attempt.url).hostname or ""
    if not allow_private and private_address(host):
        return Outcome(None, "refused: the address is on a private network")
    request = urllib.request.Request(attempt.url, data=attempt.body, headers=attempt.headers,
                                     method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return Outcome(response.status, "")
    except urllib.error.HTTPError as exc:
        return Outcome(exc.code, f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        return Outcome(None, str(exc.reason)[:500])
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Outcome(None, (str(exc) or type(exc).__name__)[:500])


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, doubling, capped."""
    seconds = settings.backoff_base * 2 ** min(attempts - 1, 40)
    return timedelta(seconds=min(seconds, settings.backoff_cap))


def record_outcome(delivery: Delivery, outcome: Outcome, now: datetime,
                   settings: Settings) -> None:
    """Count the attempt: delivered on a 2xx answer; otherwise retried after the backoff,
    the last try at the end of the window, and failed once the window has passed."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status = outcome.status
    delivery.last_error = outcome.error
    if outcome.ok:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        return
    deadline = delivery.window_start + settings.max_age
    if now >= deadline:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = min(now + backoff(delivery.attempts, settings), deadline)


@contextmanager
def single_worker_lock(url: str, instance_path: str) -> Iterator[None]:
    """On SQLite, hold an exclusive lock on a file beside the database while the worker
    runs: a second worker on the same database refuses to start (WorkerError). Nothing
    on PostgreSQL, where any number of workers may run."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        yield
        return
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        path = os.path.join(instance_path, "worker.lock")
    else:
        path = os.path.abspath(database) + ".worker.lock"
    handle: BinaryIO = open(path, "ab")  # noqa: SIM115  # held for the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerError(f"another worker is running on this SQLite database ({path} "
                              "is locked); SQLite allows one worker") from None
        yield
    finally:
        handle.close()


class Worker:
    """One worker process's loop. `run_once` does what is due now and says how much."""

    def __init__(self, app: Flask, settings: Settings | None = None) -> None:
        self.app = app
        self.db = get_db(app)
        self.settings = settings or Settings.from_config(app.config)
        self.locking = self.db.engine.dialect.name == "postgresql"
        self.pool = ThreadPoolExecutor(max_workers=self.settings.batch,
                                       thread_name_prefix="webhook")
        self._job_due: dict[str, float] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _writing(self) -> Any:
        return nullcontext() if self.locking else write_intent()

    # --- fan-out -----------------------------------------------------------------------

    def dispatch(self) -> int:
        """Make one delivery per new due event and active subscription of its customer to
        its type made before the event occurred; stamp the events dispatched. Returns the
        events dispatched."""
        now = utcnow()
        due = (select(Event).where(Event.dispatched_at.is_(None), Event.due_at <= now)
               .order_by(Event.id).limit(DISPATCH_BATCH))
        with self.db.sessionmaker() as session:
            if not self.locking and session.scalar(due.with_only_columns(Event.id)) is None:
                return 0  # nothing new: no write lock taken on SQLite
            session.rollback()
            with self._writing():
                events = session.scalars(due.with_for_update(skip_locked=True)).all()
                if not events:
                    session.rollback()
                    return 0
                customers = {event.customer_id for event in events}
                hooks = session.scalars(select(Webhook).where(
                    Webhook.active.is_(True), Webhook.customer_id.in_(customers))).all()
                for event in events:
                    for hook in hooks:
                        # A subscription receives what happens from its creation on, not
                        # the customer's earlier events still waiting to be dispatched.
                        if hook.customer_id == event.customer_id and event.type in hook.events \
                                and event.occurred_at >= hook.created_at:
                            session.add(Delivery(
                                webhook_id=hook.id, event_id=event.id,
                                state=DeliveryState.PENDING, next_attempt_at=now,
                                window_start=now, created_at=now))
                    event.dispatched_at = now
                session.commit()
        return len(events)

    # --- delivery ----------------------------------------------------------------------

    def deliver(self) -> int:
        """Attempt the due deliveries (up to `batch`, concurrently) and record each
        outcome. Returns the attempts made."""
        now = utcnow()
        stmt = (select(Delivery).join(Webhook, Webhook.id == Delivery.webhook_id)
                .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now,
                       Webhook.active.is_(True))
                .order_by(Delivery.next_attempt_at, Delivery.id).limit(self.settings.batch)
                .options(selectinload(Delivery.webhook), selectinload(Delivery.event)))
        if self.locking:
            stmt = stmt.with_for_update(skip_locked=True, of=Delivery)
        with self.db.sessionmaker() as session:
            deliveries = session.scalars(stmt).all()
            if not deliveries:
                session.rollback()
                return 0
            attempts = [build_attempt(d, now) for d in deliveries]
            if not self.locking:
                session.commit()  # end the read: no transaction is open while POSTing
            outcomes = list(self.pool.map(
                lambda a: send(a, timeout=self.settings.timeout,
                               allow_private=self.settings.allow_private), attempts))
            done = utcnow()
            seen = {d.id: d.window_start for d in deliveries}
            with self._writing():
                for delivery, outcome in zip(deliveries, outcomes, strict=True):
                    if not self.locking:
                        # Unlocked while sending (SQLite): a redelivery asked meanwhile
                        # wins; this attempt is not counted over it.
                        session.refresh(delivery)
                        if delivery.window_start != seen[delivery.id]:
                            continue
                    record_outcome(delivery, outcome, done, self.settings)
                    log.info("delivery %s (%s) to %s: %s", delivery.id, delivery.event.type,
                             delivery.webhook.url, outcome.status or outcome.error)
                session.commit()
        return len(attempts)

    # --- periodic jobs -----------------------------------------------------------------

    def run_jobs(self) -> int:
        """Run each registered job that is due (by its last run, whichever worker ran
        it). Returns the jobs run."""
        ran = 0
        for job in list(PERIODIC_JOBS.values()):
            if self._job_due.get(job.name, 0.0) <= time.monotonic():
                ran += self._run_job(job)
        return ran

    def _run_job(self, job: PeriodicJob) -> int:
        with self.db.sessionmaker() as session, self._writing():
            row = session.get(JobRun, job.name, with_for_update={"skip_locked": True}
                              if self.locking else None)
            if row is None:
                try:
                    session.add(JobRun(name=job.name, last_run_at=None, last_error=""))
                    session.commit()
                except IntegrityError:  # another worker made the row first
                    session.rollback()
                    return 0
                row = session.get(JobRun, job.name, with_for_update={"skip_locked": True}
                                  if self.locking else None)
                if row is None:
                    session.rollback()
                    return 0
            now = utcnow()
            if row.last_run_at is not None and now < row.last_run_at + job.every:
                wait = (row.last_run_at + job.every - now).total_seconds()
                self._job_due[job.name] = time.monotonic() + wait
                session.rollback()
                return 0
            try:
                with session.begin_nested():
                    job.run(session)
                row.last_error = ""
            except Exception as exc:  # a job's failure must not stop the worker
                log.exception("periodic job %s failed", job.name)
                row.last_error = (str(exc) or type(exc).__name__)[:500]
            row.last_run_at = now
            session.commit()
        self._job_due[job.name] = time.monotonic() + job.every.total_seconds()
        return 1

    # --- loop --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out, deliver and run due jobs once; the work done (0: nothing was due)."""
        return self.dispatch() + self.deliver() + self.run_jobs()

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set: again at once after work, else after the poll
        interval. A database error is logged and the loop goes on after a pause."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker iteration failed")
                busy = 0
                stop.wait(max(self.settings.poll, 1.0))
            if not busy:
                stop.wait(self.settings.poll)
