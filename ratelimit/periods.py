"""Periods and window arithmetic: calendar-aligned windows in any IANA timezone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 31 * 86400,  # longest month: used only for TTL and ordering
    "year": 366 * 86400,
}
FIXED_LENGTH_UNITS = ("second", "minute", "hour")
_WALL_EPOCH = datetime(1970, 1, 1)  # naive: local wall-clock arithmetic
CALENDAR_UNITS = ("day", "week", "month", "year")


@dataclass(frozen=True, slots=True)
class Period:
    """`count` consecutive `unit`s, e.g. Period("minute", 15)."""

    unit: str
    count: int = 1

    @property
    def approx_seconds(self) -> int:
        return UNIT_SECONDS[self.unit] * self.count

    @property
    def calendar(self) -> bool:
        return self.unit in CALENDAR_UNITS

    def __str__(self) -> str:
        return self.unit if self.count == 1 else f"{self.count} {self.unit}s"

    def window_start(self, t: float, tz: ZoneInfo) -> float:
        """Start (epoch seconds) of the window that contains `t`, aligned in `tz`."""
        start = self._nominal_start(t, tz)
        while (following := self.next_start(start, tz)) <= t:
            start = following  # `t` is in a repeated hour past an edge's first occurrence
        return start

    def _nominal_start(self, t: float, tz: ZoneInfo) -> float:
        """Where the window of `t`'s wall-clock time starts; a window start, at or before `t`."""
        local = datetime.fromtimestamp(t, tz)
        if not self.calendar:  # aligned on the local clock, so DST moves the edges with it
            return _wall_to_epoch(self._wall_floor(local), tz)
        floor = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.unit == "week":
            floor -= timedelta(days=floor.weekday())
        elif self.unit == "month":
            floor = floor.replace(day=1)
        elif self.unit == "year":
            floor = floor.replace(month=1, day=1)
        return _wall_to_epoch(floor.replace(tzinfo=None), tz)

    def _wall_floor(self, local: datetime) -> datetime:
        """The local wall-clock start of a fixed-length window holding `local` (naive)."""
        wall = local.replace(tzinfo=None, fold=0)
        length = self.approx_seconds
        since = (wall - _WALL_EPOCH).total_seconds()
        return _WALL_EPOCH + timedelta(seconds=math.floor(since / length) * length)

    def next_start(self, start: float, tz: ZoneInfo) -> float:
        """Start of the window after the one that starts at `start`."""
        if not self.calendar:  # from the nominal start: a skipped one began at the jump
            local = datetime.fromtimestamp(start, tz)
            return _wall_to_epoch(
                self._wall_floor(local) + timedelta(seconds=self.approx_seconds), tz
            )
        # From the window's date at midnight, not its start's wall time: a day whose midnight
        # DST skipped starts at 01:00, and the next one at 00:00 again.
        wall = datetime.fromtimestamp(start, tz).replace(tzinfo=None, hour=0, minute=0, second=0)
        wall = wall.replace(microsecond=0)
        if self.unit == "day":
            wall += timedelta(days=1)
        elif self.unit == "week":
            wall += timedelta(days=7)
        elif self.unit == "month":
            wall = wall.replace(year=wall.year + wall.month // 12, month=wall.month % 12 + 1)
        else:
            wall = wall.replace(year=wall.year + 1)
        return _wall_to_epoch(wall, tz)

    def boundaries_ms(self, t: float, tz: ZoneInfo) -> tuple[int, int, int, int]:
        """Starts of the previous, current, next and next-but-one windows around `t`, in ms.

        The storage picks the window from its own clock among these, so app servers whose
        clocks drift by less than a window still agree on which window a request falls in.
        """
        current = self.window_start(t, tz)
        previous = self.window_start(current - 0.001, tz)
        following = self.next_start(current, tz)
        after = self.next_start(following, tz)
        return (_ms(previous), _ms(current), _ms(following), _ms(after))


def _wall_to_epoch(wall: datetime, tz: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock time. A time that comes twice (DST ends) is its first
    occurrence, whichever pass asks, so every process agrees on where a window starts; a time
    DST skips is the first instant after the gap, the moment the clocks jump."""
    wall = wall.replace(fold=0)
    after = wall.replace(tzinfo=tz).timestamp()  # in a gap: read with the offset before it
    if _local(after, tz) == wall:
        return after
    before = wall.replace(tzinfo=tz, fold=1).timestamp()  # with the offset after: before the gap
    low, high = math.floor(before), math.ceil(after)  # local(low) < wall < local(high)
    while high - low > 1:  # the jump is at a whole second: find it
        middle = (low + high) // 2
        if _local(middle, tz) > wall:
            high = middle
        else:
            low = middle
    return float(high)


def _local(t: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t, tz).replace(tzinfo=None, fold=0)


def _ms(t: float) -> int:
    return round(t * 1000)


MAX_SECONDS = 100 * 366 * 86400  # a century: past it, dates leave what calendars can show


def parse_duration(text: str) -> float:
    """'30 minutes', '1 hour', '45s' -> seconds, at most a century. Raises ValueError with a
    readable reason."""
    seconds = _parse_duration(text)
    if not seconds <= MAX_SECONDS:  # also inf and nan
        raise ValueError(f"a duration can be at most 100 years, got {text!r}")
    return seconds


def _parse_duration(text: str) -> float:
    words = text.strip().lower().split()
    if len(words) == 1:
        for suffix, scale in (
            ("ms", 0.001),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
            ("d", 86400.0),
        ):
            number = words[0].removesuffix(suffix)
            if number != words[0] and _is_number(number):
                return float(number) * scale
        words = ["1", *words]
    if len(words) != 2 or not _is_number(words[0]):
        raise ValueError(f"expected a duration such as '30 minutes', got {text!r}")
    unit = words[1].removesuffix("s")
    if unit not in UNIT_SECONDS or unit in ("month", "year"):
        raise ValueError(f"unknown duration unit {words[1]!r} in {text!r}")
    return float(words[0]) * UNIT_SECONDS[unit]


def parse_period(text: str) -> Period:
    """'hour', 'month', '15 minutes' -> Period. Calendar units take no count."""
    words = text.strip().lower().split()
    count = 1
    if len(words) == 2 and words[0].isdigit():
        count = int(words[0])
        words = words[1:]
    if len(words) != 1:
        raise ValueError(f"expected a period such as 'hour', 'month' or '15 minutes', got {text!r}")
    unit = words[0].removesuffix("s") if words[0] != "s" else words[0]
    if unit not in UNIT_SECONDS:
        raise ValueError(f"unknown period unit {words[0]!r}; use one of {', '.join(UNIT_SECONDS)}")
    if count < 1:
        raise ValueError(f"period count must be positive, got {text!r}")
    if count != 1 and unit in CALENDAR_UNITS:
        raise ValueError(
            f"calendar periods ({', '.join(CALENDAR_UNITS)}) take no count, got {text!r}"
        )
    if count * UNIT_SECONDS[unit] > MAX_SECONDS:
        raise ValueError(f"a period can be at most 100 years, got {text!r}")
    return Period(unit, count)


def _is_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False
