"""Known denials answered without Redis, and dropped when the window ends, the plan differs,
an admin action is published or the subscription that would tell us is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ratelimit import Identity, Limiter, ManualClock
from ratelimit.admin import INVALIDATE_CHANNEL, Admin
from ratelimit.plans_file import load_policy, parse_policy
from ratelimit.storage.redis import RedisStorage

from ..conftest import ROOT
from ..redis_servers import plain

pytestmark = pytest.mark.redis
POLICIES = Path(__file__).parent / "policies"
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
PATIENCE = 10.0  # a hang guard only


def who(plan: str = "free", workspace: str = "main", account: str = "acme") -> Identity:
    return Identity(account, workspace, plan)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + PATIENCE
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


class Scripts:
    """EVALSHA calls Redis has run so far, from its own counters."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(port=port)

    def __call__(self) -> int:
        stats = self.client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def listening(limiter: Limiter) -> Limiter:
    """Start the subscription (any check does) and wait until it listens."""
    await limiter.check(who("free", account="warm-up"), "call")
    blocks = limiter.blocks
    assert blocks is not None
    await until(lambda: blocks.listening, "the invalidation subscription")
    return limiter


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def small(redis_url: str, clock: ManualClock) -> AsyncIterator[Limiter]:
    limiter = Limiter(load_policy(POLICIES / "small.toml"), RedisStorage(redis_url), clock=clock)
    yield await listening(limiter)
    await limiter.close()


@pytest.fixture
def scripts(redis_server) -> Scripts:
    return Scripts(redis_server.port)


async def spend_calls(limiter: Limiter, identity: Identity) -> None:
    for _ in range(4):  # small.toml: 4 calls a day
        assert (await limiter.check(identity, "call")).allowed


async def test_a_known_denial_costs_no_script_until_the_window_ends(
    small: Limiter, clock: ManualClock, scripts: Scripts
):
    await spend_calls(small, who())
    first = await small.check(who(), "call")
    assert not first.allowed
    assert [s.name for s in first.exceeded] == ["calls_per_day"]
    before = scripts()
    clock.advance(30)
    again = [await small.check(who(), "call") for _ in range(20)]
    assert scripts() == before + 1  # the first retry asks Redis and is learned; then here
    assert all(not d.allowed and d.exceeded == () for d in again)
    assert again[0].binding is not None
    assert first.binding is not None
    assert again[0].binding.name == "calls_per_day"
    assert again[0].retry_after == first.retry_after - 30
    assert again[0].binding.used == 4
    clock.set(first.binding.reset_at or 0)  # the window ends: Redis decides again
    assert (await small.check(who(), "call")).allowed
    assert scripts() == before + 2


async def test_another_plan_or_workspace_is_not_blocked(small: Limiter, scripts: Scripts):
    for chat in ("a", "b", "c"):
        assert (await small.check(who(), "chat", session=chat)).allowed
    refused = await small.check(who(), "chat", session="d")
    assert not refused.allowed
    assert not (await small.check(who(), "chat", session="d")).allowed  # retried: learned
    before = scripts()
    assert not (await small.check(who(), "chat", session="d")).allowed  # the same chat: cached
    assert scripts() == before
    # a live chat of the blocked workspace goes on; a new one is asked about, and refused
    assert (await small.check(who(), "chat", session="a")).allowed
    assert not (await small.check(who(), "chat", session="e")).allowed
    # the plan is part of what is remembered: on Team the same chat starts
    assert (await small.check(who("team"), "chat", session="d")).allowed
    assert scripts() == before + 3


async def test_published_invalidation_drops_the_account(
    small: Limiter, redis_url: str, clock: ManualClock, scripts: Scripts
):
    await spend_calls(small, who())
    await spend_calls(small, who(account="bystander"))
    for _ in range(2):  # refused, then retried: learned
        assert not (await small.check(who(), "call")).allowed
        assert not (await small.check(who(account="bystander"), "call")).allowed
    blocks = small.blocks
    assert blocks is not None
    assert {"acme", "bystander"} <= set(blocks.accounts)
    # an admin in another process resets the account: the message comes over Redis
    other = Limiter(small.policy, RedisStorage(redis_url), clock=clock)
    try:
        assert await Admin(other).reset("acme") > 0
    finally:
        await other.close()
    await until(lambda: "acme" not in blocks.accounts, "the invalidation")
    assert "bystander" in blocks.accounts
    assert (await small.check(who(), "call")).allowed
    before = scripts()
    assert not (await small.check(who(account="bystander"), "call")).allowed
    assert scripts() == before
    publisher = redis.Redis.from_url(plain(redis_url))
    publisher.publish(INVALIDATE_CHANNEL, "*")
    publisher.close()
    await until(lambda: not blocks.accounts, "the invalidation of every account")


