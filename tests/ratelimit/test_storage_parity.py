"""The Lua script and its Python twin agree result for result on long random sequences."""

from __future__ import annotations

import random

import pytest

from ratelimit.storage.memory import MemoryStorage
from ratelimit.storage.redis import RedisStorage

pytestmark = pytest.mark.redis

HOUR = 3_600_000
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def fixed(limit: int, cost: int, now: int, notify: int, gate: bool = False) -> list[str]:
    start = now - now % HOUR
    bounds = [start - HOUR, start, start + HOUR, start + 2 * HOUR]
    head = ["1", "1" if gate else "0", str(limit), str(cost)]
    return head + [str(b) for b in bounds] + [str(notify)]


def sliding(limit: int, cost: int, window: int, notify: int) -> list[str]:
    return ["2", "0", str(limit), str(cost), str(window), "", "", "", str(notify)]


def bucket(rate: int, cost: int, burst: int, per: int) -> list[str]:
    return ["3", "0", str(rate), str(cost), str(burst), str(per), "", "", "0"]


def distinct(limit: int, member: str) -> list[str]:
    return ["4", "0", str(limit), "1", member, str(10**10), "", "", "0"]


def random_request(rng: random.Random, now: int) -> tuple[list[str], list[str]]:
    session = rng.random() < 0.5
    keys = [f"t:{{a}}:s:{rng.randrange(3)}"] if session else []
    argv = [str(now), "1" if rng.random() < 0.9 else "0", "5000" if session else "0"]
    ops: list[list[str]] = []
    for name in rng.sample(["f1", "f2", "s1", "b1", "d1"], rng.randint(1, 4)):
        cost = rng.choice([0, 1, 1, 1, 2, 5])
        if name.startswith("f"):
            ops.append(fixed(rng.choice([3, 7]), cost, now, rng.choice([0, 2, 5]), name == "f1"))
        elif name == "s1":
            ops.append(sliding(6, cost, 10_000, 4))
        elif name == "b1":
            ops.append(bucket(rng.choice([1, 3]), cost, 4, 10_000))
        else:
            ops.append(distinct(2, f"w{rng.randrange(4)}"))
        keys.append(f"t:{{a}}:l:{name}")
    argv.append(str(len(ops)))
    for op in ops:
        argv += op
    return keys, argv


@pytest.mark.parametrize("seed", range(6))
async def test_random_sequences_agree(redis_url: str, seed: int) -> None:
    rng = random.Random(seed)
    memory, remote = MemoryStorage(), RedisStorage(redis_url)
    now = START + rng.randrange(HOUR)
    try:
        for _ in range(400):
            now += rng.choice([0, 1, 7, 300, 2_000, 9_000, 40_000, 900_000])
            keys, argv = random_request(rng, now)
            expected = await memory.decide(keys, argv)
            assert await remote.decide(keys, argv) == expected, (keys, argv)
    finally:
        await remote.close()


async def test_denied_request_consumes_nothing(redis_url: str) -> None:
    remote = RedisStorage(redis_url)
    try:
        keys = ["t:{a}:l:small", "t:{a}:l:big"]
        now = START + 5
        argv = ["", "1", "0", "2", *fixed(1, 1, now, 0), *fixed(100, 1, now, 0)]
        argv[0] = str(now)
        first = await remote.decide(keys, argv)
        second = await remote.decide(keys, argv)
        assert first[0] == 1
        assert second[0] == 0
        # the big limit's used count stayed at 1: the denied request touched neither counter
        assert second[3 + 7 + 1] == 1
        assert second[3 + 7 + 2] == 99
    finally:
        await remote.close()
