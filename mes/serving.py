"""`mes serve`: the application under gunicorn, set up so that slow clients cannot stop it
answering everyone else.

- Threaded workers (gunicorn's `gthread`): each worker process serves THREADS requests at
  once, and a connection that has sent nothing yet waits in the worker's event loop, not in a
  thread. A client trickling its request takes one thread, not a whole process (with the
  `sync` worker, three such clients froze a three-process server).
- A deadline on every request body (`SlowBodyGuard`): the body must arrive within
  BODY_TIMEOUT seconds plus one second per MIN_BODY_RATE bytes received, so a trickling
  client holds its thread for a bounded time and is answered 408; an upload at any honest
  speed is never cut.

This bounds what one slow client costs; it does not make the server immune to thousands of
them (each still holds a thread until its deadline). In production a buffering reverse proxy
in front (nginx, HAProxy, Caddy) reads each request whole before passing it on; see the
README's Production section.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

from werkzeug.exceptions import RequestTimeout

# Defaults of `mes serve`, documented in the README's Production section.
THREADS = 8
BODY_TIMEOUT = 30.0
MIN_BODY_RATE = 64 * 1024  # bytes per second, after BODY_TIMEOUT
KEEPALIVE = 5
# Largest read passed to the server at once: progress is counted between reads.
_CHUNK = 64 * 1024


class SlowBody(RequestTimeout):
    description = ("The request body arrived too slowly; send it at a steady pace, or through "
                   "the plant's proxy.")


class _Body:
    """The request body (`wsgi.input`) of one request, with the bytes received counted."""

    def __init__(self, inner: Any, sock: socket.socket, guard: SlowBodyGuard) -> None:
        self.inner = inner
        self.sock = sock
        self.started = time.monotonic()
        self.received = 0
        self.timed_out = False
        self._guard = guard

    def deadline(self) -> float:
        return self.started + self._guard.body_timeout + self.received / self._guard.min_rate

    def _checked(self, read: Callable[[int], bytes], size: int) -> bytes:
        try:
            data = read(size)
        except Exception:
            if self.timed_out:
                raise SlowBody() from None
            raise
        if self.timed_out:
            raise SlowBody()
        self.received += len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        wanted = -1 if size is None or size < 0 else size
        parts = []
        while wanted != 0:
            data = self._checked(self.inner.read,
                                 _CHUNK if wanted < 0 else min(wanted, _CHUNK))
            if not data:
                break
            parts.append(data)
            if wanted > 0:
                wanted -= len(data)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = _CHUNK if size is None or size < 0 else min(size, _CHUNK)
        return self._checked(self.inner.readline, limit)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class SlowBodyGuard:
    """WSGI middleware (under gunicorn, which passes the client's socket as
    `gunicorn.socket`): a request body that misses its deadline (`_Body.deadline`) has the
    socket's reading side shut by a watchdog thread, so the read waiting on it returns at
    once, and the request is answered 408. Only bodies being read are watched."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *,
                 body_timeout: float = BODY_TIMEOUT, min_rate: float = MIN_BODY_RATE,
                 tick: float = 0.25) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.min_rate = min_rate
        self.tick = tick
        self._bodies: set[_Body] = set()
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sock = environ.get("gunicorn.socket")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if sock is None or not (chunked or environ.get("CONTENT_LENGTH", "0") not in ("", "0")):
            return self.app(environ, start_response)
        body = _Body(environ["wsgi.input"], sock, self)
        environ["wsgi.input"] = body
        with self._lock:
            self._bodies.add(body)
            if self._watchdog is None:
                # Started in the worker process on its first body (gunicorn forks workers).
                self._watchdog = threading.Thread(target=self._watch, name="mes-slow-bodies",
                                                  daemon=True)
                self._watchdog.start()
        try:
            # A Flask answer is complete when the application returns: the body is read.
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self._bodies.discard(body)

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            with self._lock:
                late = [body for body in self._bodies
                        if not body.timed_out and now > body.deadline()]
                for body in late:
                    body.timed_out = True
            for body in late:
                with suppress(OSError):  # the client left already
                    body.sock.shutdown(socket.SHUT_RD)


def run(host: str, port: int, *, workers: int | None = None, threads: int = THREADS,
        body_timeout: float = BODY_TIMEOUT) -> None:
    """Serve the application with gunicorn until stopped."""
    from flask import Flask
    from gunicorn.app.base import BaseApplication

    options = {"bind": f"{host}:{port}",
               "workers": workers or multiprocessing.cpu_count() * 2 + 1,
               "worker_class": "gthread", "threads": threads, "keepalive": KEEPALIVE,
               "accesslog": "-", "timeout": 60, "graceful_timeout": 20}

    class _Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            from mes import create_app

            # Each worker builds its own app and connection pool after the fork.
            app = create_app()
            # Flask's documented way to add WSGI middleware.
            guard = SlowBodyGuard(app.wsgi_app, body_timeout=body_timeout)
            app.wsgi_app = guard  # type: ignore[method-assign]  # middleware, as Flask documents
            return app

    _Server().run()