async def test_an_override_in_this_process_applies_to_the_next_request(small: Limiter):
    await spend_calls(small, who())
    assert not (await small.check(who(), "call")).allowed
    await Admin(small).set_override("acme", "calls_per_day", 6)
    decision = await small.check(who(), "call")
    assert decision.allowed
    assert decision.binding is not None
    assert decision.binding.limit.amount == 6


async def test_a_lost_subscription_forgets_every_denial(
    small: Limiter, redis_server, scripts: Scripts
):
    await spend_calls(small, who())
    assert not (await small.check(who(), "call")).allowed
    assert not (await small.check(who(), "call")).allowed  # retried: learned
    blocks = small.blocks
    assert blocks is not None
    assert blocks.accounts
    redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
    await until(lambda: not blocks.listening, "the lost subscription")
    assert not blocks.accounts
    before = scripts()
    assert not (await small.check(who(), "call")).allowed
    assert scripts() == before + 1  # not learned while nobody listens
    await until(lambda: blocks.listening, "the subscription again")
    for _ in range(4):  # refused and retried (both asked), then answered here
        assert not (await small.check(who(), "call")).allowed
    assert scripts() == before + 3


async def test_a_suspension_is_answered_here_until_lifted(
    redis_url: str, clock: ManualClock, scripts: Scripts
):
    policy = load_policy(POLICIES / "lifecycle.toml")  # 3 denials in an hour suspend for 2 hours
    limiter = await listening(Limiter(policy, RedisStorage(redis_url), clock=clock))
    try:
        for _ in range(10):
            assert (await limiter.check(who(), "call")).allowed
        denials = [await limiter.check(who(), "call") for _ in range(3)]
        assert scripts() >= 13  # a plan with a suspension rule: every denial is counted
        assert denials[2].suspends is not None
        before = scripts()
        held = [await limiter.check(who(), "call") for _ in range(5)]
        held.append(await limiter.check(who(), "chat", session="any"))
        assert scripts() == before
        assert all(d.suspended is not None for d in held)
        assert held[0].suspended == denials[2].suspends
        assert (await limiter.check(who(workspace="other"), "call")).suspended is None
        assert await Admin(limiter).unsuspend("acme", "main")
        refused = await limiter.check(who(), "call")  # the limit is still spent
        assert refused.suspended is None
        assert not refused.allowed
    finally:
        await limiter.close()


async def test_new_chat_ids_refused_once_each_leave_nothing_cached(
    small: Limiter, scripts: Scripts
):
    """A flood of never-repeated chat ids is not remembered: nothing for the collector to walk."""
    for chat in ("a", "b", "c"):
        assert (await small.check(who(), "chat", session=chat)).allowed
    blocks = small.blocks
    assert blocks is not None
    before = scripts()
    for n in range(300):
        assert not (await small.check(who(), "chat", session=f"new-{n}")).allowed
    assert scripts() == before + 300
    assert blocks.size == 0
    assert not (await small.check(who(), "chat", session="new-7")).allowed  # a retry: learned
    assert blocks.size == 1


async def test_a_workspace_named_star_is_not_the_whole_account(small: Limiter, scripts: Scripts):
    """The account-wide record's field is "*"; a workspace of that name is escaped in Redis
    and must be kept apart here too."""
    blocks = small.blocks
    assert blocks is not None
    epoch = blocks.epoch
    await Admin(small).suspend("acme", "*", reason="abuse")
    # this process's own invalidation at once, then its echo over pub/sub
    await until(lambda: blocks.epoch >= epoch + 2, "the suspension's invalidations")
    assert (await small.check(who(workspace="*"), "call")).suspended is not None
    before = scripts()
    assert (await small.check(who(workspace="*"), "call")).suspended is not None
    assert scripts() == before  # answered from what this process learned
    other = await small.check(who(workspace="other"), "call")
    assert (other.allowed, other.suspended) == (True, None)


