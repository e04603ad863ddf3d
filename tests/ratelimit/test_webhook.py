"""The webhook sink against a real local HTTP server: signed, retried until it answers 2xx."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from starlette.types import Receive, Scope, Send

from ratelimit.dispatch import EventDispatcher
from ratelimit.events import THRESHOLD, Event
from ratelimit.webhook import SIGNATURE_HEADER, WebhookError, WebhookSink, sign, verify_signature

from ..servers import serve_in_thread

SECRET = "s3cret"


class Receiver:
    """An ASGI endpoint that fails its first `failures` requests with 500, and records all."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.delivered = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, body))
        status = 500 if len(self.requests) <= self.failures else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        if status == 204:
            self.delivered.set()


async def test_delivered_after_a_failure_with_the_same_id_and_a_valid_signature():
    receiver = Receiver(failures=1)
    with serve_in_thread(receiver) as url:
        sink = WebhookSink(f"{url}/hooks/fairuse", SECRET, backoff=0.05)
        dispatcher = EventDispatcher([sink])
        sent = Event(THRESHOLD, 1_795_000_000.0, "acme", "main", "pro", {"limit": {"used": 8}})
        dispatcher.emit([sent])
        await dispatcher.aclose()
    assert receiver.delivered.is_set()
    assert len(receiver.requests) == 2  # one 500, then the 204
    for headers, body in receiver.requests:
        assert headers["fairuse-event-id"] == sent.id
        assert headers["fairuse-event-type"] == "usage.threshold"
        assert headers["content-type"] == "application/json"
        assert verify_signature(SECRET, headers[SIGNATURE_HEADER.lower()], body)
        assert json.loads(body) == sent.to_dict()


async def test_an_unreachable_receiver_is_given_up_after_the_attempts():
    with serve_in_thread(Receiver(failures=0)) as url:
        pass  # the server is gone: its port refuses connections
    sink = WebhookSink(url, SECRET, attempts=3, backoff=0.01)
    dispatcher = EventDispatcher([sink])
    dispatcher.emit([Event(THRESHOLD, 0.0, "a", "w", "p")])
    await dispatcher.aclose()  # returns: three refused connections, then given up


def test_signatures_refuse_tampering_other_secrets_and_old_timestamps():
    body = b'{"id":"1"}'
    now = int(time.time())
    header = sign(SECRET, body, now)
    assert verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature("other", header, body)
    assert not verify_signature(SECRET, sign(SECRET, body, now - 301), body)
    assert not verify_signature(SECRET, "v1=abc", body)


def test_signatures_answer_false_to_garbage_and_allow_a_space():
    body = b'{"id":"1"}'
    now = int(time.time())
    good = sign(SECRET, body, now)
    assert verify_signature(SECRET, good.replace(",", ", "), body)
    for header in (f"t=²,v1={'a' * 64}", f"t={'9' * 5000},v1=ab", f"t={now},v1=é", "t=,v1=", ""):
        assert verify_signature(SECRET, header, body) is False  # never an exception


class Answering:
    """A raw receiver that reads a request, then writes `answer` (a byte at a time, with
    `trickle` seconds between them) and holds the connection open until closed."""

    def __init__(self, answer: bytes, *, trickle: float = 0.0) -> None:
        self.answer, self.trickle = answer, trickle
        self.done = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks/T0SECRET?key=abc123"

    async def __aexit__(self, *exc: object) -> None:
        self.done.set()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            pieces = [self.answer[at : at + 1] for at in range(len(self.answer))]
            for piece in pieces if self.trickle else [self.answer]:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(self.trickle)
            await self.done.wait()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def test_a_receiver_that_trickles_its_answer_fails_the_attempt_at_the_deadline():
    """httpx's timeout restarts with every byte; the attempt has one deadline."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    async with Answering(answer, trickle=0.1) as url:
        sink = WebhookSink(url, SECRET, timeout=1.0)
        started = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                await sink.deliver(Event(THRESHOLD, 0.0, "a", "w", "p"))
            assert time.monotonic() - started < 3.0
        finally:
            await sink.aclose()


async def test_an_answers_body_is_never_read_and_the_url_is_not_logged():
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 1000
    async with Answering(answer) as url:
        sink = WebhookSink(url, SECRET, timeout=5.0)
        started = time.monotonic()
        try:
            with pytest.raises(WebhookError) as failed:
                await sink.deliver(Event(THRESHOLD, 0.0, "a", "w", "p"))
            assert time.monotonic() - started < 2.0  # the status was enough: no 1 GB read
            assert str(failed.value).endswith("/... answered 500")
            assert "T0SECRET" not in str(failed.value)
            assert "abc123" not in str(failed.value)
        finally:
            await sink.aclose()
