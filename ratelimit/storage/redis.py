"""Redis storage (redis-py asyncio, hiredis): one EVALSHA per decision, NOSCRIPT recovered."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from ..errors import FairUseError, StorageError

DECIDE_LUA = files("ratelimit").joinpath("lua/decide.lua").read_text(encoding="utf-8")
DEFAULT_TIMEOUT = 1.0  # seconds, for connect and for each reply
DEFAULT_MAX_CONNECTIONS = 64


class RedisStorage:
    """Single Redis, Cluster or Sentinel; every key of a decision shares one hash slot."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.client = _client_from_url(url, options)
        self._decide = self.client.register_script(DECIDE_LUA)

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        try:
            result = await self._decide(keys=list(keys), args=list(argv))
        except RedisError as error:
            raise StorageError(error) from error
        return [int(x) for x in result]

    async def delete_matching(self, pattern: str) -> int:
        try:
            doomed = [key async for key in self.client.scan_iter(match=pattern, count=1000)]
            for key in doomed:
                await self.client.delete(key)
        except RedisError as error:
            raise StorageError(error) from error
        return len(doomed)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self.client.aclose()


def _client_from_url(url: str, options: dict[str, Any]) -> Any:
    options.setdefault("socket_timeout", DEFAULT_TIMEOUT)
    options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"redis", "rediss", "unix", "redis+unix"}:
        if scheme == "redis+unix":
            url = "unix" + url[len("redis+unix") :]
        # Concurrent requests wait for a free connection instead of failing when all are busy.
        options.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        options.setdefault("timeout", DEFAULT_TIMEOUT)
        pool = aioredis.BlockingConnectionPool.from_url(url, **options)
        return aioredis.Redis.from_pool(pool)
    nodes = _host_ports(parts.netloc.rsplit("@", 1)[-1], url)
    password = parts.password
    if scheme == "redis+cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            password=password,
            **options,
        )
    if scheme == "redis+sentinel":
        service = parts.path.strip("/").split("/")[0]
        if not service:
            raise FairUseError(f"storage URL {url!r} needs a service name: .../SERVICE")
        query = parse_qs(parts.query)
        db = int(query.get("db", ["0"])[0])
        sentinel = Sentinel(nodes, sentinel_kwargs={"password": password}, **options)  # type: ignore[no-untyped-call]
        return sentinel.master_for(service, db=db, password=password)
    raise FairUseError(f"unsupported storage URL {url!r}")


def _host_ports(netloc: str, url: str) -> list[tuple[str, int]]:
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise FairUseError(f"storage URL {url!r}: expected host:port, got {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes
