"""A webhook sink: each event is POSTed as JSON, signed with HMAC-SHA256, retried until 2xx.

Headers: `Fairuse-Event-Id` (the same on every retry; the signed body holds it too),
`Fairuse-Event-Type` and `Fairuse-Signature: t=TIMESTAMP,v1=HEX`, where HEX is the HMAC-SHA256
of "TIMESTAMP.BODY" under the shared secret. Receivers check it with `verify_signature`, which
also refuses old timestamps, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from urllib.parse import urlsplit

import httpx

from .events import Event

SIGNATURE_HEADER = "Fairuse-Signature"
TOLERANCE = 300.0  # seconds a signature stays acceptable


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: float = TOLERANCE
) -> bool:
    """True when `header` signs `body` under `secret` and is at most `tolerance` seconds old."""
    parts = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    # ASCII digits of a sane length, ASCII hex: anything else is no signature, never an error
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12 and given.isascii()):
        return False
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


class WebhookError(Exception):
    """The receiver did not answer 2xx; the dispatcher retries."""


class WebhookSink:
    """POSTs each event to `url`; any answer but 2xx, or no answer, is retried with backoff."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        attempts: int = 8,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        timeout: float = 10.0,
        name: str = "webhook",
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a non-empty signing secret")
        self.url = url
        self.where = _without_secrets(url)  # for logs: a path or query may carry a token
        self.secret = secret
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.name = name
        self._client: httpx.AsyncClient | None = None

    async def deliver(self, event: Event) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        body = event.to_json()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "fairuse-webhook",
            "Fairuse-Event-Id": event.id,
            "Fairuse-Event-Type": event.type,
            SIGNATURE_HEADER: sign(self.secret, body, int(time.time())),
        }
        # One deadline for the whole attempt (httpx's applies to each read, so a receiver
        # that trickles bytes would hold the sink for ever), and the answer's body is never
        # read: only its status counts, whatever size the receiver sends.
        async with (
            asyncio.timeout(self.timeout),
            self._client.stream("POST", self.url, content=body, headers=headers) as response,
        ):
            status = response.status_code
        if not 200 <= status < 300:
            raise WebhookError(f"{self.where} answered {status}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _without_secrets(url: str) -> str:
    """scheme://host[:port]/... : what a log may show of a webhook URL."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port: the request fails and says so
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}/..."
