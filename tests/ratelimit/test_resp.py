"""The pipelined EVALSHA connection against real redis-server processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
import uvloop

from ratelimit import Identity, Limiter, ManualClock, StorageError
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import RedisProcess

pytestmark = pytest.mark.redis
POLICY = Path(__file__).parent / "policies" / "concurrency.toml"
NOW = 1_795_000_000.0


def reads(port: int) -> int:
    client = redis.Redis(port=port)
    try:
        return int(client.info("stats")["total_reads_processed"])
    finally:
        client.close()


async def admitted(url: str, count: int, **options: float) -> int:
    limiter = Limiter(load_policy(POLICY), RedisStorage(url, **options), clock=ManualClock(NOW))
    try:
        who = Identity("acct", "main", "only")
        decisions = await asyncio.gather(*(limiter.check(who, "call") for _ in range(count)))
    finally:
        await limiter.close()
    return sum(d.allowed for d in decisions)


def test_concurrent_decisions_share_writes_under_uvloop(redis_url: str, redis_server):
    """uvloop's transports, and 300 concurrent EVALSHAs sent in a handful of writes."""
    before = reads(redis_server.port)
    assert uvloop.run(admitted(redis_url, 300)) == 300
    sent = reads(redis_server.port) - before
    assert sent < 30, f"{sent} reads for 300 decisions: commands were not pipelined"
    assert uvloop.run(admitted(redis_url, 300)) == 200  # concurrency.toml: 500 calls a day


async def test_database_and_password_from_the_url():
    server = RedisProcess().start()
    server.command("CONFIG", "SET", "requirepass", "s3cret")
    try:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        assert await admitted(url, 5) == 5
        client = redis.Redis(port=server.port, password="s3cret", db=3)
        assert client.dbsize() > 0
        client.close()
        with pytest.raises(StorageError):
            await admitted(f"redis://:wrong@127.0.0.1:{server.port}/3", 1)
    finally:
        server.stop()


async def test_a_server_that_stops_answering_times_out_then_recovers(redis_url: str, redis_server):
    storage = RedisStorage(redis_url, socket_timeout=0.2)
    limiter = Limiter(load_policy(POLICY), storage, clock=ManualClock(NOW))
    who = Identity("acct", "main", "only")
    try:
        assert (await limiter.check(who, "call")).allowed
        redis_server.command("CLIENT", "PAUSE", "600", "ALL")
        with pytest.raises(StorageError):
            await limiter.check(who, "call")
        await asyncio.sleep(0.6)
        decision = await limiter.check(who, "call")
        assert decision.allowed
        assert decision.binding is not None
        assert decision.binding.used in (2, 3)  # the timed-out call may have run after the pause
    finally:
        await limiter.close()


async def test_a_restarted_server_is_reconnected_and_sent_the_script(redis_url: str):
    server = RedisProcess().start()
    limiter = Limiter(load_policy(POLICY), RedisStorage(server.url), clock=ManualClock(NOW))
    who = Identity("acct", "main", "only")
    try:
        assert (await limiter.check(who, "call")).allowed
        server.stop()
        await asyncio.sleep(0.05)
        with pytest.raises(StorageError):
            await limiter.check(who, "call")
        server.start()  # same port, empty: no keys, no scripts
        decision = await limiter.check(who, "call")
        assert decision.allowed
        assert decision.binding is not None
        assert decision.binding.used == 1
    finally:
        await limiter.close()
        server.stop()
