"""Fixtures: a real redis-server per test session, flushed per test; backends to run against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from ratelimit.plans import Policy
from ratelimit.storage import Storage
from ratelimit.storage.memory import MemoryStorage
from ratelimit.storage.redis import RedisStorage

from .cluster import LocalCluster, LocalSentinel
from .redis_servers import RedisProcess, patient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.remove()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.config_resetstat()
    client.close()
    return patient(redis_server.url)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three cluster-enabled masters on free ports, started once per session."""
    cluster = LocalCluster().start()
    yield cluster
    cluster.remove()


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    redis_cluster.flush()
    return patient(redis_cluster.url)


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[LocalSentinel]:
    """A sentinel watching a master of its own, under the service name "fairuse"."""
    master = RedisProcess().start()
    sentinel = LocalSentinel(master).start()
    yield sentinel
    sentinel.remove()
    master.remove()


BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.cluster),
]


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """Every behaviour test runs once per backend; all must decide identically."""
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    elif request.param == "redis":
        backend = RedisStorage(request.getfixturevalue("redis_url"))
    else:
        backend = RedisStorage(request.getfixturevalue("cluster_url"))
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def shipped_policy() -> Policy:
    from ratelimit.plans_file import load_policy

    return load_policy(ROOT / "plans.toml")
