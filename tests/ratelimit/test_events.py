"""Events built from decisions, and the dispatcher that delivers them in the background."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratelimit import Identity, Limiter, ManualClock
from ratelimit.dispatch import CallbackSink, EventDispatcher
from ratelimit.events import EXCEEDED, SUSPENDED, THRESHOLD, Event, events_for
from ratelimit.plans_file import load_policy
from ratelimit.storage.memory import MemoryStorage

POLICY = Path(__file__).parent / "policies" / "lifecycle.toml"
START = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


async def decisions(plan: str, count: int, route: str = "call") -> list[list[Event]]:
    limiter = Limiter(load_policy(POLICY), MemoryStorage(), clock=ManualClock(START))
    who = Identity("acme", "main", plan)
    found = []
    for n in range(count):
        session = f"c{n}" if route == "chat" else None
        decision = await limiter.check(who, route, session=session)
        found.append(events_for(decision, who, "help@example.test", session))
    return found


async def test_notice_exceeded_and_suspension_documents():
    found = await decisions("team", 13)
    assert [[e.type for e in events] for events in found] == (
        [[]] * 7 + [[THRESHOLD]] + [[]] * 2 + [[EXCEEDED], [], [SUSPENDED]]
    )
    notice = found[7][0].to_dict()
    assert notice.pop("id") == found[7][0].id
    assert notice == {
        "type": "usage.threshold",
        "time": "2026-11-23T10:15:00Z",
        "account": "acme",
        "workspace": "main",
        "plan": "team",
        "limit": {
            "name": "calls_per_hour",
            "title": "calls per hour",
            "scope": "account",
            "value": 10,
            "used": 8,
            "remaining": 2,
            "notify_at": 0.8,
            "resets_at": "2026-11-23T11:00:00Z",
        },
    }
    exceeded = found[10][0].to_dict()
    assert exceeded["limit"]["used"] == 10
    assert exceeded["limit"]["retry_after"] == 45 * 60
    assert exceeded["contact"] == "help@example.test"  # no plan lifts calls_per_hour
    suspended = found[12][0].to_dict()
    assert suspended["suspension"] == {
        "scope": "workspace",
        "until": "2026-11-23T12:15:00Z",
        "denials": 3,
        "within": 3600.0,
        "for": 7200.0,
    }
    assert suspended["contact"] == "help@example.test"


async def test_a_plan_with_notify_at_none_gets_no_notice_and_an_upgrade_on_denial():
    found = await decisions("free", 6, route="chat")
    assert [[e.type for e in events] for events in found] == [[]] * 5 + [[EXCEEDED]]
    assert found[5][0].to_dict()["upgrade"] == {"plan": "team", "url": None, "limit_value": 10}


class Flaky:
    """A sink that fails its first `failures` deliveries, then records."""

    name, backoff, max_backoff = "flaky", 0.001, 0.004

    def __init__(self, failures: int, attempts: int) -> None:
        self.failures, self.attempts = failures, attempts
        self.tries: list[str] = []
        self.delivered: list[str] = []

    async def deliver(self, event: Event) -> None:
        self.tries.append(event.id)
        if len(self.tries) <= self.failures:
            raise ConnectionError("down")
        self.delivered.append(event.id)

    async def aclose(self) -> None:
        return None


def event(n: int = 0) -> Event:
    return Event(THRESHOLD, 0.0, "acme", "main", "team", {"n": n})


async def test_failed_deliveries_are_retried_then_given_up():
    retried, hopeless = Flaky(failures=2, attempts=3), Flaky(failures=99, attempts=3)
    dispatcher = EventDispatcher([retried, hopeless])
    first = event()
    dispatcher.emit([first])
    await dispatcher.aclose()
    assert retried.tries == [first.id] * 3
    assert retried.delivered == [first.id]
    assert hopeless.tries == [first.id] * 3
    assert hopeless.delivered == []


async def test_emit_never_waits_for_a_slow_sink():
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(e: Event) -> None:
        await release.wait()
        seen.append(e.data["n"])

    received: list[int] = []
    dispatcher = EventDispatcher([CallbackSink(slow), CallbackSink(lambda e: received.append(1))])
    dispatcher.emit([event(1), event(2)])  # returns at once, with the slow sink still waiting
    assert seen == []
    await asyncio.sleep(0)
    release.set()
    await dispatcher.drain()
    assert seen == [1, 2]
    assert received == [1, 1]  # the sync callback ran in a thread, unaffected by the slow one
    await dispatcher.aclose()


async def test_a_full_queue_drops_and_counts():
    release = asyncio.Event()

    async def stuck(e: Event) -> None:
        await release.wait()

    dispatcher = EventDispatcher([CallbackSink(stuck)], queue_size=2)
    dispatcher.emit([event(n) for n in range(5)])
    await asyncio.sleep(0)  # the worker takes one, which makes room for one more
    dispatcher.emit([event(9)])
    assert dispatcher.dropped == 3
    release.set()
    await dispatcher.aclose()


@pytest.mark.parametrize("is_async", [True, False])
async def test_callback_errors_are_logged_not_raised(is_async: bool, caplog):
    def broken(e: Event) -> None:
        raise RuntimeError("boom")

    async def broken_async(e: Event) -> None:
        raise RuntimeError("boom")

    dispatcher = EventDispatcher([CallbackSink(broken_async if is_async else broken)])
    dispatcher.emit([event()])
    await dispatcher.aclose()
    assert "gave up on event" in caplog.text


async def test_shutdown_counts_the_event_being_delivered_as_undelivered(caplog):
    """A sink stuck on an event at shutdown: that event is lost with the queued ones, and the
    log says so (it used to count only the queue, and said 0 for a single stuck event)."""
    never = asyncio.Event()

    async def stuck(e: Event) -> None:
        await never.wait()

    dispatcher = EventDispatcher([CallbackSink(stuck)])
    dispatcher.emit([event(n) for n in range(3)])
    await asyncio.sleep(0)  # the worker holds the first
    await dispatcher.aclose(grace=0.05)
    assert "shutting down with 3 events undelivered" in caplog.text
