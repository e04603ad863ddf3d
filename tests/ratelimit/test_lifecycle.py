"""Suspension after repeated denials and admin overrides, decided by the script itself.

Every test runs on the memory and the Redis backend alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratelimit import Identity, Limiter, ManualClock, Policy
from ratelimit.admin import Admin
from ratelimit.plans import Scope
from ratelimit.plans_file import load_policy
from ratelimit.storage import Storage

POLICY = Path(__file__).parent / "policies" / "lifecycle.toml"
START = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def limiter(policy: Policy, storage: Storage, clock: ManualClock) -> Limiter:
    return Limiter(policy, storage, clock=clock)


def who(plan: str = "free", workspace: str = "main", account: str = "acme") -> Identity:
    return Identity(account, workspace, plan)


async def spend_calls(limiter: Limiter, identity: Identity, count: int = 10) -> None:
    for _ in range(count):
        assert (await limiter.check(identity, "call")).allowed


async def test_third_denial_in_an_hour_suspends_the_workspace(limiter: Limiter, clock):
    await spend_calls(limiter, who())
    first = await limiter.check(who(), "call")
    assert not first.allowed
    assert first.suspends is None
    clock.advance(60)
    assert (await limiter.check(who(), "call")).suspends is None
    third = await limiter.check(who(), "call")
    assert not third.allowed
    assert third.suspended is None  # this denial is still a 429 for the limit...
    assert third.suspends is not None  # ...and it starts the suspension
    assert third.suspends.scope is Scope.WORKSPACE
    assert third.suspends.until == clock.now() + 2 * 3600

    refused = await limiter.check(who(), "status")  # a route with no counted limit at all
    assert not refused.allowed
    assert refused.suspended is not None
    assert refused.suspended.until == clock.now() + 2 * 3600
    assert refused.statuses == ()
    # the account's other workspaces carry on (calls_per_hour counts per account)
    assert (await limiter.check(who(workspace="other"), "status")).allowed
    clock.advance(2 * 3600)
    assert (await limiter.check(who(), "status")).allowed


async def test_denials_spread_beyond_the_period_never_suspend(limiter: Limiter, clock):
    for _ in range(3):
        await spend_calls(limiter, who())
        denied = await limiter.check(who(), "call")
        assert not denied.allowed
        assert denied.suspends is None
        clock.advance(3600)  # a new hour: calls reset, and the denial count starts over


async def test_a_plan_without_suspension_is_never_suspended(limiter: Limiter):
    await spend_calls(limiter, who("big"))
    for _ in range(10):
        denied = await limiter.check(who("big"), "call")
        assert not denied.allowed
        assert denied.suspended is None
        assert denied.suspends is None


async def test_suspension_and_unsuspension_by_an_admin(limiter: Limiter, clock):
    admin = Admin(limiter)
    await admin.suspend("acme", "main", reason="abuse report")
    refused = await limiter.check(who(), "call")
    assert refused.suspended is not None
    assert refused.suspended.until is None  # no end: until lifted
    peek = await limiter.peek(who())
    assert peek.suspended == refused.suspended  # peek reports it and reads the limits
    assert [s.reason for s in await admin.suspensions("acme")] == ["abuse report"]
    assert await admin.unsuspend("acme", "main")
    assert (await limiter.check(who(), "call")).allowed
    assert not await admin.unsuspend("acme", "main")

    await admin.suspend("acme", until=clock.now() + 60)  # the whole account, for a minute
    for workspace in ("main", "other"):
        held = (await limiter.check(who(workspace=workspace), "call")).suspended
        assert held is not None
        assert held.scope is Scope.ACCOUNT
    clock.advance(60)
    assert (await limiter.check(who(), "call")).allowed
    assert await admin.suspensions("acme") == []


async def test_override_is_in_force_on_the_next_request(limiter: Limiter, clock):
    admin = Admin(limiter)
    await spend_calls(limiter, who())
    assert not (await limiter.check(who(), "call")).allowed
    await admin.set_override("acme", "calls_per_hour", 12, until=clock.now() + 600)
    allowed = await limiter.check(who(), "call")
    assert allowed.allowed
    status = next(s for s in allowed.statuses if s.name == "calls_per_hour")
    assert (status.limit.amount, status.used, status.remaining) == (12, 11, 1)
    assert [s.name for s in allowed.notices] == []  # 80% of 12 is 10: crossed before
    assert (await limiter.check(who(), "call")).allowed
    assert not (await limiter.check(who(), "call")).allowed
    clock.advance(600)  # the override ended: back to the plan's 10
    denied = await limiter.check(who(), "call")
    assert denied.binding is not None
    assert denied.binding.limit.amount == 10


async def test_workspace_override_beats_the_account_one(limiter: Limiter):
    admin = Admin(limiter)
    await admin.set_override("acme", "sessions_per_month", 1)
    await admin.set_override("acme", "sessions_per_month", 3, workspace="main")
    for n in range(3):
        assert (await limiter.check(who("team"), "chat", session=f"c{n}")).allowed
    denied = await limiter.check(who("team"), "chat", session="c9")
    assert not denied.allowed
    assert denied.binding is not None
    assert denied.binding.limit.amount == 3
    assert denied.upgrade is not None  # big's 100 still lifts an override of 3
    assert (await limiter.check(who("team", "other"), "chat", session="c0")).allowed
    assert not (await limiter.check(who("team", "other"), "chat", session="c1")).allowed

    assert await admin.clear_override("acme", "sessions_per_month", workspace="main") == 1
    assert [o.workspace for o in await admin.overrides("acme")] == [None]
    assert await admin.clear_override("acme") == 1
    assert (await limiter.check(who("team"), "chat", session="c9")).allowed  # plan's 10


async def test_override_moves_the_notice_and_hides_a_smaller_upgrade(limiter: Limiter):
    admin = Admin(limiter)
    await admin.set_override("acme", "sessions_per_month", 200)
    crossed = [
        (await limiter.check(who("team"), "chat", session=f"c{n}")).notices for n in range(160)
    ]
    assert [n for n, notices in enumerate(crossed) if notices] == [159]  # the 160th: 80%
    for n in range(160, 200):
        assert (await limiter.check(who("team"), "chat", session=f"c{n}")).allowed
    denied = await limiter.check(who("team"), "chat", session="c200")
    assert denied.upgrade is None  # big's 100 is less than the 200 in force
    assert denied.contact == "help@example.test"


async def test_override_validation(limiter: Limiter, clock):
    from ratelimit import FairUseError

    admin = Admin(limiter)
    with pytest.raises(FairUseError, match="unknown limit 'calls'"):
        await admin.set_override("acme", "calls", 5)
    with pytest.raises(FairUseError, match="counts per account"):
        await admin.set_override("acme", "calls_per_hour", 5, workspace="main")
    with pytest.raises(FairUseError, match="from 1 to 10\\*\\*15 - 1, got 0"):
        await admin.set_override("acme", "calls_per_hour", 0)
    with pytest.raises(FairUseError, match="got 1000000000000000"):  # no RFC 8941 integer
        await admin.set_override("acme", "calls_per_hour", 10**15)
    with pytest.raises(FairUseError, match="in the past"):
        await admin.set_override("acme", "calls_per_hour", 5, until=clock.now() - 1)
    far = clock.now() + 101 * 366 * 86400  # its date could not even be shown
    with pytest.raises(FairUseError, match="more than 100 years away"):
        await admin.set_override("acme", "calls_per_hour", 5, until=far)
    with pytest.raises(FairUseError, match="more than 100 years away"):
        await admin.suspend("acme", "main", until=far)
    for empty in ("", " "):  # a record no request could match, nor tell from the account's
        with pytest.raises(FairUseError, match="the workspace id is empty"):
            await admin.set_override("acme", "sessions_per_month", 5, workspace=empty)
        with pytest.raises(FairUseError, match="the workspace id is empty"):
            await admin.suspend("acme", empty)
    with pytest.raises(FairUseError, match="unknown limit 'bogus'"):
        await admin.clear_override("acme", "bogus")
    for account, workspace in (("Jose\u0301", None), ("acme", "main\u3164"), ("", None)):
        # ids no request can carry (refused with 400 before any decision): no record to match
        with pytest.raises(FairUseError, match="so no request could match it"):
            await admin.set_override(account, "sessions_per_month", 5, workspace=workspace)
        with pytest.raises(FairUseError, match="so no request could match it"):
            await admin.suspend(account, workspace)
    assert await admin.overrides("acme") == []
    assert await admin.suspensions("acme") == []
    assert admin.not_counted_on("workspaces") == ["free", "team"]


async def test_clearing_a_limits_override_clears_it_for_every_workspace(limiter: Limiter):
    admin = Admin(limiter)
    await admin.set_override("acme", "sessions_per_month", 7)
    await admin.set_override("acme", "sessions_per_month", 8, workspace="main")
    await admin.set_override("acme", "sessions_per_month", 9, workspace="other")
    assert await admin.clear_override("acme", "sessions_per_month", workspace="other") == 1
    assert await admin.clear_override("acme", "sessions_per_month") == 2
    assert await admin.overrides("acme") == []


async def test_reset_clears_counters_and_denial_counts(limiter: Limiter):
    admin = Admin(limiter)
    await spend_calls(limiter, who())
    for _ in range(2):
        assert not (await limiter.check(who(), "call")).allowed
    assert await admin.reset("acme") >= 2  # the calls counter and the denial count
    await spend_calls(limiter, who())
    for _ in range(2):  # two more denials: the count started over, so no suspension yet
        assert (await limiter.check(who(), "call")).suspends is None
    for n in range(5):
        assert (await limiter.check(who(), "chat", session=f"c{n}")).allowed
    assert await admin.reset("acme", "main", limit="sessions_per_month") == 1
    assert (await limiter.check(who(), "chat", session="c5")).allowed


async def test_resetting_a_workspace_leaves_another_workspaces_chat_of_that_name(
    limiter: Limiter,
):
    """Workspace "w" has a chat named "support"; resetting workspace "support" must not
    touch that chat's message bucket (keys ...:l:messages:s:w:support)."""
    for _ in range(3):
        assert (await limiter.check(who(workspace="w"), "chat", session="support")).allowed
    assert not (await limiter.check(who(workspace="w"), "chat", session="support")).allowed
    await Admin(limiter).reset("acme", "support")
    still = await limiter.check(who(workspace="w"), "chat", session="support")
    assert not still.allowed  # the bucket is still empty
    assert still.binding is not None
    assert still.binding.name == "messages"