async def test_the_cache_answers_the_later_of_two_suspensions(small: Limiter, clock: ManualClock):
    admin = Admin(small)
    blocks = small.blocks
    assert blocks is not None
    epoch = blocks.epoch
    await admin.suspend("acme", "main", until=clock.now() + 60)
    await admin.suspend("acme", until=clock.now() + 3600)
    await until(lambda: blocks.epoch >= epoch + 4, "both invalidations and their echoes")
    first = (await small.check(who(), "call")).suspended
    cached = (await small.check(who(), "call")).suspended
    assert first == cached
    assert cached is not None
    assert cached.until == clock.now() + 3600


TWO_ROUTES = """
[policy]
name = "two routes of one chat"
contact = "help@example.test"

[routes.message]
match = "POST /chats/{chat_id}/messages"
session = "path:chat_id"

[routes.typing]
match = "POST /chats/{chat_id}/typing"
session = "path:chat_id"

[limits.sessions_per_month]
kind = "fixed_window"
per = "month"
scope = "workspace"
counts = "sessions"
routes = ["message"]
limit = 2

[limits.typing_flood]
kind = "token_bucket"
per = "minute"
limit = 60
scope = "session"
routes = ["typing"]

[plans.free]
"""


async def test_a_refused_chat_that_starts_on_another_route_is_no_longer_refused(
    redis_url: str, clock: ManualClock
):
    """The sessions quota is spent, so chat c3 is refused, and its retry cached. Typing in c3
    (a route without that quota) starts it: a live chat's messages add nothing to the quota,
    so Redis lets them through, and so must the process that cached the refusal."""
    limiter = Limiter(parse_policy(TWO_ROUTES, "two.toml"), RedisStorage(redis_url), clock=clock)
    try:
        for chat in ("c1", "c2"):
            assert (await limiter.check(who(), "message", session=chat)).allowed
        blocks = limiter.blocks
        assert blocks is not None
        await until(lambda: blocks.listening, "the invalidation subscription")
        for _ in range(2):
            assert not (await limiter.check(who(), "message", session="c3")).allowed
        assert blocks.size == 1
        typing = await limiter.check(who(), "typing", session="c3")
        assert typing.allowed
        assert typing.new_session
        assert (await limiter.check(who(), "message", session="c3")).allowed
        epoch = blocks.epoch
        assert (await limiter.check(who(), "typing", session="c4")).new_session
        await asyncio.sleep(0.2)  # time for a message that should not come
        assert blocks.epoch == epoch, "a new chat with no refusal before it published"
    finally:
        await limiter.close()


async def test_a_refused_chat_started_on_another_plan_is_let_through_by_every_process(
    redis_url: str, clock: ManualClock
):
    """Sandbox's sessions are spent and chat `late` is refused, its retry cached in one process;
    another process starts it on Pro. Back on Sandbox it is a live chat, which a spent sessions
    quota never refuses: the first process hears of it over Redis."""
    policy = load_policy(ROOT / "plans.toml")
    cached = Limiter(policy, RedisStorage(redis_url), clock=clock)
    other = Limiter(policy, RedisStorage(redis_url), clock=clock)
    sandbox, pro = who("sandbox", account="acme-plans"), who("pro", account="acme-plans")
    try:
        for n in range(100):
            assert (await cached.check(sandbox, "chat_message", session=f"c{n}")).allowed
        blocks = cached.blocks
        assert blocks is not None
        await until(lambda: blocks.listening, "the invalidation subscription")
        for _ in range(2):
            assert not (await cached.check(sandbox, "chat_message", session="late")).allowed
        assert blocks.size == 1
        assert (await other.check(pro, "chat_message", session="late")).new_session
        await until(lambda: blocks.size == 0, "the invalidation from the other process")
        assert (await cached.check(sandbox, "chat_message", session="late")).allowed
    finally:
        await cached.close()
        await other.close()
