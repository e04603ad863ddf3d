"""Storage backends. Each runs the whole decision for one request in one atomic step.

URLs follow the `limits` package's conventions: `memory://`, `redis://`, `rediss://`,
`redis+unix://`, `redis+cluster://host:port[,host:port]`, `redis+sentinel://host:port/service`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from ..errors import FairUseError


@runtime_checkable
class Storage(Protocol):
    """Runs lua/decide.lua (or its Python twin) and the few admin operations."""

    url: str

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        """One round trip: check every op, consume all or none. See decide.lua's header."""
        ...

    async def delete_matching(self, pattern: str) -> int:
        """Delete keys matching a glob pattern (admin reset); returns how many."""
        ...

    async def read_records(self, key: str) -> dict[str, str]:
        """Every field of an admin record hash (records.py), ended ones included."""
        ...

    async def write_records(
        self, key: str, changes: Mapping[str, str | None], now_ms: int | None = None
    ) -> dict[str, str]:
        """Set (or, for None, delete) record fields in one atomic step, drop records that have
        ended, keep the hash as long as its last record; returns the records left."""
        ...

    async def publish(self, channel: str, message: str) -> int:
        """Publish to subscribers of `channel` (e.g. block caches); returns how many got it."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def storage_from_url(url: str) -> Storage:
    """Build a backend from a URL; raise FairUseError naming the URL when it cannot."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    if scheme in {"redis", "rediss", "redis+unix", "unix", "redis+cluster", "redis+sentinel"}:
        from .redis import RedisStorage

        return RedisStorage(url)
    from .redis_url import shown_url

    raise FairUseError(
        f"unsupported storage URL {shown_url(url)!r}: use memory://, redis://, rediss://, "
        "redis+cluster:// or redis+sentinel://"
    )


__all__ = ["Storage", "storage_from_url"]
