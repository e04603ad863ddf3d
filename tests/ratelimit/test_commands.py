"""Decisions as whole commands built from templates (commands.py): byte-identical to the lists
every other storage gets, for any request and moment, and sent that way to a single Redis only."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware.identity import IdentityError, check_identifier
from ratelimit import Identity, Limiter, ManualClock, StorageError
from ratelimit.errors import FairUseError
from ratelimit.ops import CompiledOps, compile_ops
from ratelimit.plans import Policy
from ratelimit.plans_file import load_policy, parse_policy
from ratelimit.storage.breaker import OPEN
from ratelimit.storage.memory import MemoryStorage
from ratelimit.storage.redis import DECIDE_SHA, RedisStorage
from ratelimit.storage.resp import pack

from ..conftest import ROOT
from ..redis_servers import RedisProcess, plain

UNREACHABLE = "redis://127.0.0.1:1/0"  # connected lazily: building commands needs no server
HOUR_MS = 3600 * 1000

# Every kind, scope and cost source in one policy, windows in a timezone with DST.
EVERY_KIND = """
[policy]
name = "every kind"
contact = "ops@example.test"
timezone = "America/New_York"
[policy.suspension]
denials = 3
within = "1 hour"
for = "1 day"
[routes.chat]
match = "POST /chats/{chat_id}"
session = "path:chat_id"
user = "header:x-user"
[routes.reply]
match = "POST /tickets/{ticket_id}"
ticket = "path:ticket_id"
user = "header:x-user"
cost = "header:x-cost"
[routes.upload]
match = "POST /files"
upload = true
[limits.chats]
kind = "fixed_window"
per = "10 seconds"
counts = "sessions"
routes = ["chat"]
limit = 50
[limits.messages]
kind = "token_bucket"
per = "minute"
limit = 30
burst = 10
scope = "session"
routes = ["chat"]
[limits.per_user]
kind = "sliding_window"
per = "minute"
scope = "user"
routes = ["chat", "reply"]
limit = 20
[limits.per_ticket]
kind = "fixed_window"
per = "day"
scope = "ticket"
routes = ["reply"]
limit = 7
[limits.per_workspace]
kind = "fixed_window"
per = "month"
timezone = "Europe/London"
scope = "workspace"
limit = 1000
[limits.seats]
kind = "distinct"
counts = "users"
routes = ["chat", "reply"]
limit = 5
[limits.workspaces]
kind = "distinct"
counts = "workspaces"
limit = 3
[limits.upload_bytes]
kind = "fixed_window"
per = "year"
counts = "bytes"
routes = ["upload"]
limit = 10_000_000
[plans.only]
"""
POLICIES: list[Policy] = [
    load_policy(ROOT / "plans.toml"),
    *(load_policy(path) for path in sorted((ROOT / "examples").glob("*.toml"))),
    *(load_policy(path) for path in sorted((Path(__file__).parent / "policies").glob("*.toml"))),
    parse_policy(EVERY_KIND, "every-kind.toml"),
]


def passes_check(value: str) -> bool:
    try:
        check_identifier("id", value)
    except IdentityError:
        return False
    return True


EDGES = [":", "{", "}", "%", "%25", "a:b", "{acct}", "}:l:x", "é", "日本", "😀", " ", "a b", "~"]
EDGES += ["-._~", "x" * 128, "%" * 128, "😀" * 128, "0", "*3\r"]
IDS = st.one_of(
    st.sampled_from(EDGES),
    st.text(min_size=1, max_size=128),
).filter(passes_check)
MOMENTS = [  # boundaries of the policies' windows: years, months, days, a DST change
    datetime(2027, 1, 1, tzinfo=UTC),
    datetime(2026, 4, 1, tzinfo=ZoneInfo("Europe/London")),
    datetime(2026, 3, 8, 3, tzinfo=ZoneInfo("America/New_York")),
    datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
    datetime(2026, 6, 1, tzinfo=ZoneInfo("America/Chicago")),
]
TIMES = st.sampled_from([int(m.timestamp() * 1000) for m in MOMENTS]).flatmap(
    lambda ms: st.integers(ms - 2 * HOUR_MS, ms + 2 * HOUR_MS)
)


def limiter_for(
    policy: Policy, prefix: str = "fu", url: str = UNREACHABLE, clock: ManualClock | None = None
) -> Limiter:
    return Limiter(policy, RedisStorage(url), prefix=prefix, clock=clock)


def every_compiled(limiter: Limiter) -> list[CompiledOps]:
    """Routes (consumed or read), whole plans (peek) and byte quotas (record_bytes)."""
    return [*limiter._routes.values(), *limiter._peeks.values(), *limiter._byte_quotas.values()]


def lists_command(
    limiter: Limiter,
    compiled: CompiledOps,
    present: int,
    identity: Identity,
    session: str | None,
    consume: bool,
    cost: int,
    size: int,
    now_ms: int,
    now_arg: str,
) -> bytes:
    """What a single Redis was sent before templates: the lists, packed."""
    ops = compiled.by_present[present]
    keys, argv = limiter._arguments(
        compiled, ops, identity, session, consume, cost, size, now_ms, now_arg
    )
    return pack("EVALSHA", DECIDE_SHA, str(len(keys)), *keys, *argv)


def present_of(identity: Identity, session: str | None) -> int:
    """As Limiter._decide computes it."""
    return (
        (4 if session is not None else 0)
        + (2 if identity.user is not None else 0)
        + (1 if identity.ticket is not None else 0)
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(POLICIES),
    prefix=st.sampled_from(["fu", "app:v2", "{x}"]),
    data=st.data(),
)
def test_commands_equal_the_packed_lists(policy: Policy, prefix: str, data: st.DataObject):
    injected = data.draw(st.booleans(), "clock injected")  # else the server's: ARGV[1] is ""
    limiter = limiter_for(policy, prefix, clock=ManualClock(0) if injected else None)
    commands = limiter._commands
    assert commands is not None
    compiled_ops = every_compiled(limiter)
    for _ in range(data.draw(st.integers(1, 6), "requests")):  # templates reused across ids
        compiled = data.draw(st.sampled_from(compiled_ops))
        identity = Identity(
            data.draw(IDS, "account"),
            data.draw(IDS, "workspace"),
            compiled.plan.name,
            data.draw(st.none() | IDS, "user"),
            data.draw(st.none() | IDS, "ticket"),
        )
        session = data.draw(st.none() | IDS, "session")
        consume = data.draw(st.booleans(), "consume")
        cost = data.draw(st.integers(0, 2**53), "cost")
        size = data.draw(st.integers(0, 10**12), "uploaded_bytes")
        now_ms = data.draw(TIMES, "now_ms")
        now_arg = str(now_ms) if injected else ""  # as Limiter._request passes it
        if data.draw(st.booleans(), "storage clock disagreed"):
            limiter._windows.clear()
        present = present_of(identity, session)
        command = commands.build(
            compiled, present, consume, identity, session, cost, size, now_ms, now_arg
        )
        expected = lists_command(
            limiter, compiled, present, identity, session, consume, cost, size, now_ms, now_arg
        )
        assert command == expected


def test_the_lists_encoder_packs_what_pack_packs():
    """The reference of the property above is what the connection itself sends for lists."""
    limiter = limiter_for(POLICIES[0])
    storage = limiter.storage
    assert isinstance(storage, RedisStorage)
    assert storage._fast is not None
    compiled = limiter._routes[("pro", "chat_message")]
    identity = Identity("é{:}", "w%", "pro")
    keys, argv = limiter._arguments(
        compiled, compiled.by_present[4], identity, "😀", True, 1, 0, 1_795_000_000_000, ""
    )
    sent = storage._fast.evalsha_command(keys, argv)
    assert sent == pack("EVALSHA", DECIDE_SHA, str(len(keys)), *keys, *argv)


def test_a_template_follows_its_windows_and_their_clearing(monkeypatch: pytest.MonkeyPatch):
    limiter = limiter_for(POLICIES[0])
    commands = limiter._commands
    assert commands is not None
    compiled = limiter._routes[("pro", "chat_message")]
    identity = Identity("acct", "main", "pro")
    windows = limiter._windows
    consulted: list[int] = []
    around = windows.around

    def recording(window: Any, now_ms: int) -> Any:
        consulted.append(now_ms)
        return around(window, now_ms)

    monkeypatch.setattr(windows, "around", recording)

    def build(now_ms: int) -> bytes:
        command = commands.build(compiled, 4, True, identity, "c", 1, 0, now_ms, "")
        assert command is not None
        assert command == lists_command(limiter, compiled, 4, identity, "c", True, 1, 0, now_ms, "")
        return command

    hour = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000)
    first = build(hour - 1)
    consulted.clear()
    assert build(hour - 2) == first  # the same windows: the template needs none of them
    assert consulted == [hour - 2]  # ... only the lists did (one calendar window: the month)
    consulted.clear()
    windows.clear()  # the storage clock disagreed: nothing computed before is trusted
    assert build(hour - 2) == first
    assert len(consulted) == 2  # the template's window again, then the lists'
    assert build(hour) != first  # the month rolled over


def test_a_prefix_that_is_not_ascii_sends_lists():
    limiter = limiter_for(POLICIES[0], prefix="fü")
    commands = limiter._commands
    assert commands is not None
    identity = Identity("acct", "main", "pro")
    for compiled in every_compiled(limiter):
        built = commands.build(compiled, 4, True, identity, "c", 1, 0, 1_795_000_000_000, "")
        assert built is None


def non_ascii_limit_names(compiled: CompiledOps) -> CompiledOps:
    limits = [
        dataclasses.replace(op.limit, rule=dataclasses.replace(op.limit.rule, name=f"größe_{i}"))
        for i, op in enumerate(compiled.ops)
    ]
    return compile_ops(compiled.plan, (*limits, *compiled.passive))


def test_a_limit_name_that_is_not_ascii_sends_that_route_as_lists():
    limiter = limiter_for(POLICIES[0])
    commands = limiter._commands
    assert commands is not None
    identity = Identity("acct", "main", "pro")
    ascii_ops = limiter._routes[("pro", "chat_message")]
    renamed = non_ascii_limit_names(ascii_ops)
    now = 1_795_000_000_000
    assert commands.build(renamed, 4, True, identity, "c", 1, 0, now, "") is None
    assert commands.build(ascii_ops, 4, True, identity, "c", 1, 0, now, "") is not None


class Spying(RedisStorage):
    """Records which way each decision reached the storage."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.calls: list[str] = []

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        self.calls.append("lists")
        return await super().decide(keys, argv)

    async def decide_command(self, command: bytes) -> list[int]:
        self.calls.append("command")
        return await super().decide_command(command)


