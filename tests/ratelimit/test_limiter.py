"""The behaviour suite: every test runs on the memory and the Redis backend alike."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratelimit import FairUseError, Identity, Limiter, LimitStatus, ManualClock, Policy
from ratelimit.admin import Admin
from ratelimit.plans_file import load_policy, parse_policy
from ratelimit.storage import Storage

SMALL = Path(__file__).parent / "policies" / "small.toml"


@pytest.fixture(scope="module")
def small() -> Policy:
    return load_policy(SMALL)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def who(plan: str = "free", account: str = "acme", workspace: str = "main") -> Identity:
    return Identity(account=account, workspace=workspace, plan=plan)


async def test_new_sessions_count_once_and_the_fourth_is_denied(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    for chat in ("a", "b", "c"):
        decision = await limiter.check(who(), "chat", session=chat)
        assert decision.allowed
        assert decision.new_session
        again = await limiter.check(who(), "chat", session=chat)
        assert again.allowed
        assert not again.new_session
    denied = await limiter.check(who(), "chat", session="d")
    assert not denied.allowed
    assert denied.binding is not None
    assert denied.binding.name == "sessions_per_month"
    assert (denied.binding.used, denied.binding.remaining) == (3, 0)
    assert denied.upgrade is not None
    assert denied.upgrade.plan == "team"
    assert denied.upgrade.amount == 10
    # Retry-After is the time to the month's end, never earlier.
    assert denied.retry_after == int(at(2026, 12, 1).timestamp() - clock.now())
    # messages in a live session keep flowing after the session quota is spent
    assert (await limiter.check(who(), "chat", session="a")).allowed


async def test_denied_request_consumes_nothing(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    for chat in ("a", "b", "c"):
        await limiter.check(who(), "chat", session=chat)
    for _ in range(5):
        assert not (await limiter.check(who(), "chat", session="new")).allowed
    peek = await limiter.peek(who())
    hourly = next(s for s in peek.statuses if s.name == "chats_per_hour")
    assert hourly.used == 3  # the denied new chats never counted toward the hour


async def test_session_timeout_starts_a_new_session(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    assert (await limiter.check(who(), "chat", session="a")).new_session
    clock.advance(9 * 60)
    assert not (await limiter.check(who(), "chat", session="a")).new_session
    clock.advance(9 * 60)  # idle time restarts with every message
    assert not (await limiter.check(who(), "chat", session="a")).new_session
    clock.advance(10 * 60)
    decision = await limiter.check(who(), "chat", session="a")
    assert decision.new_session
    used = {s.name: s.used for s in decision.statuses}
    assert used["sessions_per_month"] == 2


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (at(2026, 1, 31, 23, 59, 59), at(2026, 2, 1)),
        (at(2026, 12, 31, 23, 59, 59), at(2027, 1, 1)),
        (at(2028, 2, 28, 12), at(2028, 3, 1)),  # leap year: Feb 29 is still February
    ],
)
async def test_monthly_quota_resets_at_month_end(
    small: Policy, storage: Storage, before: datetime, after: datetime
):
    clock = ManualClock(before)
    limiter = Limiter(small, storage, clock=clock)
    for chat in ("a", "b", "c"):
        assert (await limiter.check(who(), "chat", session=chat)).allowed
    denied = await limiter.check(who(), "chat", session="d")
    assert not denied.allowed
    assert denied.binding is not None
    assert denied.binding.reset_at == after.timestamp()
    if before.month == 2:
        clock.set(at(2028, 2, 29, 23, 59))
        assert not (await limiter.check(who(), "chat", session="e")).allowed
    clock.set(after)
    assert (await limiter.check(who(), "chat", session="d")).allowed


async def test_hourly_chats_are_per_account_across_workspaces(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10, 30))
    limiter = Limiter(small, storage, clock=clock)
    for n in range(5):
        workspace = f"w{n % 3}"
        assert (
            await limiter.check(who("team", workspace=workspace), "chat", session=f"c{n}")
        ).allowed
    denied = await limiter.check(who("team", workspace="w9"), "chat", session="c9")
    assert not denied.allowed
    assert denied.binding is not None
    assert denied.binding.name == "chats_per_hour"
    assert denied.upgrade is None
    assert denied.contact == "help@example.test"
    assert 0 < denied.retry_after <= 1800
    clock.set(at(2026, 11, 23, 11))
    assert (await limiter.check(who("team", workspace="w9"), "chat", session="c9")).allowed


async def test_token_bucket_guards_one_session(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    results = [(await limiter.check(who("big"), "chat", session="s")).allowed for _ in range(4)]
    assert results == [True, True, True, False]  # burst of 3
    denied = await limiter.check(who("big"), "chat", session="s")
    assert denied.binding is not None
    assert denied.binding.name == "messages"
    assert denied.retry_after == 10  # 6 a minute: one token every 10 seconds
    clock.advance(10)
    assert (await limiter.check(who("big"), "chat", session="s")).allowed
    assert not (await limiter.check(who("big"), "chat", session="s")).allowed
    # another chat of the same workspace has its own bucket
    assert (await limiter.check(who("big"), "chat", session="other")).allowed


async def test_distinct_workspace_cap(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    assert (await limiter.check(who("big", workspace="one"), "call")).allowed
    assert (await limiter.check(who("big", workspace="two"), "call")).allowed
    denied = await limiter.check(who("big", workspace="three"), "call")
    assert not denied.allowed
    assert denied.binding is not None
    assert denied.binding.is_cap
    assert denied.binding.name == "workspaces"
    assert (await limiter.check(who("big", workspace="one"), "call")).allowed
    # a different account has its own cap
    assert (await limiter.check(who("big", account="other", workspace="three"), "call")).allowed


async def test_day_window_follows_its_timezone(small: Policy, storage: Storage):
    # 04:59 UTC is 23:59 in New York (EST, UTC-5): the day rolls at 05:00 UTC.
    clock = ManualClock(at(2026, 11, 24, 4, 59))
    limiter = Limiter(small, storage, clock=clock)
    for _ in range(4):
        assert (await limiter.check(who(), "call")).allowed
    denied = await limiter.check(who(), "call")
    assert not denied.allowed
    assert denied.retry_after == 60
    clock.set(at(2026, 11, 24, 5))
    assert (await limiter.check(who(), "call")).allowed


async def test_sliding_window_weights_the_previous_window(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10, 0, 0))
    limiter = Limiter(small, storage, clock=clock)
    for _ in range(4):
        assert (await limiter.check(who(), "burst")).allowed
    assert not (await limiter.check(who(), "burst")).allowed
    clock.advance(10)  # next window: the previous 4 weigh fully at its start
    denied = await limiter.check(who(), "burst")
    assert not denied.allowed
    assert denied.binding is not None
    assert 0 < denied.binding.retry_after <= 10
    clock.advance(5)  # half way: 4 * 0.5 = 2 still counted
    assert [(await limiter.check(who(), "burst")).allowed for _ in range(3)] == [True, True, False]


async def test_notice_once_when_crossing_notify_at(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    crossed = []
    for n in range(10):
        if n == 5:
            clock.advance(3600)  # a new hour; the month goes on
        decision = await limiter.check(who("team"), "chat", session=f"c{n}")
        crossed.append([s.name for s in decision.notices])
    # team: 5 chats an hour, notice at 80% = the 4th; 10 sessions a month -> the 8th
    assert crossed[3] == ["chats_per_hour"]
    assert crossed[7] == ["sessions_per_month"]
    assert crossed[8] == ["chats_per_hour"]
    assert sum(len(c) for c in crossed) == 3


async def test_sandbox_like_plan_gets_no_notices(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    notices = [
        (await limiter.check(who("free"), "chat", session=f"c{n}")).notices for n in range(3)
    ]
    assert notices == [(), (), ()]


async def test_first_denial_is_reported_once_per_window(small: Policy, storage: Storage):
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    for _ in range(4):
        await limiter.check(who(), "call")
    first = await limiter.check(who(), "call")
    second = await limiter.check(who(), "call")
    assert [s.name for s in first.exceeded] == ["calls_per_day"]
    assert second.exceeded == ()
    clock.advance(86400)
    for _ in range(4):
        await limiter.check(who(), "call")
    assert [s.name for s in (await limiter.check(who(), "call")).exceeded] == ["calls_per_day"]


async def test_peek_reads_without_consuming(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    await limiter.check(who("team"), "chat", session="a")
    for _ in range(3):
        peek = await limiter.peek(who("team"))
        used = {s.name: s.used for s in peek.statuses}
        assert used["sessions_per_month"] == 1
        assert used["chats_per_hour"] == 1


async def test_unlimited_limits_are_reported_but_not_stored(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    decision = await limiter.check(who("big"), "chat", session="a")
    sessions = next(s for s in decision.statuses if s.name == "sessions_per_month")
    assert sessions.limit.unlimited
    assert sessions.used is None
    assert await storage.delete_matching("fu:*sessions_per_month*") == 0


async def test_crafted_identifiers_stay_in_their_own_keys(small: Policy, storage: Storage):
    limiter = Limiter(small, storage, clock=ManualClock(at(2026, 11, 23, 10)))
    # an account id that tries to spell another account's key and hash tag
    evil = who(account="acme}:l:calls_per_day", workspace="main")
    for _ in range(4):
        assert (await limiter.check(evil, "call")).allowed
    assert not (await limiter.check(evil, "call")).allowed
    assert (await limiter.check(who(account="acme"), "call")).allowed
    weird = who(account="acme", workspace="main:s:x")
    assert (await limiter.check(weird, "chat", session="y")).new_session
    assert (
        await limiter.check(who(account="acme", workspace="main"), "chat", session="x:y")
    ).new_session


COSTLY = """
[policy]
name = "costly"
contact = "help@example.test"

