"""The webhook sink against a real local HTTP server: signed, retried until it answers 2xx."""

from __future__ import annotations

import json
import threading
import time

from starlette.types import Receive, Scope, Send

from ratelimit.dispatch import EventDispatcher
from ratelimit.events import THRESHOLD, Event
from ratelimit.webhook import SIGNATURE_HEADER, WebhookSink, sign, verify_signature

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
