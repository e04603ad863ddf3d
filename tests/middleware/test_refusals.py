"""A reused refusal is byte for byte what a fresh render of the same decision gives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from starlette.types import Message

from middleware import problems, refusals
from ratelimit import Decision, Identity, Limiter, ManualClock
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

ROOT = Path(__file__).parents[2]
SMALL = ROOT / "tests" / "ratelimit" / "policies" / "small.toml"


async def wire(problem: problems.Problem) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await problem.send(send)
    return sent


async def refusals_over_time(
    limiter: Limiter, clock: ManualClock, who: Identity, route: str, session: str, legacy: bool
) -> tuple[int, set[bytes]]:
    """Refuse every quarter second for three seconds; compare each reused render with a fresh
    one. Returns how many renders were reused and the Retry-After values seen."""
    reused, retry_afters = 0, set()
    previous: problems.Problem | None = None
    for _ in range(12):
        clock.advance(0.25)
        decision: Decision = await limiter.check(who, route, session=session)
        assert not decision.allowed
        cached = refusals.limit_reached(decision, legacy)
        fresh = problems.limit_reached(decision, legacy)
        assert cached is not fresh
        assert await wire(cached) == await wire(fresh)
        assert cached.body == fresh.body
        reused += cached is previous
        previous = cached
        retry_afters.add(dict(cached.headers)[b"retry-after"])
    return reused, retry_afters


async def test_spent_monthly_quota_reuses_exact_renders(redis_url: str) -> None:
    clock = ManualClock(datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC))
    limiter = Limiter(load_policy(ROOT / "plans.toml"), RedisStorage(redis_url), clock=clock)
    who = Identity("spent", "full-workspace", "sandbox")
    try:
        for n in range(100):
            assert (await limiter.check(who, "chat_message", session=f"fill-{n}")).allowed
        for legacy in (False, True):
            reused, retry_afters = await refusals_over_time(
                limiter, clock, who, "chat_message", "retry", legacy
            )
            assert reused > 0  # the cache was used, so the equality above was tested on it
            assert len(retry_afters) >= 3  # and its key moved with the seconds
    finally:
        await limiter.close()


async def test_token_bucket_reuses_exact_renders(redis_url: str) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC))
    limiter = Limiter(load_policy(SMALL), RedisStorage(redis_url), clock=clock)
    who = Identity("acme", "main", "free")
    try:
        for _ in range(3):  # the burst
            assert (await limiter.check(who, "chat", session="s1")).allowed
        reused, retry_afters = await refusals_over_time(limiter, clock, who, "chat", "s1", False)
        assert reused > 0
        assert len(retry_afters) >= 3
    finally:
        await limiter.close()
