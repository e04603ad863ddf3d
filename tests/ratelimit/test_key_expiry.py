"""Redis memory stays bounded: every key fairuse writes expires within its window plus a minute.

Each key must match exactly one known kind, with the longest TTL that kind may carry, so a new
kind of key without a bound fails here until it gets one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from ratelimit import Identity, Limiter
from ratelimit.ops import DISTINCT_IDLE_MS
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..conftest import ROOT
from ..redis_servers import RedisProcess

pytestmark = pytest.mark.redis
SLACK = 60  # seconds every window-bound key outlives its window (decide.lua)
HOUR, DAY = 3600, 86400
MONTH = 31 * DAY
TAG = r"fu:\{[^{}:]*\}"
ID = r"[^{}:]+"

SHIPPED = {
    rf"{TAG}:l:chats_per_hour": 2 * HOUR + 1,  # sliding: this hour's and the last one's counts
    rf"{TAG}:l:sessions_per_month:w:{ID}": MONTH + SLACK,
    rf"{TAG}:l:account_sessions_per_month": MONTH + SLACK,
    rf"{TAG}:l:tickets_per_month": MONTH + SLACK,
    rf"{TAG}:l:messages_per_session:s:{ID}:{ID}": 60 * 20 // 30 + SLACK,  # refill 20 at 30/min
    rf"{TAG}:s:{ID}:{ID}": 30 * 60 + SLACK,  # a live chat session: the session timeout
    # denials towards suspension (an hour), and the end of a refused new chat's denial: at most
    # the reset of the longest window that counts sessions (decide.lua, "Refused new chats")
    rf"{TAG}:d:{ID}": MONTH + SLACK,
    rf"{TAG}:l:workspaces\.m": DISTINCT_IDLE_MS // 1000 + SLACK,  # a lifetime cap's members
}
SMALL = {
    rf"{TAG}:l:chats_per_hour": 2 * HOUR + 1,  # sliding: this hour's and the last one's counts
    rf"{TAG}:l:sessions_per_month:w:{ID}": MONTH + SLACK,
    rf"{TAG}:l:messages:s:{ID}:{ID}": 60 * 3 // 6 + SLACK,  # refill 3 at 6/min
    rf"{TAG}:s:{ID}:{ID}": 10 * 60 + SLACK,
    rf"{TAG}:l:calls_per_day": DAY + HOUR + SLACK,  # a New York day, 25 hours at most
    rf"{TAG}:l:calls_sliding": 2 * 10 + 1,  # two windows of 10 s, plus a second
    rf"{TAG}:l:workspaces\.m": DISTINCT_IDLE_MS // 1000 + SLACK,
    rf"{TAG}:d:{ID}": MONTH + SLACK,  # a refused new chat's denial: sessions_per_month's reset
}


async def busy(limiter: Limiter, plans: list[str], routes: list[str]) -> None:
    """Chats, repeats, refusals (a flooded chat) and every route, for a few accounts per plan."""
    for plan in plans:
        for n in range(3):
            who = Identity(f"{plan}-{n}", f"ws:{{{n}}}", plan)
            for chat in range(8):
                for route in routes:
                    session = f"chat/{chat % 5}" if route.startswith("chat") else None
                    await limiter.check(who, route, session=session)
            for _ in range(25):
                await limiter.check(who, routes[0], session="flooded")


def ttls(server: RedisProcess) -> dict[str, float]:
    client = redis.Redis(port=server.port, decode_responses=True)
    try:
        return {str(key): client.pttl(key) / 1000 for key in client.keys("*")}
    finally:
        client.close()


@pytest.mark.parametrize(
    ("policy", "plans", "routes", "bounds"),
    [
        (ROOT / "plans.toml", ["sandbox", "ltd"], ["chat_message", "ticket"], SHIPPED),
        (
            Path(__file__).parent / "policies" / "small.toml",
            ["free", "big"],
            ["chat", "call", "burst"],
            SMALL,
        ),
    ],
    ids=["shipped", "small"],
)
async def test_every_key_expires_within_its_window_and_a_minute(
    redis_url: str,
    redis_server: RedisProcess,
    policy: Path,
    plans: list[str],
    routes: list[str],
    bounds: dict[str, int],
):
    limiter = Limiter(load_policy(policy), RedisStorage(redis_url))
    try:
        await busy(limiter, plans, routes)
    finally:
        await limiter.close()
    found = ttls(redis_server)
    kinds: set[str] = set()
    for key, ttl in found.items():
        matching = [pattern for pattern in bounds if re.fullmatch(pattern, key)]
        assert len(matching) == 1, f"{key} matches {matching}: no known bound"
        assert 0 < ttl <= bounds[matching[0]], (key, ttl)
        kinds.add(matching[0])
    assert kinds == set(bounds)  # every kind was written, so every bound was checked
