"""The sentences end users read, for each kind of limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from middleware.messages import duration, limit_detail, plural, suspended_detail
from ratelimit import Decision, Identity, Limiter, ManualClock
from ratelimit.admin import Admin
from ratelimit.decision import Suspension
from ratelimit.plans import Scope
from ratelimit.plans_file import load_policy
from ratelimit.storage.memory import MemoryStorage

SMALL = Path(__file__).parents[1] / "ratelimit" / "policies" / "small.toml"


def sentence(decision: Decision) -> str:
    """The detail of a refusal, for its binding limit."""
    assert not decision.allowed
    assert decision.binding is not None
    return limit_detail(decision, decision.binding)


async def refuse(plan: str, route: str, times: int, session: str | None = None) -> str:
    """The sentence for the request after `times` allowed ones."""
    clock = ManualClock(datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC))
    limiter = Limiter(load_policy(SMALL), MemoryStorage(), clock=clock)
    who = Identity("acme", "main", plan)
    for n in range(times):
        chat = session or f"c{n}"
        await limiter.check(who, route, session=chat if route == "chat" else None)
    return sentence(
        await limiter.check(who, route, session=session or "last" if route == "chat" else None)
    )


async def test_monthly_quota_sentence_with_upgrade():
    assert await refuse("free", "chat", 3) == (
        "This workspace has used all 3 chat sessions included in the Free plan this month. "
        "Chat sessions reset on 1 December 2026 at 00:00 UTC. "
        "Upgrade to Team for 10 chat sessions a month."
    )


async def test_hourly_sentence_with_contact():
    assert await refuse("big", "chat", 5) == (
        "This account has used all 5 chats included in the Big plan this hour. "
        "Try again in 60 minutes. To go beyond this limit, contact help@example.test."
    )


async def test_day_in_another_timezone_names_the_zone():
    assert await refuse("free", "call", 4) == (
        "This account has used all 4 requests included in the Free plan today. "
        "Requests reset on 24 November 2026 at 00:00 EST (America/New_York). "
        "To go beyond this limit, contact help@example.test."
    )


async def test_flood_guard_sentence():
    assert await refuse("big", "chat", 3, session="s") == (
        "This chat is sending messages faster than the Big plan allows (6 messages a minute). "
        "Try again in 10 seconds."
    )


async def test_cap_sentence():
    clock = ManualClock(datetime(2026, 11, 23, tzinfo=UTC))
    limiter = Limiter(load_policy(SMALL), MemoryStorage(), clock=clock)
    for workspace in ("a", "b"):
        await limiter.check(Identity("acme", workspace, "big"), "call")
    assert sentence(await limiter.check(Identity("acme", "c", "big"), "call")) == (
        "This account already has 2 workspaces, the most the Big plan allows. "
        "To go beyond this limit, contact help@example.test."
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 second"),
        (1.4, "2 seconds"),  # never sooner than Retry-After, which rounds up
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (7200, "2 hours"),
        (3 * 86400, "3 days"),
    ],
)
def test_duration(seconds: float, text: str):
    assert duration(seconds) == text


def test_plural():
    assert [plural("chat"), plural("chat", 1), plural("box"), plural("session")] == [
        "chats",
        "chat",
        "boxes",
        "sessions",
    ]
    assert [plural("reply"), plural("outbound reply", 2), plural("day"), plural("key")] == [
        "replies",
        "outbound replies",
        "days",
        "keys",
    ]


async def test_an_override_is_not_called_the_plans_own_amount():
    clock = ManualClock(datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC))
    limiter = Limiter(load_policy(SMALL), MemoryStorage(), clock=clock)
    await Admin(limiter).set_override("acme", "sessions_per_month", 2)
    who = Identity("acme", "main", "team")
    for chat in ("a", "b"):
        await limiter.check(who, "chat", session=chat)
    assert sentence(await limiter.check(who, "chat", session="c")).startswith(
        "This workspace has used all 2 chat sessions it is allowed this month. "
    )


async def test_an_upgrade_without_this_limit_is_offered_as_no_limit_on_it():
    """Not "unlimited chat sessions": the plan has no such limit, its others still hold."""
    clock = ManualClock(datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC))
    limiter = Limiter(load_policy(SMALL), MemoryStorage(), clock=clock)
    who = Identity("acme", "main", "team")  # 10 sessions a month, 5 chats an hour
    for n in range(10):
        assert (await limiter.check(who, "chat", session=f"c{n}")).allowed
        clock.advance(3600 if n % 4 == 3 else 1)
    assert sentence(await limiter.check(who, "chat", session="c10")).endswith(
        "Upgrade to Big for no limit on sessions per month."
    )


def test_a_suspensions_end_is_told_to_the_minute_never_early():
    until = datetime(2026, 11, 24, 10, 30, 15, tzinfo=UTC).timestamp()
    told = suspended_detail(Suspension(Scope.WORKSPACE, until), "help@example.test")
    assert told.startswith("This workspace is suspended until 24 November 2026 at 10:31 UTC.")
