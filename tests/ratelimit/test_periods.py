"""Window arithmetic: calendar units in any timezone, DST days, fixed-length multiples."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_a_day_whose_midnight_dst_skips_starts_when_the_clocks_jump():
    """Cairo, 2024-04-26: 00:00 becomes 01:00. The 25th ends, and the 26th starts, then."""
    cairo = ZoneInfo("Africa/Cairo")
    jump = datetime(2024, 4, 25, 22, tzinfo=UTC).timestamp()  # 00:00 +02 = 01:00 +03
    day = Period("day")
    late_on_the_25th = datetime(2024, 4, 25, 23, 30, tzinfo=cairo).timestamp()
    assert day.window_start(late_on_the_25th, cairo) == ts(2024, 4, 25, tz=cairo)
    assert day.next_start(ts(2024, 4, 25, tz=cairo), cairo) == jump
    assert day.window_start(jump + 60, cairo) == jump
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06: 00:00 becomes 01:00
    start = day.window_start(datetime(2026, 9, 6, 12, tzinfo=santiago).timestamp(), santiago)
    assert datetime.fromtimestamp(start, santiago) == datetime(2026, 9, 6, 1, tzinfo=santiago)


def test_a_midnight_that_comes_twice_starts_the_day_at_its_first_pass():
    """Havana, 2026-11-01: 01:00 goes back to 00:00. Both passes through the repeated hour
    must name the same window, or two processes would count one day twice."""
    havana = ZoneInfo("America/Havana")
    first_midnight = datetime(2026, 11, 1, 4, tzinfo=UTC).timestamp()  # 00:00 -04
    for period in (Period("day"), Period("month")):
        for minutes in (10, 70):  # 00:10 on the first pass, 00:10 on the second
            moment = first_midnight + minutes * 60
            assert period.window_start(moment, havana) == first_midnight
    assert Period("day").next_start(first_midnight, havana) - first_midnight == 25 * 3600


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


@pytest.mark.parametrize(
    "text",
    ["", "soon", "3 fortnights", "1 month", "-5 minutes", "0 seconds",
     "inf hours", "infh", "nan s", "1e400 minutes", "1e12d", "36601 days"],
)  # fmt: skip
def test_parse_duration_refuses(text: str):
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_duration(text)


def test_periods_and_durations_stop_at_a_century():
    """Past that, a suspension's end or a window's bounds leave what dates can show (500s)."""
    assert parse_duration("36600 days") == 36600 * 86400
    assert parse_period("876000 hours") == Period("hour", 876000)
    with pytest.raises(ValueError, match="a period can be at most 100 years"):
        parse_period("100000000000 hours")


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


ZONES = ["Africa/Cairo", "America/Havana", "America/Santiago", "America/New_York",
         "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham"]  # fmt: skip


@cache
def jumps(zone: str) -> list[float]:
    """The instants, 2024-2027, at which the zone's clocks change: where windows go wrong."""
    tz = ZoneInfo(zone)
    found, hour = [], ts(2024, 1, 1)
    offset = datetime.fromtimestamp(hour, tz).utcoffset()
    while hour < ts(2028, 1, 1):
        hour += 1800  # Lord Howe moves by half an hour
        now = datetime.fromtimestamp(hour, tz).utcoffset()
        if now != offset:
            found.append(hour)
            offset = now
    return found or [ts(2026, 6, 1)]


NEAR_JUMPS = st.sampled_from(ZONES).flatmap(
    lambda zone: st.tuples(
        st.just(zone),
        st.sampled_from(jumps(zone)).flatmap(
            lambda jump: st.integers(-2 * 86_400_000, 2 * 86_400_000).map(
                lambda ms: jump + ms / 1000  # fairuse's clock reads milliseconds
            )
        ),
    )
)


PERIODS = [Period("minute", 15), Period("hour"), Period("hour", 2), Period("hour", 6),
           Period("day"), Period("week"), Period("month"), Period("year")]  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(near=NEAR_JUMPS, period=st.sampled_from(PERIODS))
def test_every_instant_is_in_exactly_one_window(near: tuple[str, float], period: Period):
    """Windows tile time in any zone, around each DST change: each instant's window holds it,
    starts at a window start, and the next window starts where it ends."""
    zone, moment = near
    tz = ZoneInfo(zone)
    start = period.window_start(moment, tz)
    end = period.next_start(start, tz)
    assert start <= moment < end
    assert period.window_start(start, tz) == start
    assert period.window_start(end, tz) == end
    assert period.window_start(end - 0.001, tz) == start
