"""Redis Cluster and Sentinel deployments, on real local processes."""

from __future__ import annotations

import asyncio

import pytest
import redis

from ratelimit import Identity, Limiter, Policy, StorageError
from ratelimit.storage.breaker import CLOSED, OPEN
from ratelimit.storage.redis import RedisStorage

from ..cluster import LocalCluster, LocalSentinel


def node_keys(cluster: LocalCluster) -> list[list[str]]:
    found: list[list[str]] = []
    for node in cluster.nodes:
        client = redis.Redis(port=node.port, decode_responses=True)
        try:
            found.append([str(key) for key in client.keys("*")])
        finally:
            client.close()
    return found


@pytest.mark.cluster
async def test_an_account_lives_on_one_master_and_accounts_spread(
    cluster_url: str, redis_cluster: LocalCluster, shipped_policy: Policy
):
    limiter = Limiter(shipped_policy, RedisStorage(cluster_url))
    try:
        for n in range(30):
            who = Identity(f"acct-{n}", "main", "ltd")
            for chat in ("a", "b"):
                assert (await limiter.check(who, "chat_message", session=chat)).allowed
            assert (await limiter.check(who, "ticket")).allowed
    finally:
        await limiter.close()
    per_node = node_keys(redis_cluster)
    assert all(per_node), "every master holds some accounts"
    for n in range(30):
        tag = f"{{acct-{n}}}"
        holders = [i for i, keys in enumerate(per_node) if any(tag in key for key in keys)]
        assert len(holders) == 1, (n, holders)  # all of an account's keys share one slot


@pytest.mark.cluster
async def test_scripts_flushed_on_every_master_are_loaded_again(
    cluster_url: str, redis_cluster: LocalCluster, shipped_policy: Policy
):
    limiter = Limiter(shipped_policy, RedisStorage(cluster_url))
    who = [Identity(f"acct-{n}", "main", "ltd") for n in range(6)]
    try:
        for identity in who:
            assert (await limiter.check(identity, "ticket")).allowed
        for node in redis_cluster.nodes:
            node.command("SCRIPT", "FLUSH")
        for identity in who:
            decision = await limiter.check(identity, "ticket")
            assert decision.allowed
            used = {status.name: status.used for status in decision.statuses}
            assert used["tickets_per_month"] == 2
    finally:
        await limiter.close()


@pytest.mark.cluster
async def test_admin_reset_reaches_every_master(cluster_url: str, redis_cluster: LocalCluster):
    storage = RedisStorage(cluster_url)
    try:
        for n in range(12):
            await storage.decide([f"fu:{{a{n}}}:l:x"], ["1000", "1", "0", "1", *COUNTER])
        assert await storage.delete_matching("fu:*") == 12
    finally:
        await storage.close()
    assert node_keys(redis_cluster) == [[], [], []]


COUNTER = ["2", "0", "5", "1", "60000", "", "", "", "0"]  # a sliding window of 5 a minute


@pytest.mark.redis
async def test_a_decision_through_sentinel(redis_sentinel: LocalSentinel, shipped_policy: Policy):
    limiter = Limiter(shipped_policy, RedisStorage(redis_sentinel.url))
    try:
        who = Identity("acct", "main", "sandbox")
        first = await limiter.check(who, "chat_message", session="c1")
        again = await limiter.check(who, "chat_message", session="c1")
    finally:
        await limiter.close()
    assert first.allowed
    assert first.new_session
    assert not again.new_session
    # the decision was stored on the master the sentinel named
    keys = redis_sentinel.master.command("KEYS", "fu:{acct}:*")
    assert "sessions_per_month" in keys


@pytest.mark.cluster
async def test_every_master_restarted(cluster_url: str, redis_cluster: LocalCluster):
    """Down: StorageError (never another exception), then fail-fast; back: decisions resume."""
    storage = RedisStorage(cluster_url)
    keys = [[f"fu:{{a{n}}}:l:x"] for n in range(6)]
    argv = ["1000", "1", "0", "1", *COUNTER]
    try:
        for key in keys:
            assert (await storage.decide(key, argv))[0] == 1
        for node in redis_cluster.nodes:
            node.stop()
        try:
            for key in keys:
                with pytest.raises(StorageError):
                    await storage.decide(key, argv)
            assert storage.breaker.state == OPEN
        finally:
            for node in redis_cluster.nodes:
                node.start()
            redis_cluster.wait_ok()
        for _ in range(200):  # the breaker probes every 0.5 s
            try:
                await storage.decide(keys[0], argv)
                break
            except StorageError:
                await asyncio.sleep(0.05)
        for key in keys:
            assert (await storage.decide(key, argv))[0] == 1
        assert storage.breaker.state == CLOSED
    finally:
        await storage.close()
