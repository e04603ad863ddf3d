"""In-process storage: the embedded default, with the same semantics as the Redis script."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Mapping, Sequence

from ..algorithms import Keyspace, decide


def until_of_record(value: str) -> int | None:
    """A record's end in ms; None when it has none (records.lua keeps malformed ones too)."""
    found = re.match(r"([0-9]+)\|", value)
    return int(found[1]) if found else None


SWEEP_EVERY = 10_000  # decisions between sweeps of expired keys


class MemoryStorage:
    """Atomic because a decision never awaits: the event loop runs it start to finish."""

    url = "memory://"

    def __init__(self) -> None:
        self.space = Keyspace()
        self._since_sweep = 0

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        now = int(time.time() * 1000)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._since_sweep = 0
            self.space.sweep(int(argv[0]) if argv[0] else now)
        return decide(self.space, keys, argv, now)

    async def delete_matching(self, pattern: str) -> int:
        doomed = [k for k in self.space.values if fnmatch.fnmatchcase(k, pattern)]
        for key in doomed:
            self.space.delete(key)
        return len(doomed)

    async def read_records(self, key: str) -> dict[str, str]:
        return dict(self.space.values.get(key) or {})  # ended records are the caller's to skip

    async def write_records(
        self, key: str, changes: Mapping[str, str | None], now_ms: int | None = None
    ) -> dict[str, str]:
        """lua/records.lua in Python."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        records: dict[str, str] = self.space.get(key, now) or {}
        for field, value in changes.items():
            if value:
                records[field] = value
            else:
                records.pop(field, None)
        ends = {field: until_of_record(value) for field, value in records.items()}
        left = {f: records[f] for f, end in ends.items() if end is None or end > now}
        if not left:
            self.space.delete(key)
            return {}
        self.space.values[key] = left
        last = [ends[f] for f in left]
        if None in last:
            self.space.expires.pop(key, None)
        else:
            self.space.expires[key] = max(end for end in last if end is not None) + 60000
        return dict(left)

    async def publish(self, channel: str, message: str) -> int:
        return 0  # one process: no other cache to tell

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
