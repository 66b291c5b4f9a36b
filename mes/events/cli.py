"""`mes worker`: the worker loop with signal handling and one line per delivery on
stderr."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click
from flask import current_app

from mes.events.worker import Settings, Worker, WorkerError, single_worker_lock


def run_worker(*, once: bool = False) -> None:
    """Run the worker in the current application until SIGTERM or SIGINT (or once)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # the real app
    settings = Settings.from_config(app.config)
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    try:
        with single_worker_lock(app.config["DATABASE_URL"], app.config["INSTANCE_PATH"]):
            worker = Worker(app, settings)
            try:
                if once:
                    worker.run_once()
                    return
                signal.signal(signal.SIGTERM, _stop)
                signal.signal(signal.SIGINT, _stop)
                click.echo(f"Worker started (poll every {settings.poll:g} s)", err=True)
                worker.run(stop)
                click.echo("Worker stopped", err=True)
            finally:
                worker.close()
    except WorkerError as exc:
        raise click.ClickException(str(exc)) from None