[routes.read]
match = "GET /things"

[routes.report]
match = "POST /reports"
cost = 20

[routes.call]
match = "POST /calls"
cost = "header:X-Minutes"

[limits.units_per_day]
kind = "fixed_window"
per = "day"
limit = 100

[plans.basic]
"""


async def test_a_routes_own_cost_is_what_a_request_counts(storage: Storage):
    limiter = Limiter(
        parse_policy(COSTLY, "costly.toml"), storage, clock=ManualClock(at(2026, 11, 23))
    )
    basic = who("basic")
    assert (await limiter.check(basic, "read")).statuses[0].used == 1
    assert (await limiter.check(basic, "report")).statuses[0].used == 21
    assert (await limiter.check(basic, "report", cost=2)).statuses[0].used == 23  # the caller's
    assert (await limiter.check(basic, "call", cost=7)).statuses[0].used == 30
    with pytest.raises(FairUseError, match="takes its cost from header:x-minutes: pass cost="):
        await limiter.check(basic, "call")
    for _ in range(3):
        assert (await limiter.check(basic, "report")).allowed
    denied = await limiter.check(basic, "report")  # 90 used: 20 more would pass 100
    assert not denied.allowed
    assert denied.statuses[0].used == 90


async def test_what_adds_nothing_is_not_refused_below_a_lowered_amount(
    small: Policy, storage: Storage
):
    """After a downgrade or a lower override the count may stand above the amount: live chats
    and known workspaces carry on, as they do at the amount; only what would add is refused."""
    clock = ManualClock(at(2026, 11, 23, 10))
    limiter = Limiter(small, storage, clock=clock)
    for chat in "abcd":
        assert (await limiter.check(who("team"), "chat", session=chat)).new_session
    clock.advance(60)
    live = await limiter.check(who("free"), "chat", session="a")  # free: 3 a month, 4 used
    assert (live.allowed, live.new_session, live.retry_after) == (True, False, 0)
    new = await limiter.check(who("free"), "chat", session="e")
    assert not new.allowed
    assert new.binding is not None
    assert new.binding.name == "sessions_per_month"

    for workspace in ("first", "second"):
        assert (await limiter.check(who("big", workspace=workspace), "call")).allowed
    await Admin(limiter).set_override("acme", "workspaces", 1)
    for workspace in ("first", "second"):
        assert (await limiter.check(who("big", workspace=workspace), "call")).allowed
    third = await limiter.check(who("big", workspace="third"), "call")
    assert not third.allowed
    assert third.binding is not None
    assert third.binding.name == "workspaces"


SLIDING = """
[policy]
name = "sliding"
contact = "help@example.test"
notify_at = 0.8

