"""The block cache's subscription when Redis refuses it: said once, retried with back-off."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator

import pytest
import redis

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from ratelimit.storage.pubsub import Subscription

from ..conftest import ROOT
from ..redis_servers import RedisProcess

pytestmark = pytest.mark.redis


@pytest.fixture
def acl_redis() -> Iterator[RedisProcess]:
    """A Redis 7 user as `ACL SETUSER` makes one by default: no channel may be subscribed to."""
    server = RedisProcess().start()
    admin = redis.Redis(port=server.port)
    admin.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"], reset_channels=True
    )
    admin.close()
    yield server
    server.remove()


def connections(server: RedisProcess) -> int:
    client = redis.Redis(port=server.port)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


async def test_a_refused_subscribe_is_logged_once_and_retried_with_back_off(
    acl_redis: RedisProcess, caplog: pytest.LogCaptureFixture
):
    states: list[bool] = []
    url = f"redis://app:pw@127.0.0.1:{acl_redis.port}/0"
    subscription = Subscription(url, "fu:x", lambda _: None, states.append, connect_timeout=1.0)
    before = connections(acl_redis)
    with caplog.at_level(logging.WARNING, logger="fairuse.storage"):
        subscription.start()
        await asyncio.sleep(2.0)
        await subscription.close()
    made = connections(acl_redis) - before - 1  # the count's own connection
    # back-off 0.05, 0.2, 0.5, 1.0 s: 4-5 attempts in 2 s (it was one every 50 ms, about 40)
    assert 2 <= made <= 6, made
    refusals = [r.getMessage() for r in caplog.records if "refused the subscription" in r.message]
    assert len(refusals) == 1, refusals
    assert "NOPERM" in refusals[0]
    assert states == []  # never listening: the cache stays off


async def test_a_subscription_that_stops_answering_is_taken_for_lost():
    """A connection dropped on the way (a NAT, a load balancer) looks idle forever; the PING
    finds out. Here Redis is frozen: the TCP connection stays up but nothing answers."""
    server = RedisProcess().start()
    states: list[bool] = []
    url = f"redis://127.0.0.1:{server.port}/0"
    subscription = Subscription(
        url, "fu:x", lambda _: None, states.append, connect_timeout=0.3, health_seconds=0.3
    )
    try:
        subscription.start()
        await until(lambda: states == [True])
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            await until(lambda: states == [True, False])  # no pong: caches must drop
        finally:
            server.process.send_signal(signal.SIGCONT)
        await until(lambda: states == [True, False, True])  # and it subscribes again
    finally:
        await subscription.close()
        server.remove()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):  # a hang guard, not a speed target: 10 s
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the subscription's state did not come")


async def test_a_user_without_the_channel_still_starts_a_chat_refused_before(
    acl_redis: RedisProcess,
):
    """A refused chat that starts after all makes the script publish on fairuse:invalidate
    (decide.lua, "Refused new chats"). Where Redis refuses this user the channel, it refuses
    the subscription too, so no process caches denials: the decision stands without it."""
    limiter = Limiter(
        load_policy(ROOT / "plans.toml"), f"redis://app:pw@127.0.0.1:{acl_redis.port}/0"
    )
    sandbox, pro = Identity("acme", "main", "sandbox"), Identity("acme", "main", "pro")
    try:
        for n in range(100):
            assert (await limiter.check(sandbox, "chat_message", session=f"c{n}")).allowed
        assert not (await limiter.check(sandbox, "chat_message", session="late")).allowed
        started = await limiter.check(pro, "chat_message", session="late")
        assert started.allowed
        assert started.new_session
    finally:
        await limiter.close()
