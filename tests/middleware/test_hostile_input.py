"""Hostile input, generated: identity headers, paths and multipart bodies never give a 500 or hang.

Most examples go straight to the ASGI app, so that a scope can hold what no HTTP server would
pass on (any bytes in a header, any code point in a path); a smaller share goes over real HTTP
through uvicorn as raw bytes on a socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message

from middleware.demo import ROUTES
from middleware.fairuse import FairUseMiddleware

from ..conftest import ROOT
from ..servers import serve_in_thread

HANG = 10.0  # seconds: an answer slower than this counts as a hang, not as slowness
PLANS = [b"sandbox", b"pro", b"unlimited", b"ltd"]
IDENTITY = [b"x-account-id", b"x-workspace-id", b"x-plan", b"x-user-id"]
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
PRINTABLE = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=40)
NASTY = st.sampled_from(["{", "}", ":", "%", "%00", "..", "/", "\x00", "\u2028", "\ud800", "é"])
LATIN1 = st.text(st.characters(max_codepoint=255, categories=["L", "N", "P", "S"]), max_size=130)
VALID = LATIN1.map(lambda t: t.encode("latin-1")).filter(lambda v: 0 < len(v) <= 128)
VALUE = VALID | st.binary(max_size=150) | st.sampled_from([b"", b" ", b"a" * 129, b"{x}:y%"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def app() -> ASGIApp:
    """The demo API behind fairuse with the shipped plans, in memory."""
    middleware = Middleware(
        FairUseMiddleware, plans=ROOT / "plans.toml", storage="memory://", reload_interval=None
    )
    return Starlette(routes=ROUTES, middleware=[middleware])


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def identity_headers() -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """Identity headers with at most one field made hostile (or dropped), maybe repeated."""

    def build(
        fields: dict[bytes, bytes | None],
        spoiled: bytes | None,
        bad: bytes | None,
        more: list[tuple[bytes, bytes]],
    ) -> list[tuple[bytes, bytes]]:
        if spoiled is not None:
            fields[spoiled] = bad
        return [(name, value) for name, value in fields.items() if value is not None] + more

    fields = st.fixed_dictionaries(
        {
            b"x-workspace-id": VALID,
            b"x-plan": st.sampled_from(PLANS),
            b"x-account-id": st.none() | VALID,
            b"x-user-id": st.none() | VALID,
        }
    )
    extra = st.lists(st.tuples(st.sampled_from(IDENTITY), VALUE), max_size=2)
    return st.builds(build, fields, st.none() | st.sampled_from(IDENTITY), st.none() | VALUE, extra)


def ids() -> st.SearchStrategy[str]:
    return PRINTABLE | ANY_TEXT | st.lists(NASTY | PRINTABLE, max_size=6).map("".join)


def call(
    loop: asyncio.AbstractEventLoop,
    app: ASGIApp,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> int:
    """One request through the ASGI app; its status. An exception or a hang fails the test."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[Message] = []
    given = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return given.pop() if given else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    loop.run_until_complete(asyncio.wait_for(app(scope, receive, send), HANG))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    event(f"status {starts[0]['status']}")  # --hypothesis-show-statistics: what was reached
    return int(starts[0]["status"])


@FAST
@given(headers=identity_headers(), chat=ids())
def test_identity_headers_and_chat_ids(
    app: ASGIApp, loop: asyncio.AbstractEventLoop, headers: list[tuple[bytes, bytes]], chat: str
):
    path = f"/v1/chats/{chat}/messages"
    status = call(loop, app, "POST", path, headers, b'{"text": "hi"}')
    assert status in {200, 400, 403, 404, 429}, (status, headers, path)


