"""RedisStorage through outages longer than the breaker's cooldown: probes fail, then recover."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Iterator

import pytest

from ratelimit import StorageError
from ratelimit.storage.breaker import CLOSED, OPEN
from ratelimit.storage.redis import RedisStorage
from ratelimit.storage.resp import pack

from ..redis_servers import RedisProcess, patient

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


BUSY_LUA = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > tonumber(ARGV[1])
return 1
"""


def busy_then_kill(port: int, busy_us: int) -> socket.socket:
    """Keep Redis busy for `busy_us`, then have it close every other client's connection: one
    write, so that Redis reads both commands at once and kills nothing before the wait ends."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        pack("EVAL", BUSY_LUA, "0", str(busy_us))
        + pack("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    )
    return sock


async def test_one_lost_connection_counts_once_however_many_decisions_it_held(
    own_redis: RedisProcess,
):
    """Redis closing the connection (a `CLIENT KILL`, a proxy's reset) with three decisions in
    flight is one failure: the breaker stays closed and the next decision is answered, where
    counting each request opened it and refused every decision for the cooldown."""
    storage = RedisStorage(patient(own_redis.url))
    try:
        assert (await storage.decide(KEYS, ARGV))[0] == 1  # connected
        killer = busy_then_kill(own_redis.port, 1_000_000)  # within the 2 s reply timeout
        try:
            await asyncio.sleep(0.3)  # Redis is inside the busy script now
            held = [asyncio.ensure_future(storage.decide(KEYS, ARGV)) for _ in range(3)]
            outcomes = await asyncio.wait_for(
                asyncio.gather(*held, return_exceptions=True), PATIENCE
            )
        finally:
            killer.close()
        assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
        assert storage.breaker.state == CLOSED
        assert (await storage.decide(KEYS, ARGV))[0] == 1
    finally:
        await storage.close()


async def test_decisions_that_each_waited_out_a_timeout_count_each(own_redis: RedisProcess):
    """A frozen Redis times out every decision in flight together too, but each of them waited
    the timeout: three open the breaker at once, so that no more requests wait after them."""
    storage = RedisStorage(own_redis.url)  # the production timeout
    process = own_redis.process
    assert process is not None
    try:
        assert (await storage.decide(KEYS, ARGV))[0] == 1
        process.send_signal(signal.SIGSTOP)
        try:
            held = [asyncio.ensure_future(storage.decide(KEYS, ARGV)) for _ in range(3)]
            outcomes = await asyncio.wait_for(
                asyncio.gather(*held, return_exceptions=True), PATIENCE
            )
            assert all(isinstance(outcome, StorageError) for outcome in outcomes), outcomes
            assert "within" in str(outcomes[0])  # no reply within the timeout
            assert storage.breaker.state == OPEN
        finally:
            process.send_signal(signal.SIGCONT)
    finally:
        await storage.close()
