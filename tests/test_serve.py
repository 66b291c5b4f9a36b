"""`mes serve` as a real process on loopback: clients trickling request bodies hold a thread
each, for a bounded time, and everyone else is still answered (mes/serving.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MES = Path(sys.executable).with_name("mes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> int:
    """The status of GET `path` on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: mes\r\nConnection: close\r\n\r\n".encode())
        return int(conn.recv(64).split(b" ", 2)[1])


@contextmanager
def served(tmp_path: Path, *options: str) -> Iterator[int]:
    """`mes serve` with `options` on a free port of loopback; stopped afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_")}
    env.update(MES_INSTANCE_PATH=str(tmp_path / "instance"), MES_SECRET_KEY="s" * 32)
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen([str(MES), "serve", "--port", str(port), *options], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(port, "/healthz", timeout=2) == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # quick shutdown
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # A worker still waiting on a client's socket: shutdown is not under test here.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


class SlowClient:
    """POSTs a form to /login announcing `length` bytes, then sends one byte a second."""

    def __init__(self, port: int, length: int = 10_000) -> None:
        self.conn = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.conn.sendall(f"POST /login HTTP/1.1\r\nHost: mes\r\nContent-Length: {length}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
                          "username=".encode())
        self.answer = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        try:
            while not self._stop.wait(1.0):
                self.conn.sendall(b"a")
        except OSError:
            pass  # the server closed the connection

    def read_answer(self, timeout: float) -> bytes:
        """Everything the server sends until it closes the connection."""
        self.conn.settimeout(timeout)
        while chunk := self.conn.recv(4096):
            self.answer += chunk
        return self.answer

    def close(self) -> None:
        self._stop.set()
        self.conn.close()
        self._thread.join(5)


@pytest.fixture
def slow_clients() -> Iterator[list[SlowClient]]:
    clients: list[SlowClient] = []
    yield clients
    for client in clients:
        client.close()


def test_healthz_and_other_clients_are_answered_while_slow_clients_hold_bodies(
        tmp_path, slow_clients):
    # One worker process (the fewest an installation has), body deadline far away: the slow
    # clients are still sending throughout.
    with served(tmp_path, "--workers", "1", "--body-timeout", "120") as port:
        slow_clients.extend(SlowClient(port) for _ in range(5))
        time.sleep(1.5)  # every slow client is inside the application, reading its body
        for _ in range(5):
            assert _get(port, "/healthz") == 200
        assert _get(port, "/api/v1/openapi.json") == 200
        assert _get(port, "/login") in (200, 500)  # answered (the database is not migrated)
        assert all(client.answer == b"" for client in slow_clients)
        for client in slow_clients:  # a stopping worker waits for requests in progress
            client.close()


def test_a_trickled_body_is_cut_at_its_deadline_and_frees_the_server(tmp_path,
                                                                     slow_clients):
    # More slow clients than threads: the server waits for none longer than the deadline.
    with served(tmp_path, "--workers", "1", "--threads", "2", "--body-timeout", "2") as port:
        started = time.monotonic()
        slow_clients.extend(SlowClient(port) for _ in range(4))
        time.sleep(0.5)
        assert _get(port, "/healthz", timeout=30) == 200
        for client in slow_clients:
            answer = client.read_answer(timeout=30)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"arrived too slowly" in answer
        assert time.monotonic() - started < 30


def test_an_honest_upload_longer_than_the_deadline_is_not_cut(tmp_path):
    # 4 s at about 256 KiB/s, well above the minimum rate of 64 KiB/s: past the 2 s deadline
    # on time alone, never behind the bytes it has sent.
    with served(tmp_path, "--workers", "1", "--body-timeout", "2") as port:
        piece = b"a" * (64 * 1024)
        pieces = 16
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(f"POST /login HTTP/1.1\r\nHost: mes\r\nConnection: close\r\n"
                         f"Content-Length: {len(piece) * pieces}\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
            for _ in range(pieces):
                conn.sendall(piece)
                time.sleep(0.25)
            answer = conn.recv(64)
        # The form is read whole and refused for what it is (no CSRF token), not for time.
        assert answer.startswith(b"HTTP/1.1 400"), answer


# --- the body deadline in process (mes.serving.SlowBodyGuard) ---------------------------

def _run_guarded(app, sock: socket.socket, *, body_timeout: float = 0.3, **environ: str):
    from mes.serving import SlowBodyGuard

    guard = SlowBodyGuard(app, body_timeout=body_timeout, tick=0.05)
    with sock.makefile("rb") as body:
        return guard({"wsgi.input": body, "gunicorn.socket": sock, **environ}, None)


def test_the_guard_leaves_requests_without_a_body_or_a_server_socket_alone():
    from mes.serving import SlowBodyGuard

    seen: list[object] = []
    guard = SlowBodyGuard(lambda environ, _start: seen.append(environ["wsgi.input"]) or [])
    marker = object()
    guard({"wsgi.input": marker, "CONTENT_LENGTH": "5"}, None)  # not under gunicorn
    guard({"wsgi.input": marker, "gunicorn.socket": object(), "CONTENT_LENGTH": ""}, None)
    guard({"wsgi.input": marker, "gunicorn.socket": object()}, None)
    assert seen == [marker, marker, marker]


@pytest.mark.parametrize("how", ["read", "read_all", "readline", "readlines", "iterate"])
def test_a_body_stalled_past_its_deadline_is_answered_408(how):
    from mes.serving import SlowBody

    server, client = socket.socketpair()
    client.sendall(b"line one\nline")  # then nothing more
    reads = {"read": lambda body: body.read(100), "read_all": lambda body: body.read(),
             "readline": lambda body: (body.readline(), body.readline()),
             "readlines": lambda body: body.readlines(), "iterate": lambda body: list(body)}

    def app(environ, _start):
        with pytest.raises(SlowBody, match="too slowly"):
            reads[how](environ["wsgi.input"])
        return [b"answered"]

    with server, client:
        assert _run_guarded(app, server, CONTENT_LENGTH="100") == [b"answered"]


def test_a_body_that_arrives_in_time_is_read_whole():
    server, client = socket.socketpair()
    client.sendall(b"a" * 200_000 + b"\nend")
    client.shutdown(socket.SHUT_WR)

    def app(environ, _start):
        body = environ["wsgi.input"]
        assert body.readline() == b"a" * 64 * 1024  # a line is read in pieces of 64 KiB
        assert len(body.read(10)) == 10
        return [body.read()]

    with server, client:
        [rest] = _run_guarded(app, server, HTTP_TRANSFER_ENCODING="chunked")
    assert rest.endswith(b"\nend") and len(rest) == 200_004 - 64 * 1024 - 10


def test_an_error_reading_the_body_in_time_is_the_servers_own():
    from mes.serving import SlowBodyGuard

    class Broken:
        def read(self, _size: int) -> bytes:
            raise OSError("reset by peer")

    def app(environ, _start):
        with pytest.raises(OSError, match="reset by peer"):
            environ["wsgi.input"].read(5)
        return []

    server, client = socket.socketpair()
    with server, client:
        SlowBodyGuard(app)({"wsgi.input": Broken(), "gunicorn.socket": server,
                            "CONTENT_LENGTH": "5"}, None)


def test_mes_serve_runs_threaded_workers_with_the_body_deadline(monkeypatch, tmp_path):
    from gunicorn.app.base import BaseApplication

    from mes import serving

    seen: dict[str, object] = {}

    def fake_run(self) -> None:
        self.load_config()
        seen.update(worker_class=self.cfg.worker_class_str, threads=self.cfg.threads,
                    keepalive=self.cfg.keepalive, app=self.load())

    monkeypatch.setattr(BaseApplication, "run", fake_run)
    monkeypatch.setenv("MES_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("MES_SECRET_KEY", "s" * 32)
    serving.run("127.0.0.1", 0, workers=1, body_timeout=7)
    assert (seen["worker_class"], seen["threads"], seen["keepalive"]) == ("gthread", 8, 5)
    guard = seen["app"].wsgi_app
    assert isinstance(guard, serving.SlowBodyGuard) and guard.body_timeout == 7
