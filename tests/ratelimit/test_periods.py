"""Window arithmetic: calendar units in any timezone, DST days, fixed-length multiples."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ratelimit.periods import Period, parse_duration, parse_period

UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def ts(*parts: int, tz: ZoneInfo = UTC_ZONE) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()  # type: ignore[arg-type,misc]


@pytest.mark.parametrize(
    ("period", "moment", "start", "end"),
    [
        (Period("month"), ts(2026, 1, 31, 23, 59), ts(2026, 1, 1), ts(2026, 2, 1)),
        (Period("month"), ts(2026, 12, 15), ts(2026, 12, 1), ts(2027, 1, 1)),
        (Period("month"), ts(2028, 2, 29, 12), ts(2028, 2, 1), ts(2028, 3, 1)),
        (Period("year"), ts(2026, 7, 1), ts(2026, 1, 1), ts(2027, 1, 1)),
        (Period("week"), ts(2026, 11, 26, 15), ts(2026, 11, 23), ts(2026, 11, 30)),  # Monday
        (Period("day"), ts(2026, 11, 23, 23, 59, 59), ts(2026, 11, 23), ts(2026, 11, 24)),
        (Period("hour"), ts(2026, 11, 23, 10, 30), ts(2026, 11, 23, 10), ts(2026, 11, 23, 11)),
        (
            Period("minute", 15),
            ts(2026, 11, 23, 10, 44),
            ts(2026, 11, 23, 10, 30),
            ts(2026, 11, 23, 10, 45),
        ),
    ],
)
def test_windows_in_utc(period: Period, moment: float, start: float, end: float):
    assert period.window_start(moment, UTC_ZONE) == start
    assert period.next_start(start, UTC_ZONE) == end


def test_day_windows_follow_dst_in_new_york():
    # 2026-03-08: clocks spring forward, the local day has 23 hours
    start = Period("day").window_start(ts(2026, 3, 8, 12, tz=NEW_YORK), NEW_YORK)
    end = Period("day").next_start(start, NEW_YORK)
    assert start == ts(2026, 3, 8, tz=NEW_YORK)
    assert end - start == 23 * 3600
    # 2026-11-01: clocks fall back, the local day has 25 hours
    start = Period("day").window_start(ts(2026, 11, 1, 12, tz=NEW_YORK), NEW_YORK)
    assert Period("day").next_start(start, NEW_YORK) - start == 25 * 3600


def test_month_in_new_york_starts_at_local_midnight():
    start = Period("month").window_start(ts(2026, 12, 1, 3, 0), NEW_YORK)  # still Nov 30 there
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 11, 1, 4, tzinfo=UTC)  # EDT


def test_hours_align_to_local_half_hours_in_kolkata():
    start = Period("hour").window_start(ts(2026, 11, 23, 10, 45), KOLKATA)
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_boundaries_are_previous_current_next_and_after():
    bounds = Period("month").boundaries_ms(ts(2026, 1, 15), UTC_ZONE)
    assert bounds == tuple(
        int(ts(2026, m, 1) * 1000) if m else int(ts(2025, 12, 1) * 1000) for m in (0, 1, 2, 3)
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30 minutes", 1800),
        ("1 hour", 3600),
        ("45s", 45),
        ("250ms", 0.25),
        ("2 days", 172800),
        ("hour", 3600),
    ],
)
def test_parse_duration(text: str, seconds: float):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3 fortnights", "1 month", "-5 minutes", "0 seconds"])
def test_parse_duration_refuses(text: str):
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "period"),
    [("hour", Period("hour")), ("15 minutes", Period("minute", 15)), ("months", Period("month"))],
)
def test_parse_period(text: str, period: Period):
    assert parse_period(text) == period


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 months", "calendar periods (day, week, month, year) take no count, got '2 months'"),
        (
            "fortnight",
            "unknown period unit 'fortnight'; "
            "use one of second, minute, hour, day, week, month, year",
        ),
        ("0 minutes", "period count must be positive, got '0 minutes'"),
    ],
)
def test_parse_period_refuses(text: str, message: str):
    with pytest.raises(ValueError, match="period") as error:
        parse_period(text)
    assert str(error.value) == message