@FAST
@given(
    path=ANY_TEXT | ids().map(lambda x: f"/v1/{x}") | ids().map(lambda x: f"/v1/chats/{x}"),
    method=st.sampled_from(["POST", "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "BREW"]),
    plan=st.sampled_from(PLANS),
)
def test_any_path_and_method(
    app: ASGIApp, loop: asyncio.AbstractEventLoop, path: str, method: str, plan: bytes
):
    headers = [(b"x-workspace-id", b"w"), (b"x-plan", plan)]
    status = call(loop, app, method, "/" + path.lstrip("/"), headers)
    assert status < 500, (status, method, path)


def multipart() -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(boundary, body): well-formed parts, broken parts and plain noise."""
    boundary = st.binary(min_size=1, max_size=70).filter(
        lambda b: b"\r" not in b and b"\n" not in b
    )
    name = st.binary(max_size=20)
    part = st.builds(
        lambda n, f, ctype, data: b"".join(
            [
                b'Content-Disposition: form-data; name="' + n + b'"',
                b'; filename="' + f + b'"' if f is not None else b"",
                b"\r\nContent-Type: " + ctype if ctype else b"",
                b"\r\n\r\n",
                data,
            ]
        ),
        name,
        st.none() | st.binary(max_size=20),
        st.sampled_from([b"", b"text/plain", b"application/octet-stream", b"\x00"]),
        st.binary(max_size=300),
    )

    def assemble(b: bytes, parts: list[bytes], tail: bytes, noise: bytes) -> tuple[bytes, bytes]:
        body = b"".join(b"--" + b + b"\r\n" + p + b"\r\n" for p in parts)
        return b, body + tail + noise

    return st.builds(
        assemble,
        boundary,
        st.lists(part | st.binary(max_size=80), max_size=4),
        st.sampled_from([b"", b"--", b"--BOUNDARY--\r\n"]),
        st.binary(max_size=40),
    ).map(lambda t: (t[0], t[1].replace(b"BOUNDARY", t[0])))


# Starlette's form parser leaves the spooled file of a part cut off before its boundary unclosed
# (it is collected at once, with a ResourceWarning): a known upstream leak, not an error answer.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*SpooledTemporaryFile:pytest.PytestUnraisableExceptionWarning"
)
@FAST
@given(form=multipart(), plan=st.sampled_from(PLANS), quoted=st.booleans())
def test_multipart_bodies(
    app: ASGIApp,
    loop: asyncio.AbstractEventLoop,
    form: tuple[bytes, bytes],
    plan: bytes,
    quoted: bool,
):
    boundary, body = form
    value = b'"' + boundary + b'"' if quoted else boundary
    headers = [
        (b"x-workspace-id", b"uploader"),
        (b"x-plan", plan),
        (b"content-type", b"multipart/form-data; boundary=" + value),
    ]
    status = call(loop, app, "POST", "/v1/files", headers, body)
    assert status in {201, 400, 413, 429}, (status, boundary, body)


@pytest.fixture(scope="module")
def server(app: ASGIApp) -> Iterator[tuple[str, int]]:
    with serve_in_thread(app) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def raw_request(address: tuple[str, int], request: bytes) -> bytes:
    """Send bytes on a fresh connection; the status line of the answer (hang: socket timeout)."""
    with socket.create_connection(address, timeout=HANG) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


WIRE_VALUE = (VALID | st.binary(max_size=100)).filter(lambda v: not set(v) & set(b"\r\n"))
# request targets: percent-encoded code points, with the characters keys care about left raw
TARGET = ANY_TEXT.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="{}:%@!$&'()*+,;="))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=TARGET.filter(bool) | st.binary(min_size=1, max_size=40).filter(lambda t: b" " not in t),
    workspace=WIRE_VALUE,
    plan=WIRE_VALUE | st.sampled_from(PLANS),
)
def test_raw_bytes_over_http(
    server: tuple[str, int], target: str | bytes, workspace: bytes, plan: bytes
):
    if isinstance(target, str):
        target = target.encode("ascii")
    request = b"POST /v1/chats/" + target + b"/messages HTTP/1.1\r\nHost: x\r\n"
    request += b"X-Workspace-ID: " + workspace + b"\r\nX-Plan: " + plan + b"\r\n"
    request += b"Content-Type: application/json\r\nContent-Length: 13\r\n"
    request += b'Connection: close\r\n\r\n{"text":"hi"}'
    status_line = raw_request(server, request)
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    status = int(status_line.split()[1])
    event(f"status {status}")
    assert status < 500, (status_line, request)


def test_chat_ids_that_are_not_utf8_are_refused_not_merged(server: tuple[str, int]):
    """The server decodes `%FE` and `%FF` alike to U+FFFD: taken as they come, every such id
    would be one chat session. A real U+FFFD, sent as its UTF-8 bytes, is an id like any other."""

    def status_of(chat: bytes) -> int:
        request = b"POST /v1/chats/" + chat + b"/messages HTTP/1.1\r\nHost: x\r\n"
        request += b"X-Workspace-ID: not-utf8\r\nX-Plan: sandbox\r\n"
        request += b"Content-Type: application/json\r\nContent-Length: 13\r\n"
        request += b'Connection: close\r\n\r\n{"text":"hi"}'
        return int(raw_request(server, request).split()[1])

    assert [status_of(chat) for chat in (b"%FE", b"%FF", b"a%C0b", b"%80")] == [400] * 4
    assert status_of(b"%EF%BF%BD") == 200


def test_ids_spelled_two_ways_are_refused_not_made_two_tenants(server: tuple[str, int]):
    """ "José" decomposed (e + U+0301) or with an invisible character added would be a tenant, or
    a chat, apart from "José": refused with 400, over the wire, in a header and in the path."""

    def status_of(chat: bytes, workspace: str) -> int:
        request = b"POST /v1/chats/" + chat + b"/messages HTTP/1.1\r\nHost: x\r\n"
        request += b"X-Workspace-ID: " + workspace.encode() + b"\r\nX-Plan: sandbox\r\n"
        request += b"Content-Type: application/json\r\nContent-Length: 13\r\n"
        request += b'Connection: close\r\n\r\n{"text":"hi"}'
        return int(raw_request(server, request).split()[1])

    assert status_of(b"Jos%C3%A9", "Jos\u00e9") == 200
    assert status_of(b"Jose%CC%81", "Jos\u00e9") == 400  # the chat id, decomposed
    assert status_of(b"Jos%C3%A9", "Jose\u0301") == 400  # the workspace, decomposed
    assert status_of(b"Jos%C3%A9%CD%8F", "Jos\u00e9") == 400  # + the grapheme joiner U+034F
    assert status_of(b"Jos%C3%A9", "Jos\u00e9\u3164") == 400  # + the Hangul filler U+3164