NOW = 1_795_000_000.0


@pytest.mark.redis
async def test_a_single_redis_gets_commands(redis_url: str):
    storage = Spying(redis_url)
    limiter = Limiter(POLICIES[0], storage, clock=ManualClock(NOW))
    who = Identity("acct", "main", "pro")
    try:
        first = await limiter.check(who, "chat_message", session="c1")
        second = await limiter.check(who, "chat_message", session="c1")
    finally:
        await limiter.close()
    assert storage.calls == ["command", "command"]
    assert first.new_session
    assert not second.new_session
    assert [s.used for s in second.statuses[:2]] == [1, 1]


@pytest.mark.redis
async def test_a_prefix_that_is_not_ascii_decides_through_lists(redis_url: str):
    storage = Spying(redis_url)
    limiter = Limiter(POLICIES[0], storage, clock=ManualClock(NOW), prefix="fü")
    who = Identity("acct", "main", "sandbox")
    try:
        decisions = [await limiter.check(who, "chat_message", session=f"c{n}") for n in range(3)]
        peek = await limiter.peek(who)
    finally:
        await limiter.close()
    assert storage.calls == ["lists", "command"] * 4  # decide packs the lists, then sends them
    assert [d.statuses[1].used for d in decisions] == [1, 2, 3]
    assert {s.name: s.used for s in peek.statuses}["sessions_per_month"] == 3
    assert "fü:{acct}:l:sessions_per_month:w:main" in stored_keys(redis_url)