[routes.call]
match = "POST /calls"

[limits.calls]
kind = "sliding_window"
per = "10 seconds"
limit = 10

[plans.basic]
"""


async def test_a_sliding_window_notices_once_across_its_boundary(storage: Storage):
    """The estimate carries the last window's count into the next, decaying: a request there
    crosses 80% again, seconds after the notice. One notice for both windows."""
    clock = ManualClock(at(2026, 11, 23, 10, 0, 8))
    limiter = Limiter(parse_policy(SLIDING, "sliding.toml"), storage, clock=clock)
    noticed: list[LimitStatus] = []
    for _ in range(8):  # the 8th crosses 80% of 10
        noticed += (await limiter.check(who("basic"), "call")).notices
    assert [s.name for s in noticed] == ["calls"]
    clock.advance(3)  # 1 s into the next window: the estimate is floor(8 x 0.9) = 7
    decision = await limiter.check(who("basic"), "call")  # 7 -> 8: across 80% again
    assert decision.allowed
    noticed += decision.notices
    assert [s.name for s in noticed] == ["calls"]
    clock.advance(20)  # two windows on, a new crossing is a new notice
    for _ in range(8):
        noticed += (await limiter.check(who("basic"), "call")).notices
    assert [s.name for s in noticed] == ["calls", "calls"]


async def test_a_sliding_windows_reset_counts_this_requests_own_use(storage: Storage):
    """The first use in an empty window resets when it leaves the estimate, two windows on;
    it was reported as resetting now (RateLimit t=0)."""
    clock = ManualClock(at(2026, 11, 23, 10, 0, 8))
    limiter = Limiter(parse_policy(SLIDING, "sliding.toml"), storage, clock=clock)
    first = (await limiter.check(who("basic"), "call")).statuses[0]
    assert (first.used, first.reset_at) == (1, at(2026, 11, 23, 10, 0, 20).timestamp())
    clock.advance(5)  # 10:00:13: the last window's 1 weighs 0.7, so the estimate is 0
    later = (await limiter.check(who("basic"), "call")).statuses[0]
    assert (later.used, later.reset_at) == (1, at(2026, 11, 23, 10, 0, 30).timestamp())


async def test_a_status_tells_whether_a_cost_could_ever_pass(storage: Storage):
    limiter = Limiter(
        parse_policy(COSTLY, "costly.toml"), storage, clock=ManualClock(at(2026, 11, 23))
    )
    units = (await limiter.check(who("basic"), "read")).statuses[0]
    assert (units.takes(100), units.takes(101)) == (True, False)  # 100 a day, in one go at most


async def test_a_limit_whose_kind_changes_under_its_name_starts_afresh(storage: Storage):
    """A reload (or a deploy) that turns a distinct cap into a counter keeps the name: the
    counter must not meet the cap's set (WRONGTYPE on Redis, for every request)."""
    capped = COSTLY.replace(
        "[plans.basic]",
        '[limits.workspaces]\nkind = "distinct"\ncounts = "workspaces"\nlimit = 2\n\n[plans.basic]',
    )
    counted = COSTLY.replace(
        "[plans.basic]",
        '[limits.workspaces]\nkind = "fixed_window"\nper = "day"\nlimit = 5\n\n[plans.basic]',
    )
    clock = ManualClock(at(2026, 11, 23))
    before = Limiter(parse_policy(capped, "plans.toml"), storage, clock=clock)
    assert (await before.check(who("basic"), "read")).allowed
    after = Limiter(parse_policy(counted, "plans.toml"), storage, clock=clock)
    decision = await after.check(who("basic"), "read")
    assert decision.allowed
    assert {s.name: s.used for s in decision.statuses}["workspaces"] == 1
    back = await before.check(who("basic", workspace="second"), "read")
    assert {s.name: s.used for s in back.statuses}["workspaces"] == 2
