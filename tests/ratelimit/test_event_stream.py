"""Events in a Redis stream: exactly one notice per scope, limit and window, from two OS
processes sending many concurrent requests; the stream is capped and read by groups."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from ratelimit import Identity, Limiter, ManualClock
from ratelimit.dispatch import EventDispatcher, configured_sinks
from ratelimit.event_stream import StreamSink, ack, follow, read_group, read_recent
from ratelimit.events import THRESHOLD, Event, events_for
from ratelimit.plans import EventSettings
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import patient, plain

pytestmark = pytest.mark.redis
POLICY = Path(__file__).parent / "policies" / "events.toml"
NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC).timestamp()
WORKSPACES = 4
PER_WORKSPACE = 75  # per process: 150 per workspace in all, against a limit of 100


async def _send(url: str) -> int:
    """Many concurrent requests through a limiter whose events go to the stream."""
    limiter = Limiter(load_policy(POLICY), RedisStorage(url), clock=ManualClock(NOW))
    dispatcher = EventDispatcher([StreamSink(url, "test:events")])

    async def one(n: int) -> None:
        who = Identity("acct", f"w{n % WORKSPACES}", "only")
        decision = await limiter.check(who, "call")
        dispatcher.emit(events_for(decision, who, "help@example.test"))

    try:
        await asyncio.gather(*(one(n) for n in range(WORKSPACES * PER_WORKSPACE)))
    finally:
        await dispatcher.aclose()
        await limiter.close()
    return dispatcher.dropped


def _worker(url: str) -> int:
    return asyncio.run(_send(url))


async def test_two_processes_crossing_80_percent_send_exactly_one_notice_each(redis_url: str):
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        assert pool.map(_worker, [redis_url, redis_url]) == [0, 0]
    client = Redis.from_url(plain(redis_url))
    try:
        entries = await read_recent(client, "test:events", 1000)
    finally:
        await client.aclose()
    kinds = Counter(
        (
            e["type"],
            e["limit"]["name"],
            e["workspace"] if e["limit"]["scope"] == "workspace" else "",
        )
        for _, e in entries
    )
    workspaces = [f"w{n}" for n in range(WORKSPACES)]
    expected = {(THRESHOLD, "workspace_calls", w): 1 for w in workspaces}
    expected |= {("limit.exceeded", "workspace_calls", w): 1 for w in workspaces}
    expected[(THRESHOLD, "account_calls", "")] = 1  # 400 of 500: when every workspace is full
    assert dict(kinds) == expected


async def test_the_stream_is_capped_and_groups_read_each_event_once(redis_url: str):
    client = Redis.from_url(plain(redis_url))
    sink = StreamSink(client, "capped", maxlen=100)
    try:
        for n in range(1000):
            await sink.deliver(Event(THRESHOLD, 0.0, "a", "w", "p", {"n": n}, id=str(n)))
        assert await client.xlen("capped") < 300  # MAXLEN ~: trimmed in whole nodes
        recent = await read_recent(client, "capped", 3)
        assert [e["n"] for _, e in recent] == [997, 998, 999]

        seen: list[int] = []
        while batch := await read_group(client, "capped", "mailer", "one", None):
            seen += [e["n"] for _, e in batch]  # up to 100 at a time
            await ack(client, "capped", "mailer", batch)
        assert len(seen) == await client.xlen("capped")
        assert seen[-1] == 999
        await sink.deliver(Event(THRESHOLD, 0.0, "a", "w", "p", {"n": 1000}))
        again = await read_group(client, "capped", "mailer", "two", None)
        assert [e["n"] for _, e in again] == [1000]  # only what the group has not seen
        assert await read_group(client, "capped", "mailer", "two", None) == []
        # "two" stopped before handling it: it is still its own, and given again on request
        assert (await client.xpending("capped", "mailer"))["pending"] == 1
        kept = await read_group(client, "capped", "mailer", "two", None, pending=True)
        assert kept == again
        await ack(client, "capped", "mailer", kept)
        assert (await client.xpending("capped", "mailer"))["pending"] == 0
        assert await read_group(client, "capped", "mailer", "two", None, pending=True) == []
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", ["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
async def test_a_sink_opened_from_a_url_takes_every_storage_url(
    backend: str, request: pytest.FixtureRequest
):
    """The storage's own URL works for its stream: fairuse's query parameters, Cluster."""
    url = patient(str(request.getfixturevalue(f"{backend}_url")))  # a query redis-py refuses
    sink = StreamSink(url, "from-url")
    try:
        await sink.deliver(Event(THRESHOLD, 0.0, "a", "w", "p", {"n": 1}, id="one"))
        recent = await read_recent(sink.client, "from-url", 5)
    finally:
        await sink.aclose()
    assert [(e["id"], e["n"]) for _, e in recent] == [("one", 1)]


class LateReplies:
    """A TCP relay to Redis that holds back the first reply to an XADD by `delay` seconds."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay, self.held = port, delay, False
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
        xadd = asyncio.Event()

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, out: bool):
            try:
                while data := await source.read(65536):
                    if out and b"XADD" in data.upper():
                        xadd.set()
                    elif not out and xadd.is_set() and not self.held:
                        self.held = True
                        await asyncio.sleep(self.delay)
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(
            pipe(reader, upstream_writer, True), pipe(upstream_reader, writer, False)
        )


async def test_an_append_answered_late_is_not_appended_twice(redis_server):
    """The storage's own timeout is 0.25 s: the sink from [events] must not share it, or an
    XADD whose reply comes at 0.4 s is retried and the event stored twice."""
    async with LateReplies(redis_server.port, 0.4) as url:
        storage = RedisStorage(url)
        settings = EventSettings(stream="late:events")
        dispatcher = EventDispatcher(configured_sinks(settings, storage))
        dispatcher.emit([Event(THRESHOLD, 0.0, "a", "w", "p", id="once")])
        await dispatcher.aclose()
        await storage.close()
    client = Redis(port=redis_server.port)
    try:
        entries: Any = await client.xrange("late:events")
    finally:
        await client.aclose()
    assert [fields[b"id"] for _, fields in entries] == [b"once"]


@pytest.mark.parametrize(("count", "before"), [(0, 0), (0, 2), (5, 0), (1, 2)])
async def test_following_misses_no_event_added_between_two_reads(
    redis_url: str, count: int, before: int
):
    """`events tail --follow` reads in turns of a blocking XREAD; an event appended while no
    read is waiting (here: after the recent ones were read, before the first wait) must come in
    the next batch. Following from XREAD's "$" lost it: "$" means newer than the stream's
    newest entry when that read starts."""
    client = Redis.from_url(plain(redis_url))
    stream = f"test:follow:{count}:{before}"
    try:
        await client.delete(stream)
        for n in range(before):
            old = {"id": f"old{n}", "type": THRESHOLD, "event": f'{{"id": "old{n}"}}'}
            await client.xadd(stream, old)  # type: ignore[arg-type]
        batches = follow(client, stream, count=count, block_ms=100)
        recent = [f"old{n}" for n in range(before)][before - min(count, before) :]
        assert [event["id"] for _, event in await anext(batches)] == recent
        await client.xadd(stream, {"id": "new", "type": THRESHOLD, "event": '{"id": "new"}'})
        assert [event["id"] for _, event in await anext(batches)] == ["new"]
        await batches.aclose()
    finally:
        await client.delete(stream)
        await client.aclose()