async def test_usage_report_lists_the_records(limiter: Limiter):
    admin = Admin(limiter)
    await admin.set_override("acme", "calls_per_hour", 50)
    await admin.set_override("acme", "sessions_per_month", 7, workspace="other")
    await admin.suspend("acme", "main", reason="checking")
    await limiter.check(who(workspace="other"), "call")
    usage = await admin.usage(who())
    assert [(o.limit, o.workspace) for o in usage.overrides] == [("calls_per_hour", None)]
    assert [s.workspace for s in usage.suspensions] == ["main"]
    assert usage.decision.suspended is not None
    calls = next(s for s in usage.decision.statuses if s.name == "calls_per_hour")
    assert (calls.limit.amount, calls.used) == (50, 1)


async def test_held_by_both_the_later_end_is_answered(limiter: Limiter, clock):
    """A workspace suspended for a minute inside an account suspended for an hour: retrying
    after the minute would only meet the account's, so the hour is the answer (and the reverse)."""
    admin = Admin(limiter)
    await admin.suspend("acme", "main", until=clock.now() + 60)
    await admin.suspend("acme", until=clock.now() + 3600)
    held = (await limiter.check(who(), "call")).suspended
    assert held is not None
    assert (held.scope, held.until) == (Scope.ACCOUNT, clock.now() + 3600)
    await admin.suspend("acme", "main")  # now the workspace's has no end
    held = (await limiter.check(who(), "call")).suspended
    assert held is not None
    assert (held.scope, held.until) == (Scope.WORKSPACE, None)
    other = (await limiter.check(who(workspace="other"), "call")).suspended
    assert other is not None
    assert other.scope is Scope.ACCOUNT
