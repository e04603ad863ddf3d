"""Admin actions on real Redis: each one that can lift or change a block tells block caches."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from ratelimit import Limiter
from ratelimit.admin import INVALIDATE_CHANNEL, Admin, publish_invalidation
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import plain

pytestmark = pytest.mark.redis
POLICY = Path(__file__).parent / "policies" / "lifecycle.toml"


async def test_every_block_changing_action_publishes_the_escaped_account(redis_url: str):
    subscriber = Redis.from_url(plain(redis_url))
    channel = subscriber.pubsub()
    await channel.subscribe(INVALIDATE_CHANNEL)
    await channel.get_message(timeout=5)  # the subscribe confirmation
    limiter = Limiter(load_policy(POLICY), RedisStorage(redis_url))
    admin = Admin(limiter)
    account = "acme corp/eu"
    try:
        await admin.set_override(account, "calls_per_hour", 20)
        await admin.clear_override(account)
        await admin.reset(account, "main")
        await admin.suspend(account, "main")
        await admin.unsuspend(account, "main")
        await publish_invalidation(limiter.storage, None)
        heard = []
        for _ in range(6):
            message = await channel.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None
            heard.append(message["data"])
    finally:
        await channel.aclose()  # type: ignore[no-untyped-call, unused-ignore]
        await subscriber.aclose()
        await limiter.close()
    assert heard == [b"acme%20corp%2Feu"] * 5 + [b"*"]


async def test_records_outlive_their_last_end_and_persist_without_one(redis_url: str):
    limiter = Limiter(load_policy(POLICY), RedisStorage(redis_url))
    admin = Admin(limiter)
    client = Redis.from_url(plain(redis_url))
    key = "fu:{acme}:o"
    try:
        now = admin.now()
        await admin.set_override("acme", "calls_per_hour", 20, until=now + 600)
        assert 600_000 < await client.pttl(key) <= 660_000
        await admin.set_override("acme", "sessions_per_month", 20)
        assert await client.pttl(key) == -1  # one record has no end: the hash stays
        await admin.clear_override("acme", "sessions_per_month")
        assert 600_000 < await client.pttl(key) <= 660_000
        await admin.clear_override("acme")
        assert await client.exists(key) == 0
    finally:
        await client.aclose()
        await limiter.close()
