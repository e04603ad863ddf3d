"""The suite's own Redis URLs wait out a stall longer than the production read timeout.

Behaviour tests are not latency tests: on a busy shared machine a redis-server can pause past
0.25 s, and that must not fail a test of what fairuse decides.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage
from ratelimit.storage.redis_url import DEFAULT_TIMEOUT

from .cluster import LocalCluster
from .redis_servers import RedisProcess

POLICY = Path(__file__).parent / "ratelimit" / "policies" / "small.toml"
STALL = DEFAULT_TIMEOUT + 0.35


async def decide_through_a_stall(url: str, pids: list[int]) -> bool:
    limiter = Limiter(load_policy(POLICY), RedisStorage(url))
    try:
        await limiter.check(Identity("acme", "main", "free"), "chat", session="warm")
        signal_all(pids, signal.SIGSTOP)
        try:
            asyncio.get_running_loop().call_later(STALL, signal_all, pids, signal.SIGCONT)
            decision = await limiter.check(Identity("acme", "main", "free"), "chat", session="s")
        finally:
            await asyncio.sleep(STALL)
            signal_all(pids, signal.SIGCONT)
        return decision.allowed
    finally:
        await limiter.close()


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        os.kill(pid, signum)


def pid_of(server: RedisProcess) -> int:
    assert server.process is not None
    return server.process.pid


@pytest.mark.redis
async def test_the_single_redis_url_waits_out_a_stall(redis_url: str, redis_server: RedisProcess):
    assert await decide_through_a_stall(redis_url, [pid_of(redis_server)])


@pytest.mark.cluster
async def test_the_cluster_url_waits_out_a_stall(cluster_url: str, redis_cluster: LocalCluster):
    assert await decide_through_a_stall(cluster_url, [pid_of(n) for n in redis_cluster.nodes])
