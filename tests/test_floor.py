"""benchmarks/floor.py: the bare demo behind exactly one Redis round trip per HTTP request."""

from __future__ import annotations

import httpx
import pytest
import redis

from benchmarks.floor import app_from_env

from .redis_servers import plain

pytestmark = pytest.mark.redis
WHO = {"X-Account-ID": "a", "X-Workspace-ID": "w", "X-Plan": "pro"}


def script_calls(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_each_request_waits_for_one_script_call_and_gets_the_bare_answer(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
):
    redis_url = plain(redis_url)
    monkeypatch.setenv("FAIRUSE_STORAGE", redis_url)
    app = app_from_env()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        before = script_calls(redis_url)
        for n in range(5):
            reply = await client.post(f"/v1/chats/c{n}/messages", json={"text": "hi"}, headers=WHO)
            assert reply.json() == {"chat_id": f"c{n}", "reply": "You said: hi"}
            assert "RateLimit" not in reply.headers  # nothing is limited: only the trip is paid
        assert (await client.get("/healthz")).status_code == 200
        assert script_calls(redis_url) - before == 6
    await app.connection.close()


async def test_a_lost_redis_fails_the_request_rather_than_skipping_the_trip(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("FAIRUSE_STORAGE", "redis://127.0.0.1:1/0")  # nothing listens there
    transport = httpx.ASGITransport(app=app_from_env())
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        with pytest.raises(redis.ConnectionError, match="cannot connect to Redis"):
            await client.get("/healthz")


@pytest.mark.parametrize("storage", ["", "memory://", "postgres://x"])
def test_it_needs_a_redis_url(storage: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAIRUSE_STORAGE", storage)
    with pytest.raises(ValueError, match="FAIRUSE_STORAGE must be a redis:// or unix:// URL"):
        app_from_env()
