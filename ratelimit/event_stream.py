"""Events in a Redis stream: appended with XADD MAXLEN ~ (capped), read back for `events tail`.

Each entry has the fields `id`, `type` and `event` (the JSON document). Consumers that must see
every event once read with a consumer group (`read_group`), which remembers what each group has
acknowledged across restarts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .events import Event
from .storage.redis import RedisStorage

DEFAULT_STREAM = "fairuse:events"
DEFAULT_MAXLEN = 100_000


class StreamSink:
    """XADDs each event to `stream` in the given Redis: a client, or a storage URL (any that
    RedisStorage takes, so the storage's own URL with its timeouts, Cluster or Sentinel)."""

    def __init__(
        self,
        redis: Redis | str,
        stream: str = DEFAULT_STREAM,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        name: str = "stream",
        socket_timeout: float = 5.0,
    ) -> None:
        self._owned: RedisStorage | None = None
        if isinstance(redis, str):  # its own connection, not bound by the hot path's timeout:
            # an XADD answered after a timeout is retried, and the event appended twice
            self._owned = RedisStorage(redis, socket_timeout=socket_timeout)
            self.client: Redis = self._owned.client
        else:
            self.client = redis
        self.stream = stream
        self.maxlen = maxlen
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.name = name

    async def deliver(self, event: Event) -> None:
        fields: Any = {"id": event.id, "type": event.type, "event": event.to_json()}
        await self.client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.close()


async def read_recent(client: Redis, stream: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The last `count` events, oldest first, as (entry id, event document)."""
    entries: Any = await client.xrevrange(stream, count=count)
    return [_entry(entry_id, fields) for entry_id, fields in reversed(entries)]


async def follow(
    client: Redis, stream: str, count: int, block_ms: int = 5000
) -> AsyncGenerator[list[tuple[str, dict[str, Any]]], None]:
    """The last `count` events, then each batch of new ones as they come (an empty batch after
    `block_ms` without one). Each read asks for what follows the last entry seen, by its id:
    XREAD's "$" would mean newer than whatever is newest when that read starts, and lose an
    event appended while no read was waiting."""
    if count > 0:
        entries = await read_recent(client, stream, count)
        last = entries[-1][0] if entries else "0-0"  # empty then: whatever comes is new
    else:
        entries, last = [], await newest_id(client, stream)
    yield entries
    while True:
        batch = await read_after(client, stream, last, block_ms)
        yield batch
        last = batch[-1][0] if batch else last


async def newest_id(client: Redis, stream: str) -> str:
    """The id of the stream's newest entry; "0-0" (before any) when it has none."""
    entries: Any = await client.xrevrange(stream, count=1)
    if not entries:
        return "0-0"
    entry_id = entries[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def read_after(
    client: Redis, stream: str, last: str, block_ms: int
) -> list[tuple[str, dict[str, Any]]]:
    """Events after entry `last` ("$": only new ones), waiting up to `block_ms` for one."""
    found: Any = await client.xread({stream: last}, block=block_ms, count=100)
    return [_entry(i, f) for _, entries in found for i, f in entries]


async def read_group(
    client: Redis,
    stream: str,
    group: str,
    consumer: str,
    block_ms: int | None,
    *,
    pending: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """Events the group has not yet been given; with `pending`, those this consumer was given
    and never acknowledged (it stopped before handling them). Creates the group (reading from
    the stream's start) on first use. Acknowledge each with `ack` once handled: an event read
    but not handled is given again, never lost."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
    start, block = ("0", None) if pending else (">", block_ms)
    found: Any = await client.xreadgroup(group, consumer, {stream: start}, count=100, block=block)
    return [_entry(i, f) for _, batch in found for i, f in batch]


async def ack(client: Redis, stream: str, group: str, entries: list[tuple[str, Any]]) -> None:
    """Mark events handled for the group (read_group's entries)."""
    if entries:
        await client.xack(stream, group, *(entry_id for entry_id, _ in entries))


def _entry(entry_id: bytes | str, fields: dict[Any, Any]) -> tuple[str, dict[str, Any]]:
    raw = fields.get(b"event", fields.get("event", b"{}"))
    key = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return key, json.loads(raw)
