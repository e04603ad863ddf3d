"""Redis storage (redis-py asyncio, hiredis): one EVALSHA per decision, NOSCRIPT recovered.

Failures never retry (a retried script could count a request twice) and go through a circuit
breaker, so that while Redis is down requests learn it at once instead of each waiting a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from mypy_extensions import mypyc_attr
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import FairUseError, StorageError
from .breaker import CircuitBreaker, CircuitOpen
from .pubsub import Subscription
from .redis_url import DEFAULT_MAX_CONNECTIONS, RedisSettings, parse_redis_url
from .resp import FAST_SCHEMES, PipelinedConnection

DECIDE_LUA = files("ratelimit").joinpath("lua/decide.lua").read_text(encoding="utf-8")
RECORDS_LUA = files("ratelimit").joinpath("lua/records.lua").read_text(encoding="utf-8")
DECIDE_SHA = hashlib.sha1(DECIDE_LUA.encode()).hexdigest()
FAILURES = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)
WAITED_OUT = (RedisTimeoutError, asyncio.TimeoutError)  # each such failure cost its call a wait


@mypyc_attr(allow_interpreted_subclasses=True)  # may be subclassed, compiled or not
class RedisStorage:
    """Single Redis, Cluster or Sentinel; every key of a decision shares one hash slot."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.settings = parse_redis_url(url)
        self._sentinels: list[Any] = []  # Sentinel's own connections, closed with ours
        self.client = _client(self.settings, options, self._sentinels)
        self.breaker = CircuitBreaker(
            self.settings.display,
            failures=self.settings.breaker_failures,
            cooldown=self.settings.breaker_cooldown,
        )
        self._decide = self.client.register_script(DECIDE_LUA)
        self._records = self.client.register_script(RECORDS_LUA)
        # A single server takes decisions over one auto-pipelined connection (resp.py); Cluster
        # and Sentinel go through redis-py, which knows their topology, and so does TLS.
        self._fast: PipelinedConnection | None = None
        if self.settings.kind == "single" and url.lower().startswith(FAST_SCHEMES):
            self._fast = PipelinedConnection(
                self.settings.url,
                DECIDE_LUA,
                DECIDE_SHA,
                timeout=float(options.get("socket_timeout", self.settings.socket_timeout)),
                connect_timeout=self.settings.socket_connect_timeout,
            )
        self._subscriptions: list[Subscription] = []

    @property
    def command_sha(self) -> str | None:
        """decide.lua's SHA1 where decisions may come as whole commands (`decide_command`):
        a single server, over the pipelined connection. None for Cluster, Sentinel and TLS."""
        return DECIDE_SHA if self._fast is not None else None

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        if self._fast is not None:
            return await self.decide_command(self._fast.evalsha_command(keys, argv))
        result = await self._guarded(self._decide(keys=list(keys), args=list(argv)))
        return [int(x) for x in result]

    def decide_command(self, command: bytes) -> Coroutine[Any, Any, list[int]]:
        """`decide`, given the whole EVALSHA of decide.lua in RESP (ratelimit/commands.py
        builds it from templates); only where `command_sha` is set. Awaited like a coroutine
        function; it hands over the guarded call, one frame fewer on the hot path."""
        fast = self._fast
        if fast is None:
            raise FairUseError(f"{self.settings.display} takes decisions as KEYS and ARGV only")
        return self._guarded(fast.evalsha(command))

    async def _guarded(self, call: Coroutine[Any, Any, Any]) -> Any:
        """Await a script call through the circuit breaker; failures become StorageError."""
        breaker = self.breaker
        try:
            began = breaker.before_call()
        except CircuitOpen as error:
            call.close()  # never started: the breaker answers for it
            raise StorageError(error) from None
        try:
            result = await call
        except FAILURES as error:
            breaker.failed(error, None if isinstance(error, WAITED_OUT) else began)
            raise StorageError(error) from error
        except BaseException:
            breaker.abandoned()
            raise
        breaker.succeeded()
        return result

    async def delete_matching(self, pattern: str) -> int:
        try:
            doomed = [key async for key in self.client.scan_iter(match=pattern, count=1000)]
            for key in doomed:
                await self.client.delete(key)
        except FAILURES as error:
            raise StorageError(error) from error
        return len(doomed)

    async def read_records(self, key: str) -> dict[str, str]:
        try:
            found = await self.client.hgetall(key)
        except FAILURES as error:
            raise StorageError(error) from error
        return {_text(k): _text(v) for k, v in found.items()}

    async def write_records(
        self, key: str, changes: Mapping[str, str | None], now_ms: int | None = None
    ) -> dict[str, str]:
        args = ["" if now_ms is None else str(now_ms)]
        for field, value in changes.items():
            args += [field, value or ""]
        try:
            left = await self._records(keys=[key], args=args)
        except FAILURES as error:
            raise StorageError(error) from error
        return {_text(left[i]): _text(left[i + 1]) for i in range(0, len(left), 2)}

    async def publish(self, channel: str, message: str) -> int:
        try:
            count = int(await self.client.publish(channel, message))
        except FAILURES as error:
            raise StorageError(error) from error
        for subscription in self._subscriptions:  # this process at once, not a moment later
            if subscription.channel == channel:
                subscription.on_message(message)
        return count

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except FAILURES:
            return False

    def subscribe(
        self, channel: str, on_message: Callable[[str], None], on_state: Callable[[bool], None]
    ) -> Subscription | None:
        """A subscription on its own connection (pubsub.py), closed with this storage; None
        where only redis-py can reach the server (Cluster, Sentinel, TLS)."""
        if self._fast is None:
            return None
        subscription = Subscription(
            self.settings.url,
            channel,
            on_message,
            on_state,
            connect_timeout=self.settings.socket_connect_timeout,
        )
        self._subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        for subscription in self._subscriptions:
            await subscription.close()
        self._subscriptions.clear()
        if self._fast is not None:
            await self._fast.close()
        await self.client.aclose()
        for sentinel in self._sentinels:
            await sentinel.aclose()


def _client(settings: RedisSettings, options: dict[str, Any], sentinels: list[Any]) -> Any:
    options.setdefault("socket_timeout", settings.socket_timeout)
    options.setdefault("socket_connect_timeout", settings.socket_connect_timeout)
    options.setdefault("retry", Retry(NoBackoff(), 0))
    if settings.kind == "single":
        # Concurrent requests wait for a free connection instead of failing when all are busy.
        options.setdefault("max_connections", settings.max_connections or DEFAULT_MAX_CONNECTIONS)
        options.setdefault("timeout", settings.pool_timeout)
        pool = aioredis.BlockingConnectionPool.from_url(settings.url, **options)
        return aioredis.Redis.from_pool(pool)
    auth: dict[str, Any] = {"username": settings.username, "password": settings.password}
    if settings.kind == "cluster":
        # No blocking pool on a cluster: a capped pool would refuse a burst, not queue it.
        if settings.max_connections is not None:
            options.setdefault("max_connections", settings.max_connections)
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.nodes],
            **auth,
            **options,
        )
    sentinel_options = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        **auth,
    }
    sentinel = Sentinel(settings.nodes, sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call, unused-ignore]
    sentinels.extend(sentinel.sentinels)
    return sentinel.master_for(settings.service, db=settings.db, **auth)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