@pytest.mark.redis
async def test_a_limit_name_that_is_not_ascii_decides_through_lists(redis_url: str):
    storage = Spying(redis_url)
    limiter = Limiter(POLICIES[0], storage, clock=ManualClock(NOW))
    renamed = non_ascii_limit_names(limiter._routes[("sandbox", "chat_message")])
    limiter._routes[("sandbox", "chat_message")] = renamed
    who = Identity("acct", "main", "sandbox")
    try:
        decisions = [await limiter.check(who, "chat_message", session=f"c{n}") for n in range(3)]
        assert storage.calls == ["lists", "command"] * 3
        storage.calls.clear()
        await limiter.check(who, "ticket")  # the other routes keep their commands
        assert storage.calls == ["command"]
    finally:
        await limiter.close()
    assert [d.statuses[1].used for d in decisions] == [1, 2, 3]
    assert "fu:{acct}:l:größe_1:w:main" in stored_keys(redis_url)


def stored_keys(url: str) -> set[str]:
    client = redis.Redis.from_url(plain(url), decode_responses=True)
    try:
        return {str(key) for key in client.keys("*")}
    finally:
        client.close()


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://127.0.0.1:1", "redis+sentinel://127.0.0.1:1/fairuse", "rediss://127.0.0.1:1"],
)
async def test_only_the_pipelined_connection_takes_commands(url: str):
    storage = RedisStorage(url)
    try:
        assert storage.command_sha is None
        assert Limiter(POLICIES[0], storage)._commands is None
        with pytest.raises(FairUseError):
            await storage.decide_command(b"*1\r\n$4\r\nPING\r\n")
    finally:
        await storage.close()
    assert Limiter(POLICIES[0], MemoryStorage())._commands is None


