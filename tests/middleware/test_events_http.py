"""Events from a served app: notices and denials reach the hooks, never delaying a request."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from middleware import FairUseMiddleware
from ratelimit import FairUseError, ManualClock
from ratelimit.event_stream import read_recent
from ratelimit.events import Event
from ratelimit.plans_file import parse_policy
from ratelimit.webhook import WebhookSink

from ..redis_servers import plain
from ..servers import serve_in_thread

pytestmark = pytest.mark.e2e
POLICY = Path(__file__).parents[1] / "ratelimit" / "policies" / "lifecycle.toml"
START = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def app(storage: str = "memory://", extra_toml: str = "", **options: Any) -> Starlette:
    policy = parse_policy(POLICY.read_text() + extra_toml, str(POLICY))
    routes = [
        Route("/calls", ok, methods=["POST"]),
        Route("/chats/{chat_id}", ok, methods=["POST"]),
        Route("/status", ok),
    ]
    options.setdefault("clock", ManualClock(START))
    fairuse = Middleware(FairUseMiddleware, plans=policy, storage=storage, **options)
    return Starlette(routes=routes, middleware=[fairuse])


class Collected:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.events) >= count, timeout=10)
            return [e.type for e in self.events]


@pytest.fixture
def collected() -> Collected:
    return Collected()


def test_a_notice_at_80_percent_and_none_on_a_plan_without_notices(collected: Collected):
    with serve_in_thread(app(on_event=collected)) as url, httpx.Client(base_url=url) as client:
        team = {"X-Workspace-ID": "t", "X-Plan": "team"}
        free = {"X-Account-ID": "other", "X-Workspace-ID": "f", "X-Plan": "free"}
        for n in range(5):
            assert client.post(f"/chats/c{n}", headers=free).status_code == 200
        assert client.post("/chats/c5", headers=free).status_code == 429
        for n in range(10):
            assert client.post(f"/chats/c{n}", headers=team).status_code == 200
        assert client.post("/chats/late", headers=team).status_code == 429
        assert collected.wait_for(3) == ["limit.exceeded", "usage.threshold", "limit.exceeded"]
    first, notice, denied = collected.events
    assert (first.plan, first.data["limit"]["name"]) == ("free", "sessions_per_month")
    assert first.data["upgrade"]["plan"] == "team"
    assert (notice.plan, notice.data["limit"]["used"]) == ("team", 8)
    assert (denied.plan, denied.data["limit"]["used"]) == ("team", 10)


def test_a_hanging_webhook_never_delays_a_request(collected: Collected):
    release, arrived = threading.Event(), threading.Event()
    received: list[bytes] = []

    async def hanging(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        received.append((await receive())["body"])
        arrived.set()
        await asyncio.to_thread(release.wait, 30)  # holds the webhook until the test is done
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_in_thread(hanging) as hook_url:
        hook = WebhookSink(hook_url, "secret", timeout=60)
        served = app(events=[hook], on_event=collected)
        with serve_in_thread(served) as url, httpx.Client(base_url=url, timeout=10) as client:
            who = {"X-Workspace-ID": "w", "X-Plan": "team"}
            statuses = [client.post("/calls", headers=who).status_code for _ in range(13)]
            assert statuses == [200] * 10 + [429] * 2 + [403]  # answered while the hook hangs
            assert collected.wait_for(3) == [
                "usage.threshold",
                "limit.exceeded",
                "workspace.suspended",
            ]
            assert arrived.wait(10)
            assert len(received) == 1  # the webhook still holds its first event
            assert client.post("/calls", headers=who).status_code == 403
            release.set()


@pytest.mark.redis
async def test_events_table_sends_to_the_stream_in_the_storage_redis(redis_url: str):
    events = '\n[events]\nstream = "app:events"\n'
    with serve_in_thread(app(redis_url, events)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            who = {"X-Workspace-ID": "w", "X-Plan": "team"}
            for _ in range(11):
                await client.post("/calls", headers=who)
    # the server has shut down: its lifespan drained the queue into the stream
    redis = Redis.from_url(plain(redis_url))
    try:
        found = [e["type"] for _, e in await read_recent(redis, "app:events", 10)]
    finally:
        await redis.aclose()
    assert found == ["usage.threshold", "limit.exceeded"]


def test_an_events_stream_needs_redis_storage():
    policy = parse_policy(POLICY.read_text() + '\n[events]\nstream = "x"\n', str(POLICY))
    with pytest.raises(FairUseError, match="needs Redis storage; this app stores in memory://"):
        FairUseMiddleware(Starlette(), plans=policy)


def test_a_webhook_secret_must_be_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TEST_HOOK_SECRET", raising=False)
    extra = (
        '\n[events]\nwebhook = "http://127.0.0.1:9/in"\nwebhook_secret_env = "TEST_HOOK_SECRET"\n'
    )
    policy = parse_policy(POLICY.read_text() + extra, str(POLICY))
    with pytest.raises(FairUseError, match="'TEST_HOOK_SECRET': that environment variable is"):
        FairUseMiddleware(Starlette(), plans=policy)
    monkeypatch.setenv("TEST_HOOK_SECRET", "s")
    assert [s.name for s in FairUseMiddleware(Starlette(), plans=policy).events.sinks] == [
        "webhook"
    ]


def test_a_byte_quota_notice_comes_from_the_recorded_upload(collected: Collected):
    from middleware.demo import ROUTES

    from .uploading import MULTIPART, multipart
    from .uploading import POLICY as UPLOADS

    fairuse = Middleware(
        FairUseMiddleware, plans=UPLOADS, clock=ManualClock(START), on_event=collected
    )
    served = Starlette(routes=ROUTES, middleware=[fairuse])
    sent = {"X-Workspace-ID": "w", "X-Plan": "basic", **MULTIPART}
    files = [("file", f"f{n}.bin", 70_000) for n in range(3)]  # 210 KB of 250 KB: past 80%
    with serve_in_thread(served) as url, httpx.Client(base_url=url) as client:
        assert client.post("/v1/files", content=multipart(files), headers=sent).status_code == 201
        assert collected.wait_for(1) == ["usage.threshold"]
    limit = collected.events[0].data["limit"]
    assert (limit["name"], limit["used"], limit["value"]) == (
        "upload_bytes_per_year",
        210_000,
        250_000,
    )
