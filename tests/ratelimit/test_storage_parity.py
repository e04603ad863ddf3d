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


@pytest.mark.cluster
@pytest.mark.parametrize("seed", range(6))
async def test_random_sequences_agree(redis_url: str, cluster_url: str, seed: int) -> None:
    """Memory, a single Redis and a three-master Cluster, answer for answer."""
    rng = random.Random(seed)
    memory, remote, cluster = MemoryStorage(), RedisStorage(redis_url), RedisStorage(cluster_url)
    now = START + rng.randrange(HOUR)
    try:
        for _ in range(400):
            now += rng.choice([0, 1, 7, 300, 2_000, 9_000, 40_000, 900_000])
            keys, argv = random_request(rng, now)
            keys = [key.replace("{a}", f"{{a{seed}}}") for key in keys]  # slots on every master
            expected = await memory.decide(keys, argv)
            assert await remote.decide(keys, argv) == expected, (keys, argv)
            assert await cluster.decide(keys, argv) == expected, (keys, argv)
    finally:
        await remote.close()
        await cluster.close()


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


OVERRIDES, SUSPENSIONS = "t:{a}:o", "t:{a}:x"


def lifecycle_request(rng: random.Random, now: int) -> tuple[list[str], list[str]]:
    """A random request with the lifecycle section: workspace, suspension rule, op names."""
    keys, argv = random_request(rng, now)
    names = [key.rsplit(":", 1)[1] for key in keys if ":l:" in key]
    workspace = rng.choice(["w1", "w2"])
    keys += [OVERRIDES, SUSPENSIONS, f"t:{{a}}:d:{workspace}"]
    argv += [workspace, str(rng.choice([0, 2, 3])), str(rng.choice([5_000, 60_000])), "30000"]
    for name in names:
        argv += [name, str(rng.choice([0, 500_000, 800_000, 999_999]))]
    return keys, argv


def admin_change(rng: random.Random, now: int) -> tuple[str, str, str | None]:
    """Set or delete one override or suspension record, maybe with an end in the past."""
    until = rng.choice(["", str(now - 1), str(now + rng.choice([1, 5_000, 100_000]))])
    if rng.random() < 0.5:
        field = rng.choice(["f1", "f2", "s1", "b1", "d1"]) + rng.choice(["", ":w:w1", ":w:w2"])
        value = f"{until}|{rng.choice([1, 2, 4, 9, 2**40 + 7])}"
        key = OVERRIDES
    else:
        field, value, key = rng.choice(["w1", "w2", "*"]), f"{until}|why", SUSPENSIONS
    return key, field, None if rng.random() < 0.3 else value


@pytest.mark.parametrize("seed", range(6))
async def test_random_sequences_with_lifecycle_agree(redis_url: str, seed: int) -> None:
    """Overrides, suspensions and denial counting, changed by an admin now and then."""
    rng = random.Random(1000 + seed)
    memory, remote = MemoryStorage(), RedisStorage(redis_url)
    now = START + rng.randrange(HOUR)
    tripped = held = overridden = 0
    try:
        for _ in range(400):
            now += rng.choice([0, 1, 7, 300, 2_000, 9_000, 40_000, 900_000])
            if rng.random() < 0.15:
                key, field, value = admin_change(rng, now)
                records = memory.space.values.setdefault(key, {})
                if value is None:
                    records.pop(field, None)
                    await remote.client.hdel(key, field)
                else:
                    records[field] = value
                    await remote.client.hset(key, field, value)
            keys, argv = lifecycle_request(rng, now)
            expected = await memory.decide(keys, argv)
            assert await remote.decide(keys, argv) == expected, (keys, argv)
            nops = int(argv[3])
            held += expected[0] == -2
            if expected[0] != -2:
                tripped += expected[3 + 7 * nops + 2]
                limits = expected[3 + 7 * nops + 3 :]
                overridden += any(str(n) != argv[4 + 9 * i + 2] for i, n in enumerate(limits))
    finally:
        await remote.close()
    # every lifecycle path was exercised
    assert held > 0
    assert tripped > 0
    assert overridden > 0
