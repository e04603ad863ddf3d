"""A minimal pipelined RESP connection for the hot path: one EVALSHA per decision, batched.

redis-py spends more CPU per command than the rest of a request's decision (pool checkout,
retry wrapper, per-read timeout, generic packing). Decisions only ever need EVALSHA, so this
connection packs it directly (or is given it whole, from a template of ratelimit/commands.py),
queues commands issued in the same event-loop turn and writes them in one `write`, and matches
replies to waiting futures in order (Redis answers a connection in order). One connection per
event loop; a single timer enforces the reply timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

FAST_SCHEMES = ("redis://", "unix://", "redis+unix://")
MAX_BULKS = 4096  # formatted ARGV values kept per connection


def _bulk(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(*args: str | bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(_bulk(a) for a in args)


class _Protocol(asyncio.Protocol):
    """One connection, and the requests sent on it: its replies can only answer those, so a
    reconnect never hands one request another's reply (a new connection's set-up replies
    included), whichever of the old one's loss and the new one's opening the loop runs first."""

    def __init__(self, owner: PipelinedConnection) -> None:
        self.owner = owner
        self.reader = hiredis.Reader()
        self.closed = asyncio.get_running_loop().create_future()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # future, deadline

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        reply = reader.gets()
        while reply is not False:
            future = waiting.popleft()[0]
            if not future.done():
                future.set_result(reply)
            reply = reader.gets()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        error = RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}")
        if self.owner._protocol is self:
            self.owner._lost(error)  # fails this connection's waiting requests too
        else:
            self.fail(error)

    def fail(self, error: Exception) -> None:
        """Every request still waiting on this connection gets `error`."""
        waiting, self.waiting = self.waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)


class PipelinedConnection:
    """EVALSHA of one script over one auto-pipelined connection; reconnects lazily."""

    def __init__(
        self, url: str, script: str, sha: str, *, timeout: float, connect_timeout: float
    ) -> None:
        if url.startswith("redis+unix://"):
            url = "unix://" + url[len("redis+unix://") :]
        self.options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self.script = script.encode()
        self._sha_bulk = _bulk(sha)
        self._bulks: dict[str, str] = {}
        self._load_command = pack("SCRIPT", "LOAD", self.script)
        self._loading: asyncio.Future[Any] | None = None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._buffer: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def evalsha_command(self, keys: Sequence[str], argv: Sequence[str]) -> bytes:
        """EVALSHA of the script with these KEYS and ARGV, in RESP."""
        bulks = self._bulks  # ARGV repeats (kinds, amounts, window starts): format each once
        parts = [f"${len(k)}\r\n{k}\r\n" for k in keys]
        for arg in argv:
            bulk = bulks.get(arg)
            if bulk is None:
                if len(bulks) >= MAX_BULKS:
                    bulks.clear()
                bulk = bulks[arg] = f"${len(arg)}\r\n{arg}\r\n"
            parts.append(bulk)
        text = f"${len(str(len(keys)))}\r\n{len(keys)}\r\n" + "".join(parts)
        tail = text.encode()
        if len(tail) != len(text):  # not ASCII: lengths must count bytes
            tail = b"".join([_bulk(a) for a in (str(len(keys)), *keys, *argv)])
        count = b"*%d\r\n" % (3 + len(keys) + len(argv))
        return count + b"$7\r\nEVALSHA\r\n" + self._sha_bulk + tail

    async def evalsha(self, command: bytes) -> Any:
        """Send one EVALSHA of the script (evalsha_command's, or one built from a template);
        after NOSCRIPT (its cache was flushed) load it once and send it again."""
        loop = asyncio.get_running_loop()
        transport = self._transport
        if transport is None or self._loop is not loop or transport.is_closing():
            await self._connect(loop)
        reply = await self._queue(command, loop)  # _call, without one more coroutine
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            await self._reload()
            reply = await self._call(command)
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    async def _reload(self) -> None:
        """SCRIPT LOAD once for every request that met NOSCRIPT at the same time."""
        loading = self._loading
        if loading is None or loading.done():
            loading = self._loading = asyncio.ensure_future(self._call(self._load_command))
        await asyncio.shield(loading)

    async def close(self) -> None:
        transport, protocol = self._transport, self._protocol
        self._lost(RedisConnectionError("connection closed"))
        if transport is None or protocol is None:
            return
        transport.close()
        if self._loop is asyncio.get_running_loop():  # let it finish closing before the loop ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.closed), 1.0)

    async def _call(self, command: bytes) -> Any:
        loop = asyncio.get_running_loop()
        if self._transport is None or self._loop is not loop or self._transport.is_closing():
            await self._connect(loop)
        return await self._queue(command, loop)

    def _queue(self, command: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        """Buffer a command for this turn's single write; its reply resolves the future."""
        future = loop.create_future()
        protocol = self._protocol
        assert protocol is not None  # connected: callers checked the transport
        protocol.waiting.append((future, time.monotonic() + self.timeout))
        if not self._buffer:
            loop.call_soon(self._flush)
        self._buffer.append(command)
        if self._timer is None:
            self._timer = loop.call_later(self.timeout, self._check_timeout)
        return future

    def _flush(self) -> None:
        data, self._buffer = b"".join(self._buffer), []
        if self._transport is not None and data:
            self._transport.write(data)

    def _check_timeout(self) -> None:
        self._timer = None
        protocol = self._protocol
        if protocol is None or not protocol.waiting:
            return
        deadline = protocol.waiting[0][1]
        now = time.monotonic()
        if deadline <= now:
            if self._transport is not None:
                self._transport.abort()
                self._transport = None
            self._lost(RedisTimeoutError(f"no reply from Redis within {self.timeout} s"))
        elif self._loop is not None:
            self._timer = self._loop.call_later(deadline - now, self._check_timeout)

    def _lost(self, error: Exception) -> None:
        protocol = self._protocol
        self._transport = self._protocol = None
        self._buffer = []
        if protocol is not None:
            protocol.fail(error)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open (or reopen, on another loop) the connection; concurrent callers share one."""
        if self._loop is not loop:
            if self._transport is not None and not self._transport.is_closing():
                with contextlib.suppress(RuntimeError):  # its loop is already closed
                    self._transport.abort()
            self._transport, self._connecting, self._loop = None, None, loop
            self._protocol, self._buffer, self._timer = None, [], None
        if self._connecting is None or self._connecting.done():
            self._connecting = connecting = loop.create_future()
            try:
                await asyncio.wait_for(self._open(loop), self.connect_timeout)
            except BaseException as error:  # cancelled too: its waiters must not wait forever
                self._protocol = None
                # a timed-out attempt kept its callers waiting: the breaker counts each one
                kind = (
                    RedisTimeoutError if isinstance(error, TimeoutError) else RedisConnectionError
                )
                failure = kind(f"cannot connect to Redis: {error!r}")
                connecting.set_exception(failure)
                connecting.exception()  # retrieved: later callers get their own attempt
                self._connecting = None
                if not isinstance(error, Exception):
                    raise
                raise failure from error
            connecting.set_result(None)
        else:
            await asyncio.shield(self._connecting)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        options = self.options
        protocol = self._protocol = _Protocol(self)
        if "path" in options:
            opened = await loop.create_unix_connection(lambda: protocol, options["path"])
        else:
            host, port = options.get("host", "localhost"), int(options.get("port", 6379))
            opened = await loop.create_connection(lambda: protocol, host, port)
        transport = opened[0]
        setup: list[bytes] = []
        if options.get("password"):
            user = options.get("username")
            auth = (user, options["password"]) if user else (options["password"],)
            setup.append(pack("AUTH", *auth))
        if int(options.get("db") or 0):
            setup.append(pack("SELECT", str(options["db"])))
        setup.append(self._load_command)  # a new or restarted server may not have it yet
        try:
            for command in setup:
                future: asyncio.Future[Any] = loop.create_future()
                protocol.waiting.append((future, time.monotonic() + self.timeout))
                transport.write(command)
                reply = await future
                if isinstance(reply, hiredis.ReplyError):
                    raise OSError(f"Redis refused the connection set-up: {reply}")
        except (
            BaseException
        ) as error:  # refused, timed out (cancelled) or lost: never leave it open
            if self._protocol is protocol:
                self._protocol = None
            protocol.fail(RedisConnectionError(f"cannot set up the connection to Redis: {error!r}"))
            transport.abort()
            raise
        self._transport = transport
