"""Real Redis: exact admission across OS processes, one round trip per decision, bounded keys."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ratelimit import Identity, Limiter, ManualClock
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import patient

pytestmark = pytest.mark.redis
POLICY = Path(__file__).parent / "policies" / "concurrency.toml"
NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC).timestamp()
PROCESSES = 2


async def _attempts(url: str, route: str, count: int, worker: int) -> tuple[int, int, set[str]]:
    limiter = Limiter(load_policy(POLICY), RedisStorage(url), clock=ManualClock(NOW))
    try:

        async def one(n: int) -> tuple[bool, bool, str]:
            workspace = f"w{(n + worker) % 20}" if route == "join" else "main"
            identity = Identity("acct", workspace, "only")
            session = f"chat{n % 300}" if route == "chat" else None
            decision = await limiter.check(identity, route, session=session)
            return decision.allowed, decision.new_session and decision.allowed, workspace

        results = await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        await limiter.close()
    admitted = {w for ok, _, w in results if ok}
    return sum(ok for ok, _, _ in results), sum(new for _, new, _ in results), admitted


def _worker(url: str, route: str, count: int, worker: int) -> tuple[int, int, set[str]]:
    return asyncio.run(_attempts(url, route, count, worker))


@pytest.mark.parametrize(
    ("route", "per_process", "expected"),
    [("call", 400, 500), ("flood", 250, 300), ("chat", 450, 200), ("join", 60, 3)],
    ids=["fixed-window", "token-bucket", "sessions", "workspace-cap"],
)
def test_concurrent_processes_admit_exactly_the_limit(
    redis_url: str, route: str, per_process: int, expected: int
):
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        # exactness, not latency, is under test: a loaded machine must not turn into timeouts
        url = patient(redis_url, timeout=10, pool_timeout=10)
        jobs = [(url, route, per_process, w) for w in range(PROCESSES)]
        results = pool.starmap(_worker, jobs)
    admitted = sum(allowed for allowed, _, _ in results)
    if route == "chat":
        # 300 chat ids, each opened by both processes at once: exactly 200 sessions start, and
        # every later message of a started chat passes without counting again.
        assert sum(new for _, new, _ in results) == expected
        assert admitted > expected
    elif route == "join":
        workspaces = set().union(*(w for _, _, w in results))
        assert len(workspaces) == expected
    else:
        assert admitted == expected


async def test_one_round_trip_per_decision(redis_url: str, redis_server):
    """MONITOR shows every command a client sends; commands run inside the script say 'lua'."""
    policy = load_policy(Path(__file__).parents[2] / "plans.toml")
    limiter = Limiter(policy, RedisStorage(redis_url))
    who = Identity("acct", "main", "ltd")
    await limiter.check(who, "chat_message", session="warm-up")  # loads the script once
    seen: list[dict[str, str]] = []
    ready = threading.Event()

    def monitor() -> None:
        client = redis.Redis(port=redis_server.port)
        with client.monitor() as feed:  # type: ignore[no-untyped-call]
            ready.set()
            for entry in feed.listen():
                if entry["command"] == "PING":
                    break
                seen.append(entry)
        client.close()

    watcher = threading.Thread(target=monitor)
    watcher.start()
    ready.wait(5)
    await asyncio.sleep(0.2)
    try:
        for n in range(50):
            await limiter.check(who, "chat_message", session=f"c{n % 7}")
    finally:
        await limiter.close()
    redis.Redis(port=redis_server.port).ping()
    watcher.join(10)
    handshakes = {"HELLO", "CLIENT"}  # connection set-up (the final PING's own client)
    from_clients = [e["command"].split()[0].upper() for e in seen if e["client_type"] != "lua"]
    from_clients = [command for command in from_clients if command not in handshakes]
    from_script = [e for e in seen if e["client_type"] == "lua"]
    # chats_per_hour, messages_per_session and the workspace cap: three limits, one EVALSHA
    assert from_clients == ["EVALSHA"] * 50
    assert len(from_script) > 50


async def test_noscript_is_recovered(redis_url: str, redis_server):
    limiter = Limiter(load_policy(POLICY), RedisStorage(redis_url), clock=ManualClock(NOW))
    who = Identity("acct", "main", "only")
    try:
        assert (await limiter.check(who, "call")).allowed
        client = redis.Redis(port=redis_server.port)
        client.script_flush()
        client.close()
        decision = await limiter.check(who, "call")
        assert decision.allowed
        assert decision.binding is not None
        assert decision.binding.used == 2
    finally:
        await limiter.close()


async def test_every_key_has_a_ttl(redis_url: str, redis_server):
    policy = load_policy(Path(__file__).parents[2] / "plans.toml")
    limiter = Limiter(policy, RedisStorage(redis_url))
    try:
        await limiter.check(Identity("a", "w", "ltd"), "chat_message", session="c")
        await limiter.check(Identity("a", "w", "ltd"), "ticket")
        await limiter.check(Identity("b", "w", "sandbox"), "chat_message", session="c")
        for _ in range(25):
            await limiter.check(Identity("c", "w", "sandbox"), "chat_message", session="c")
    finally:
        await limiter.close()
    client = redis.Redis(port=redis_server.port)
    try:
        keys = client.keys("*")
        assert len(keys) >= 6
        ttls = {str(key): client.pttl(key) for key in keys}
    finally:
        client.close()
    assert all(ttl > 0 for ttl in ttls.values()), ttls