@pytest.mark.redis
async def test_commands_survive_a_script_flush_and_an_outage():
    """NOSCRIPT reloads the script; an outage is a StorageError and opens the breaker."""
    server = RedisProcess().start()
    try:
        await _flush_and_outage(server)
    finally:
        server.remove()


async def _flush_and_outage(server: RedisProcess) -> None:
    storage = Spying(server.url)
    limiter = Limiter(POLICIES[0], storage, clock=ManualClock(NOW))
    who = Identity("acct", "main", "pro")
    try:
        assert (await limiter.check(who, "chat_message", session="c")).allowed
        server.command("SCRIPT", "FLUSH")
        assert (await limiter.check(who, "chat_message", session="c")).allowed
        server.stop()
        for _ in range(storage.breaker.failures):
            with pytest.raises(StorageError):
                await limiter.check(who, "chat_message", session="c")
        assert storage.breaker.state == OPEN
        with pytest.raises(StorageError, match="unavailable"):
            await limiter.check(who, "chat_message", session="c")
        assert set(storage.calls) == {"command"}
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_a_cancelled_command_leaves_the_breaker_closed(redis_url: str, redis_server):
    storage = RedisStorage(redis_url)
    limiter = Limiter(POLICIES[0], storage, clock=ManualClock(NOW))
    who = Identity("acct", "main", "pro")
    try:
        assert (await limiter.check(who, "chat_message", session="c")).allowed
        redis_server.command("CLIENT", "PAUSE", "300", "ALL")
        pending = asyncio.ensure_future(limiter.check(who, "chat_message", session="c"))
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert storage.breaker.state == "closed"
        await asyncio.sleep(0.3)
        assert (await limiter.check(who, "chat_message", session="c")).allowed
    finally:
        await limiter.close()


@pytest.mark.benchmark
def test_the_command_cost_script_runs():
    """benchmarks/command_cost.py must keep working; it checks both ways make the same bytes."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.command_cost", "--calls", "200", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "chat message in a session" in done.stdout
