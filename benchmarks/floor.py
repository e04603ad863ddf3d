"""The floor of every exact Redis-backed limiter: the bare demo app behind one Redis round trip.

Each HTTP request waits for one EVALSHA of a script that does nothing (`return 1`), sent over
the same auto-pipelined connection fairuse uses (ratelimit/storage/resp.py), then goes to the
bare app. No limiter that checks a shared counter before answering can do less, so
`benchmarks/compare` measures this app at the same arrivals as the bare and protected ones: the
floor's latency over the bare app's is what the machine charges for one round trip, and
fairuse's over the floor's is what fairuse itself adds.

    FAIRUSE_STORAGE=redis://127.0.0.1:6390/0 uvicorn --factory benchmarks.floor:app_from_env
"""

from __future__ import annotations

import hashlib
import os

from starlette.types import ASGIApp, Receive, Scope, Send

from middleware.demo import create_bare_app, reply_wait_from_env, tune_gc_from_env
from ratelimit.storage.resp import PipelinedConnection

NOTHING = "return 1"


class OneRoundTrip:
    """Pure ASGI: every HTTP request waits for one round trip to Redis, then goes on."""

    def __init__(self, app: ASGIApp, url: str, *, timeout: float = 5.0) -> None:
        self.app = app
        sha = hashlib.sha1(NOTHING.encode()).hexdigest()  # Redis names scripts so
        self.connection = PipelinedConnection(
            url, NOTHING, sha, timeout=timeout, connect_timeout=timeout
        )
        self.command = self.connection.evalsha_command((), ())  # built once, sent every time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.connection.evalsha(self.command)
        await self.app(scope, receive, send)


def app_from_env() -> OneRoundTrip:
    """For `uvicorn --factory benchmarks.floor:app_from_env`: FAIRUSE_STORAGE names the Redis
    (as for the protected demo); FAIRUSE_DEMO_REPLY_MS and FAIRUSE_GC_TUNING as for the demo."""
    storage = os.environ.get("FAIRUSE_STORAGE", "")
    if not storage.startswith(("redis://", "unix://", "redis+unix://")):
        raise ValueError(f"FAIRUSE_STORAGE must be a redis:// or unix:// URL, got {storage!r}")
    tune, wait = tune_gc_from_env(), reply_wait_from_env()
    bare = create_bare_app(tune_gc_after_startup=tune, reply_wait=wait)
    return OneRoundTrip(bare, storage)
