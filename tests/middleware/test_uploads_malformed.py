"""Malformed, abusive and broken uploads get a 4xx problem or a clean close; never a 500."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from middleware.demo import ROUTES
from middleware.fairuse import FairUseMiddleware
from middleware.uploads import UploadOptions
from ratelimit import ManualClock

from .conftest import Served, serving
from .uploading import BOUNDARY, MULTIPART, POLICY, body_of, demo_app, raw_request, who

pytestmark = pytest.mark.e2e
B = BOUNDARY


def post(served: Served, content: bytes, content_type: str = MULTIPART["Content-Type"]):
    sent = {**who("basic"), "Content-Type": content_type}
    return served.client.post("/v1/files", content=content, headers=sent)


def refused(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    detail: str = response.json()["detail"]
    return detail


def part(headers: str, data: bytes = b"x") -> bytes:
    return f"--{B}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"


FILE = 'Content-Disposition: form-data; name="f"; filename="f.bin"'
END = f"--{B}--\r\n".encode()


@pytest.mark.parametrize(
    ("content_type", "content", "detail"),
    [
        (
            "multipart/form-data",
            part(FILE) + END,
            "A multipart/form-data body needs a boundary in its Content-Type.",
        ),
        (
            "multipart/form-data; boundary=" + "b" * 300,
            part(FILE) + END,
            "The multipart boundary is not valid: Boundary length 300 exceeds maximum of 256.",
        ),
        (
            MULTIPART["Content-Type"],
            part(FILE).replace(B.encode(), b"another") + END,
            "The body is not valid multipart/form-data: Expected boundary character 102, got 97"
            " at index 4.",
        ),
        (
            MULTIPART["Content-Type"],
            part(FILE, b"cut short, no closing boundary"),
            "The multipart body ended before its closing boundary.",
        ),
        (
            MULTIPART["Content-Type"],
            f"--{B}\r\n\r\nno headers at all\r\n".encode() + END,
            'Part 1 has no Content-Disposition header with a "name".',
        ),
        (
            MULTIPART["Content-Type"],
            part('Content-Disposition: form-data; filename="nameless.bin"') + END,
            'Part 1 has no Content-Disposition header with a "name".',
        ),
        (
            MULTIPART["Content-Type"],
            part(FILE + "".join(f"\r\nX-Pad-{n}: {'p' * 3000}" for n in range(3))) + END,
            "The headers of part 1 are larger than 8,192 bytes.",
        ),
        (
            MULTIPART["Content-Type"],
            part(FILE + "\r\nX-Long: " + "p" * 20_000) + END,
            "The headers of part 1 are larger than 8,192 bytes.",
        ),
        (  # Starlette reads the last one, so the first must not hide the filename from us
            MULTIPART["Content-Type"],
            part('Content-Disposition: form-data; name="a"; x="\r\n' + FILE + '"') + END,
            "Part 1 has more than one Content-Disposition header.",
        ),
    ],
    ids=[
        "no-boundary",
        "boundary-too-long",
        "wrong-boundary",
        "truncated",
        "no-part-headers",
        "no-name",
        "part-headers-too-large",
        "one-header-too-large",
        "two-dispositions",
    ],
)
def test_malformed_multipart_is_a_400(uploads: Served, content_type, content, detail):
    assert refused(post(uploads, content, content_type)) == detail
    assert uploads.errors == []


def test_tens_of_thousands_of_tiny_parts_stop_at_the_cap(uploads: Served):
    def tiny_parts() -> Iterator[bytes]:
        for n in range(30_000):
            yield part(f'Content-Disposition: form-data; name="p{n}"', b"")
        yield END

    sent = {**who("basic"), **MULTIPART}
    response = uploads.client.post("/v1/files", content=tiny_parts(), headers=sent)
    assert refused(response) == "The upload has more than 1,000 parts."
    fine = b"".join(part(f'Content-Disposition: form-data; name="p{n}"') for n in range(1000))
    assert post(uploads, fine + END).status_code == 201
    assert uploads.errors == []


@pytest.fixture
def strict(storage_url: str, clock: ManualClock) -> Iterator[Served]:
    options = UploadOptions(max_parts=3, max_part_header_bytes=100, idle_timeout=0.3)
    with serving(demo_app(storage_url, clock, options)) as served:
        yield served


def test_limits_are_configurable(strict: Served):
    three = body_of([("a", "a", 1), ("b", "b", 1), ("c", "c", 1)])
    assert post(strict, three).status_code == 201
    four = body_of([("a", "a", 1), ("b", "b", 1), ("c", "c", 1), ("d", "d", 1)])
    assert refused(post(strict, four)) == "The upload has more than 3 parts."
    long_name = body_of([("f" * 100, "x.bin", 1)])
    assert refused(post(strict, long_name)) == "The headers of part 1 are larger than 100 bytes."


def test_a_stalled_upload_times_out_with_408(strict: Served):
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Workspace-ID: ws\nX-Plan: basic\n"
        f"Content-Type: {MULTIPART['Content-Type']}\nContent-Length: 1000\n"
    )
    raw = raw_request(strict.url, head, part(FILE)[:40])  # then nothing more, connection open
    status_line, _, body = raw.partition(b"\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body) == {
        "type": "urn:fairuse:problem:request-timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": "The upload stalled: no data arrived for 0.3 seconds.",
    }
    assert strict.errors == []


def test_a_client_that_hangs_up_midway_gets_a_clean_close(uploads: Served):
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Account-ID: acct\nX-Workspace-ID: ws\n"
        f"X-Plan: basic\nContent-Type: {MULTIPART['Content-Type']}\nContent-Length: 100000\n"
    )
    assert raw_request(uploads.url, head, part(FILE, b"a" * 5000)[:-2], close=True) == b""
    usage = uploads.client.get("/v1/usage", headers=who("basic")).json()["limits"]
    quota = next(x for x in usage if x["name"] == "upload_bytes_per_year")
    assert quota["used"] == 0  # nothing was accepted, so nothing is counted
    assert uploads.errors == []


def test_a_content_length_shorter_than_the_body_only_delivers_what_it_declares(uploads: Served):
    """The server frames the body by Content-Length: the excess is a bad next request."""
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Workspace-ID: ws\nX-Plan: basic\n"
        "Content-Type: application/octet-stream\nContent-Length: 50\n\n"
    )
    parts = urlsplit(uploads.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"a" * 50)
        first = b""
        while b"}]}" not in first:
            first += sock.recv(65536)
        sock.sendall(b"a" * 150_000)  # more than declared: no request line, not the upload
        rest = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                rest += chunk
    assert first.startswith(b"HTTP/1.1 201 ")
    files = json.loads(first.partition(b"\r\n\r\n")[2])["files"]
    assert files == [{"field": None, "filename": None, "size": 50}]
    assert rest.startswith(b"HTTP/1.1 400 ")  # uvicorn's own answer to a garbled request
    assert uploads.errors == []


def test_content_length_with_chunked_is_refused(uploads: Served):
    """A length of 10 beside a chunked 200 KB file never reaches the guard or the app."""
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Workspace-ID: ws\nX-Plan: basic\n"
        "Content-Type: application/octet-stream\nContent-Length: 10\n"
        "Transfer-Encoding: chunked\n"
    )
    chunk = b"%x\r\n%s\r\n" % (200_000, b"a" * 200_000)
    raw = raw_request(uploads.url, head, chunk + b"0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 ")  # uvicorn refuses the ambiguous framing itself
    assert uploads.errors == []


def test_raw_and_unguarded_requests_still_pass(uploads: Served):
    assert post(uploads, b"plain text", "text/plain").json() == {
        "files": [{"field": None, "filename": None, "size": 10}]
    }
    assert uploads.client.post("/v1/files", headers=who("basic")).json() == {
        "files": [{"field": None, "filename": None, "size": 0}]
    }
    fields = body_of([], fields=[("title", "hello")])
    assert post(uploads, fields).json() == {"files": []}


def test_upload_options_must_be_positive():
    with pytest.raises(ValueError, match="every limit must be positive"):
        UploadOptions(max_parts=0)
    with pytest.raises(ValueError, match="every limit must be positive"):
        UploadOptions(idle_timeout=0)


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        ("Content-Type", "application/octet-stream", MULTIPART["Content-Type"]),
        ("Content-Type", MULTIPART["Content-Type"], "application/octet-stream"),
        ("Content-Disposition", 'attachment; filename="a.bin"', 'attachment; filename="b.bin"'),
    ],
)
def test_a_body_header_sent_twice_is_refused(uploads: Served, name: str, first: str, second: str):
    """Frameworks differ on which copy they read: a 6 MB field must not pass as a raw file."""
    content = part('Content-Disposition: form-data; name="note"', b"n" * 200_000) + END
    sent = [*who("basic").items(), (name, first), (name, second)]
    if name != "Content-Type":
        sent.append(("Content-Type", "application/octet-stream"))
    response = uploads.client.post("/v1/files", content=content, headers=sent)
    assert refused(response) == f"The {name} header is sent more than once."
    assert uploads.errors == []


def test_the_media_type_is_read_whatever_its_case(uploads: Served):
    """Multipart/Form-Data is multipart to the guard and the app alike (RFC 9110: no case)."""
    mixed_case = "Multipart/Form-Data; boundary=" + BOUNDARY
    too_large = post(uploads, body_of([("f", "f.bin", 120_000)]), mixed_case)
    assert "larger than 100 KB" in refused(too_large, 413)
    accepted = post(uploads, body_of([("f", "f.bin", 1_000)]), mixed_case)
    assert accepted.json() == {"files": [{"field": "f", "filename": "f.bin", "size": 1_000}]}
    assert uploads.errors == []


async def _stream_while_reading(request: Request) -> StreamingResponse:
    """Reads the body inside a streaming response: Starlette's disconnect listener then waits
    on receive() beside it, and uvicorn hands both waiters the body's last message."""

    async def answer() -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        yield b"%d" % size

    return StreamingResponse(answer(), status_code=201)


def test_a_body_read_beside_a_disconnect_listener_is_recorded_once(
    storage_url: str, clock: ManualClock
):
    routes = [Route("/v1/files", _stream_while_reading, methods=["POST"]), *ROUTES]
    app = Starlette(routes=routes, middleware=[Middleware(
        FairUseMiddleware, plans=POLICY, storage=storage_url, clock=clock
    )])  # fmt: skip
    content = body_of([("f", "f.bin", 10_000)])

    def slowly() -> Iterator[bytes]:  # chunked, so that both tasks wait for the last part
        for at in range(0, len(content), 4096):
            time.sleep(0.05)
            yield content[at : at + 4096]

    with serving(app) as served:
        answer = served.client.post(
            "/v1/files", content=slowly(), headers={**who("basic"), **MULTIPART}
        )
        assert answer.status_code == 201  # what the app read depends on which task got each part
        usage = served.client.get("/v1/usage", headers=who("basic")).json()["limits"]
        quota = next(x for x in usage if x["name"] == "upload_bytes_per_year")
        assert quota["used"] == 10_000
        assert served.errors == []
