"""Deliver events in the background: `emit` never awaits, so delivery never delays a request.

Each sink has its own bounded queue and worker task, so a slow webhook holds back neither the
stream nor the callback. A failed delivery is retried with exponential backoff up to the sink's
`attempts`; events stay in this process's memory until delivered, so a process that dies loses
what it had queued (the Redis stream is the durable record). When a queue is full, new events
for that sink are dropped and logged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from .errors import FairUseError
from .events import Event
from .plans import EventSettings
from .storage import Storage

logger = logging.getLogger("fairuse.events")
QUEUE_SIZE = 10_000


class EventSink(Protocol):
    """Somewhere events go. `deliver` raises to ask for a retry."""

    name: str
    attempts: int  # deliveries tried per event before it is given up
    backoff: float  # seconds before the first retry; doubles each time
    max_backoff: float

    async def deliver(self, event: Event) -> None: ...

    async def aclose(self) -> None: ...


EventCallback = Callable[[Event], "Awaitable[object] | object"]


class CallbackSink:
    """The app's own hook, sync or async; a sync one runs in a thread, off the event loop."""

    attempts, backoff, max_backoff = 1, 0.0, 0.0

    def __init__(self, callback: EventCallback, *, name: str = "callback") -> None:
        self.callback = callback
        self.name = name
        self._is_async = inspect.iscoroutinefunction(callback)

    async def deliver(self, event: Event) -> None:
        if self._is_async:
            await self.callback(event)  # type: ignore[misc]
        else:
            result = await asyncio.to_thread(self.callback, event)
            if inspect.isawaitable(result):
                await result

    async def aclose(self) -> None:
        return None


class EventDispatcher:
    """Fans events out to sinks from background tasks started on the first `emit`."""

    def __init__(self, sinks: Sequence[EventSink], *, queue_size: int = QUEUE_SIZE) -> None:
        self.sinks = tuple(sinks)
        self.queue_size = queue_size
        self.dropped = 0
        self._queues: list[asyncio.Queue[Event]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivering = 0  # events taken off a queue and not yet delivered or given up

    def __bool__(self) -> bool:
        return bool(self.sinks)

    def emit(self, events: Iterable[Event]) -> None:
        """Queue events for every sink and return at once; call from the event loop."""
        if self._loop is not asyncio.get_running_loop():
            self._start()  # the first emit, or a new event loop (the old one's tasks are gone)
        for event in events:
            for sink, queue in zip(self.sinks, self._queues, strict=True):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    self.dropped += 1
                    logger.error("fairuse: %s queue full, dropped event %s", sink.name, event.id)

    async def drain(self) -> None:
        """Wait until every queued event is delivered or given up."""
        for queue in self._queues:
            await queue.join()

    async def aclose(self, grace: float = 5.0) -> None:
        """Deliver what is queued (for at most `grace` seconds), then stop and close sinks."""
        if self._workers:
            try:
                await asyncio.wait_for(self.drain(), grace)
            except TimeoutError:
                left = sum(q.qsize() for q in self._queues) + self._delivering
                logger.error("fairuse: shutting down with %d events undelivered", left)
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers, self._queues, self._loop = [], [], None
        for sink in self.sinks:
            await sink.aclose()

    def _start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._queues = [asyncio.Queue(self.queue_size) for _ in self.sinks]
        self._delivering = 0  # an old loop's workers, if any, are gone with their events
        self._workers = [
            loop.create_task(self._work(sink, queue), name=f"fairuse-{sink.name}")
            for sink, queue in zip(self.sinks, self._queues, strict=True)
        ]

    async def _work(self, sink: EventSink, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            self._delivering += 1
            try:
                await _deliver(sink, event)
            finally:
                self._delivering -= 1
                queue.task_done()


async def _deliver(sink: EventSink, event: Event) -> None:
    delay = sink.backoff
    for attempt in range(1, sink.attempts + 1):
        try:
            await sink.deliver(event)
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if attempt == sink.attempts:
                logger.error(
                    "fairuse: %s gave up on event %s after %d attempts: %s",
                    sink.name, event.id, attempt, error,
                )  # fmt: skip
                return
            logger.warning(
                "fairuse: %s failed (attempt %d), retrying: %s", sink.name, attempt, error
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, sink.max_backoff)


def configured_sinks(settings: EventSettings, storage: Storage) -> list[EventSink]:
    """The sinks plans.toml's [events] asks for; raise FairUseError when one cannot be built."""
    from .event_stream import StreamSink
    from .storage.redis import RedisStorage
    from .webhook import WebhookSink

    sinks: list[EventSink] = []
    if settings.stream is not None:
        if not isinstance(storage, RedisStorage):
            raise FairUseError(
                f"[events] stream = {settings.stream!r} needs Redis storage; this app stores in"
                f" {storage.url}"
            )
        sinks.append(StreamSink(storage.url, settings.stream, maxlen=settings.stream_maxlen))
    if settings.webhook is not None and settings.webhook_secret_env is not None:
        secret = os.environ.get(settings.webhook_secret_env, "")
        if not secret:
            raise FairUseError(
                f"[events] webhook_secret_env = {settings.webhook_secret_env!r}: that environment"
                " variable is not set (it holds the webhook's signing secret)"
            )
        sinks.append(WebhookSink(settings.webhook, secret))
    return sinks
