"""RedisStorage through outages longer than the breaker's cooldown: probes fail, then recover."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from ratelimit import StorageError
from ratelimit.storage.breaker import CLOSED
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import RedisProcess

pytestmark = pytest.mark.redis
KEYS = ["fu:{a}:l:x"]
ARGV = ["1000", "1", "0", "1", "2", "0", "1000000", "1", "60000", "", "", "", "0"]
PATIENCE = 30.0  # a hang guard for wait-until loops, never a speed target


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.remove()


async def decide_until_ok(storage: RedisStorage) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while True:
        try:
            return await storage.decide(KEYS, ARGV)
        except StorageError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.01)


async def fail_through_probes(storage: RedisStorage, probes: int) -> None:
    """Decide (and fail) until the breaker has sent `probes` probes into the outage."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    start = storage.breaker.probes
    while storage.breaker.probes - start < probes:
        with pytest.raises(StorageError):
            await storage.decide(KEYS, ARGV)
        if loop.time() > deadline:
            pytest.fail("the breaker sent no probes")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("outage", ["frozen", "killed"])
async def test_decisions_resume_after_a_long_outage(own_redis: RedisProcess, outage: str):
    storage = RedisStorage(own_redis.url)
    process = own_redis.process
    assert process is not None
    try:
        assert (await storage.decide(KEYS, ARGV))[0] == 1
        if outage == "frozen":
            process.send_signal(signal.SIGSTOP)  # connects still succeed; nothing replies
        else:
            own_redis.stop()
        try:
            await fail_through_probes(storage, 3)
        finally:
            if outage == "frozen":
                process.send_signal(signal.SIGCONT)
            else:
                own_redis.start()
        reply = await decide_until_ok(storage)
        assert reply[0] == 1
        assert storage.breaker.state == CLOSED
        for _ in range(5):  # and every later decision gets its own reply
            assert (await storage.decide(KEYS, ARGV))[0] == 1
    finally:
        await storage.close()


async def test_a_cancelled_connection_attempt_leaves_no_one_waiting(own_redis: RedisProcess):
    """A decision cancelled while its connection is being set up (Redis frozen: the TCP connect
    succeeds, the set-up gets no reply) must not leave later decisions waiting for it."""
    storage = RedisStorage(own_redis.url)
    process = own_redis.process
    assert process is not None
    try:
        process.send_signal(signal.SIGSTOP)
        try:
            first = asyncio.ensure_future(storage.decide(KEYS, ARGV))
            second = asyncio.ensure_future(storage.decide(KEYS, ARGV))  # shares the attempt
            await asyncio.sleep(0.05)
            first.cancel()
            with pytest.raises(StorageError):
                await asyncio.wait_for(second, PATIENCE)
        finally:
            process.send_signal(signal.SIGCONT)
        assert (await asyncio.wait_for(decide_until_ok(storage), PATIENCE))[0] == 1
    finally:
        await storage.close()
