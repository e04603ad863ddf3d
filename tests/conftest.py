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

from .redis_servers import RedisProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.config_resetstat()
    client.close()
    return redis_server.url


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    """Every behaviour test runs once per backend; both must decide identically."""
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    else:
        backend = RedisStorage(request.getfixturevalue("redis_url"))
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
def shipped_policy() -> Policy:
    from ratelimit.plans_file import load_policy

    return load_policy(ROOT / "plans.toml")
