"""One channel subscription on its own connection, read as plain RESP, reconnected when lost.

Messages are handled inside `data_received`, synchronously: by the time any task runs after the
bytes arrived, the message has been applied. Block caches rely on that ordering: an admin action
that publishes, then a request that follows it, finds the invalidation already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import hiredis
from redis.connection import parse_url

from .resp import pack

RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0)  # reconnect back-off, then every second
# An idle subscription sees no traffic, and a connection that a NAT or load balancer dropped
# silently would go on "listening" while invalidations are lost: PING it this often, and take
# it for lost when no answer comes within the connect timeout.
HEALTH_SECONDS = 15.0
logger = logging.getLogger("fairuse.storage")


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: Subscription) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        reply = self.reader.gets()
        while reply is not False:
            self.owner._received(self, reply)
            reply = self.reader.gets()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.owner._dropped(self)


class Subscription:
    """Calls `on_message(payload)` per message and `on_state(True/False)` when it is listening
    or stops listening (messages may have been missed: callers drop what they cached)."""

    def __init__(
        self,
        url: str,
        channel: str,
        on_message: Callable[[str], None],
        on_state: Callable[[bool], None],
        *,
        connect_timeout: float,
        health_seconds: float = HEALTH_SECONDS,
    ) -> None:
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.channel = channel
        self.on_message = on_message
        self.on_state = on_state
        self.connect_timeout = connect_timeout
        self.listening = False
        self._protocol: _Protocol | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._closed = False
        self._subscribed = False  # this connection's SUBSCRIBE was confirmed
        self.health_seconds = health_seconds
        self._pong: asyncio.Event | None = None
        self._refusal: str | None = None  # the refusal last logged, until one is accepted

    def start(self) -> None:
        """Begin (on the running loop) connecting and subscribing in the background."""
        if self._task is None and not self._closed:
            self._lost = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._task.get_loop() if self._task is not None else None

    def detach(self) -> None:
        """Stop without waiting (its loop may be gone): the owner moved to another loop."""
        self._closed = True
        self._task = None
        self._disconnect()

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        protocol = self._protocol
        self._disconnect()
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if protocol is not None:  # let the transport finish closing before the loop ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            try:
                await asyncio.wait_for(self._subscribe(), self.connect_timeout)
                await self._watch()
                if self._subscribed:  # back-off starts again only after a real subscription
                    attempt = 0
            except (TimeoutError, OSError, ConnectionError):
                pass
            self._disconnect()
            if self._closed:
                return
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _watch(self) -> None:
        """Until the connection is lost: PING it every `health_seconds`."""
        lost, pong = self._lost, asyncio.Event()
        self._pong = pong
        if lost is None:
            return
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.health_seconds)
                return
            transport = self._transport
            if transport is None or not self._subscribed:
                return
            pong.clear()
            transport.write(pack("PING"))  # in subscribed mode Redis answers ["pong", ""]
            try:
                await asyncio.wait_for(pong.wait(), self.connect_timeout)
            except TimeoutError:
                self._disconnect()  # taken for lost: listening stops, caches drop, reconnect
                return

    async def _subscribe(self) -> None:
        loop = asyncio.get_running_loop()
        options = self.options
        protocol = self._protocol = _Protocol(self)
        self._subscribed = False
        if self._lost is not None:
            self._lost.clear()
        if "path" in options:
            opened = await loop.create_unix_connection(lambda: protocol, options["path"])
        else:
            host, port = options.get("host", "localhost"), int(options.get("port", 6379))
            opened = await loop.create_connection(lambda: protocol, host, port)
        self._transport = opened[0]
        commands = []
        if options.get("password"):
            user = options.get("username")
            auth = (user, options["password"]) if user else (options["password"],)
            commands.append(pack("AUTH", *auth))
        commands.append(pack("SUBSCRIBE", self.channel))
        opened[0].write(b"".join(commands))

    def _received(self, protocol: _Protocol, reply: Any) -> None:
        if protocol is not self._protocol:
            return
        if isinstance(reply, hiredis.ReplyError):  # AUTH or SUBSCRIBE refused: retry later
            if str(reply) != self._refusal:
                self._refusal = str(reply)
                logger.warning(
                    "Redis refused the subscription to %s (%s): refused requests are not "
                    "remembered locally until it is allowed; trying again every second",
                    self.channel,
                    reply,
                )
            self._disconnect()
            return
        if isinstance(reply, list) and reply and reply[0] == "pong":
            if self._pong is not None:
                self._pong.set()
            return
        if not isinstance(reply, list) or len(reply) != 3:
            return  # +OK to AUTH
        kind, _channel, payload = reply
        if kind == "message":
            self.on_message(str(payload))
        elif kind == "subscribe" and not self.listening:
            self._subscribed, self.listening = True, True
            if self._refusal is not None:
                logger.warning("Redis accepted the subscription to %s", self.channel)
                self._refusal = None
            self.on_state(True)

    def _dropped(self, protocol: _Protocol) -> None:
        if protocol is self._protocol:
            self._disconnect()

    def _disconnect(self) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            with contextlib.suppress(RuntimeError):  # its loop is already closed
                transport.close()
        if self.listening:
            self.listening = False
            self.on_state(False)
        if self._lost is not None:
            self._lost.set()
