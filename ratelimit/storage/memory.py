"""In-process storage: the embedded default, with the same semantics as the Redis script."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Sequence

from ..algorithms import Keyspace, decide

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

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
