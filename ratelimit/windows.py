"""Fixed windows' boundaries as script arguments, computed as windows roll over, not per request."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from .periods import Period

Window = tuple[Period, ZoneInfo]
Bounds = tuple[str, str, str, str]


class WindowBounds:
    """Each fixed window's four boundaries (Period.boundaries_ms), kept while `now` is in it.

    `clear` forgets them all, when the storage clock disagreed with every window computed for it,
    and bumps `generation`, so that commands built from them (commands.py) are rebuilt too.
    """

    def __init__(self) -> None:
        self._cached: dict[Window, tuple[int, int, Bounds]] = {}
        self.generation = 0

    def around(self, window: Window, now_ms: int) -> tuple[int, int, Bounds]:
        """The start and end (ms) of the window holding `now_ms`, and its four boundaries."""
        cached = self._cached.get(window)
        if cached is None or not cached[0] <= now_ms < cached[1]:
            period, tz = window
            b0, b1, b2, b3 = period.boundaries_ms(now_ms / 1000, tz)
            cached = (b1, b2, (str(b0), str(b1), str(b2), str(b3)))
            self._cached[window] = cached
        return cached

    def clear(self) -> None:
        self._cached.clear()
        self.generation += 1
