"""App servers with skewed clocks agree on windows: the Redis server's clock decides."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

pytestmark = pytest.mark.redis
POLICY = Path(__file__).parent / "policies" / "concurrency.toml"
TWO_HOURS_MS = 2 * 3600 * 1000


class SkewedLimiter(Limiter):
    """A limiter on a server whose clock is off by `skew_ms`."""

    skew_ms = 0

    def _local_ms(self) -> int:
        return super()._local_ms() + self.skew_ms


@pytest.mark.parametrize("skew_ms", [TWO_HOURS_MS, -TWO_HOURS_MS, 59 * 60 * 1000])
async def test_skewed_servers_share_the_storage_clock_window(redis_url: str, skew_ms: int):
    policy = load_policy(POLICY)
    honest = Limiter(policy, RedisStorage(redis_url))
    skewed = SkewedLimiter(policy, RedisStorage(redis_url))
    skewed.skew_ms = skew_ms
    who = Identity("acct", "main", "only")
    hour_ends = {math.ceil(time.time() / 3600) * 3600}
    try:
        first = await skewed.check(who, "call")
        second = await honest.check(who, "call")
        third = await skewed.check(who, "call")
    finally:
        await honest.close()
        await skewed.close()
    hour_ends.add(math.ceil(time.time() / 3600) * 3600)
    for decision in (first, second, third):
        assert decision.binding is not None
        assert decision.binding.reset_at in hour_ends
    assert [d.binding.used for d in (first, second, third)] == [1, 2, 3]  # type: ignore[union-attr]
