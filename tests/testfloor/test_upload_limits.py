"""Upload limits: a request body over UPLOAD_LIMIT_MIB is 413 whether it comes with a
Content-Length or chunked without one, and a gzip upload inflates with a bounded output
(GZIP_INFLATE_LIMIT_MIB), so a gzip bomb is 413 and costs the worker at most the limit.
Uploads stream through the import: the worker never holds one whole."""

from __future__ import annotations

import io
import tracemalloc
import zlib

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from mes.testfloor.models import TestRun
from tests.helpers import refused
from tests.testfloor.helpers import lot_at_final_test, lot_file

pytestmark = pytest.mark.usefixtures("plant")
OCTET = {"Content-Type": "application/octet-stream"}
MIB = 1024 * 1024


@pytest.fixture
def op(api):
    return api("operator")


@pytest.fixture
def ft_lot(session):
    return lot_at_final_test(session, "LOT-FT", 2000)


@pytest.fixture
def upload_limit(app, monkeypatch):
    """Uploads limited to 1 MiB for the test."""
    monkeypatch.setitem(app.config, "UPLOAD_LIMIT_MIB", 1)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", MIB)
    return MIB


def chunked(client, caller, path: str, body: bytes, content_type: str = OCTET["Content-Type"]):
    """POST `body` the way a chunked upload reaches the application: no Content-Length,
    the server terminating the input stream (gunicorn and Werkzeug's server both do)."""
    environ = EnvironBuilder(path="/api/v1" + path, method="POST", input_stream=io.BytesIO(body),
                             headers={**caller.headers, "Content-Type": content_type,
                                      "Transfer-Encoding": "chunked"}).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


def padded(size: int) -> bytes:
    """A valid STDF file made `size` bytes long by NUL padding after its last record (which
    the reader accepts), so that any cut of it still reads as a complete file."""
    data = lot_file(5)
    return data + b"\0" * (size - len(data))


def test_chunked_upload_over_the_limit_is_413_like_the_same_body_with_a_length(
        client, op, ft_lot, session, upload_limit):
    body = padded(upload_limit + 100)
    with_length = refused(session, lambda: op.post("/lots/LOT-FT/stdf", data=body,
                                                   headers=OCTET), 413, "too_large")
    without = refused(session, lambda: chunked(client, op, "/lots/LOT-FT/stdf", body),
                      413, "too_large")
    assert without == with_length
    assert "1 MiB" in without["message"] and "gzip" in without["message"]
    assert session.query(TestRun).count() == 0


def test_chunked_upload_one_byte_over_the_limit_is_413(client, op, ft_lot, session,
                                                        upload_limit):
    refused(session, lambda: chunked(client, op, "/lots/LOT-FT/stdf",
                                     padded(upload_limit + 1)), 413, "too_large")


BOUNDARY = "XyZ"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(data: bytes) -> bytes:
    """A multipart body with `data` as the field `file`."""
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.stdf\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def test_chunked_multipart_upload_over_the_limit_is_413(client, op, ft_lot, session,
                                                        upload_limit):
    refused(session, lambda: chunked(client, op, "/lots/LOT-FT/stdf",
                                     multipart(padded(upload_limit)), MULTIPART),
            413, "too_large")


def test_chunked_upload_within_the_limit_is_imported_whole(client, op, ft_lot,
                                                          upload_limit):
    body = padded(upload_limit)
    resp = chunked(client, op, "/lots/LOT-FT/stdf", body)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["file_size"] == len(body)
    assert resp.get_json()["parts_tested"] == 5


def test_the_upload_page_says_the_limit_too(client, login, make_user, ft_lot, session,
                                            upload_limit):
    login(make_user("operator"))
    page = refused(session, lambda: client.post(
        "/lots/LOT-FT/stdf/upload", data=multipart(padded(upload_limit)),
        content_type=MULTIPART), 413)
    assert "1 MiB" in page and "gzip" in page


# --- gzip bombs -----------------------------------------------------------------------------

INFLATED_MIB = 300


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A valid STDF file followed by 300 MiB of NUL padding, gzipped: about 300 KB that
    inflate to 300 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(lot_file(5))]
    zeros = bytes(MIB)
    out += [packer.compress(zeros) for _ in range(INFLATED_MIB)]
    out.append(packer.flush())
    return b"".join(out)


def test_a_gzip_bomb_is_413_naming_the_limit_and_inflates_no_further(
        app, op, ft_lot, session, monkeypatch, bomb):
    monkeypatch.setitem(app.config, "GZIP_INFLATE_LIMIT_MIB", 4)
    assert len(bomb) < MIB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        error = refused(session, lambda: op.post("/lots/LOT-FT/stdf", data=bomb, headers=OCTET),
                        413, "too_large", "file")
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert "4 MiB" in error["message"] and "GZIP_INFLATE_LIMIT_MIB" in error["message"]
    # Inflated in steps of 1 MiB to a temporary file, the upload and the request: far below
    # the 300 MiB the bomb inflates to, and below the 100 MiB allowed beyond the limit.
    assert peak < 4 * MIB + 16 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_a_gzip_file_within_the_inflate_limit_is_imported(app, op, ft_lot, monkeypatch, bomb):
    monkeypatch.setitem(app.config, "GZIP_INFLATE_LIMIT_MIB", INFLATED_MIB + 1)
    resp = op.post("/lots/LOT-FT/stdf", data=bomb, headers=OCTET)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["parts_tested"] == 5


# --- streaming ------------------------------------------------------------------------------

STREAMED_MIB = 32


@pytest.mark.parametrize("as_multipart", [False, True], ids=["raw body", "multipart"])
def test_an_upload_streams_through_the_import_without_being_held_in_memory(
        app, client, op, ft_lot, monkeypatch, as_multipart):
    monkeypatch.setitem(app.config, "UPLOAD_LIMIT_MIB", STREAMED_MIB + 1)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", (STREAMED_MIB + 1) * MIB)
    data = padded(STREAMED_MIB * MIB)
    body = multipart(data) if as_multipart else data
    environ = EnvironBuilder(
        path="/api/v1/lots/LOT-FT/stdf", method="POST", input_stream=io.BytesIO(body),
        content_length=len(body),
        headers={**op.headers, "Content-Type": MULTIPART if as_multipart
                 else OCTET["Content-Type"]}).get_environ()
    tracemalloc.start()
    try:
        resp = client.open(Request(environ))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["file_size"], resp.get_json()["parts_tested"]) == (len(data), 5)
    # Read in pieces of 1 MiB to a temporary file and from there through a memory map:
    # a few pieces at a time, never the 32 MiB of the file.
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"
