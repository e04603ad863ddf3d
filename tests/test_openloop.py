"""benchmarks/openloop.c against a real HTTP server on loopback: it sends every request on its
schedule, in chats.lua's format, and counts each latency from when the request was due."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks.loadgen import build_openloop, parse_openloop
from benchmarks.trace_episodes import episodes, read_trace

pytestmark = pytest.mark.benchmark
OPENLOOP = build_openloop()
needs_openloop = pytest.mark.skipif(OPENLOOP is None, reason="no C compiler here")


@dataclass
class Server:
    """HTTP/1.1 keep-alive on a loopback port, in a thread: records each request's path and
    headers; can stall its whole loop at one request, or close every few connections."""

    stall_at: int = 0  # the request (from 1) whose answer blocks the loop
    stall_seconds: float = 0.0
    close_every: int = 0  # answer "Connection: close" and close, on every n-th request
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    async def serve(self, started: threading.Event, stop: asyncio.Event) -> None:
        handlers: set[asyncio.Task[None]] = set()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                await self.connection(reader, writer)
            finally:
                writer.close()
                handlers.discard(task)

        server = await asyncio.start_server(connected, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await stop.wait()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *fields = head.decode().split("\r\n")[:-2]
                headers = dict(f.split(": ", 1) for f in fields)
                await reader.readexactly(int(headers.get("Content-Length", "0")))
                self.requests.append((line, headers))
                if len(self.requests) == self.stall_at:
                    time.sleep(self.stall_seconds)  # noqa: ASYNC251 the loop stops, as in a GC pause
                closing = self.close_every and len(self.requests) % self.close_every == 0
                body = b'{"ok": true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n%s\r\n%s"
                    % (len(body), b"Connection: close\r\n" if closing else b"", body)
                )
                await writer.drain()
                if closing:  # as servers do, close a moment later: it must not be used again
                    await asyncio.sleep(0.2)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


@pytest.fixture
def serving(request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(**getattr(request, "param", {}))
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(started, stop),))
    thread.start()
    assert started.wait(10)
    yield server
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def openloop(server: Server, rate: float, seconds: float, **env: str) -> dict[str, Any]:
    assert OPENLOOP is not None
    argv = [str(OPENLOOP), "127.0.0.1", str(server.port), str(rate), str(seconds), "16"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, **env}, check=False
    )
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@needs_openloop
def test_every_request_leaves_on_schedule_in_the_format_of_chats_lua(serving: Server):
    env = {"PLAN": "pro", "ACCOUNTS": "3", "ACCOUNT_PREFIX": "t", "CHAT_PREFIX": "n"}
    figures = openloop(serving, 400, 1.0, RUN_ID="r7", **env)
    assert (figures["scheduled"], figures["sent"], figures["completed"]) == (400, 400, 400)
    assert figures["unanswered"] == figures["errors"] == figures["non2xx"] == 0
    assert figures["rate"] == pytest.approx(400, rel=0.01)
    assert figures["p50_ms"] < 50
    assert len(serving.requests) == 400
    # 16 connections: two requests a few ms apart may reach the server in either order
    numbered = sorted(serving.requests, key=lambda r: int(r[0].split("/")[3].split("-")[-1]))
    for n, (line, headers) in enumerate(numbered, start=1):  # chats.lua's n-th request
        assert line == f"POST /v1/chats/nr7-{n}/messages HTTP/1.1"
        assert headers["X-Account-ID"] == headers["X-Workspace-ID"] == f"t{n % 3}"
        assert headers["X-Plan"] == "pro"
        assert headers["Content-Type"] == "application/json"


@needs_openloop
def test_a_fixed_tenant_cycles_over_its_chats(serving: Server):
    env = {"ACCOUNT": "acme", "WORKSPACE": "w2", "CHATS": "5", "CHAT_PREFIX": "retry-"}
    openloop(serving, 200, 0.1, **env)
    paths = Counter(line.split()[1] for line, _ in serving.requests)  # arrival order may vary
    assert paths == Counter(f"/v1/chats/retry-{n % 5}/messages" for n in range(1, 21))
    assert {(h["X-Account-ID"], h["X-Workspace-ID"]) for _, h in serving.requests} == {
        ("acme", "w2")
    }


@needs_openloop
@pytest.mark.parametrize("serving", [{"stall_at": 100, "stall_seconds": 0.3}], indirect=True)
def test_a_stall_counts_for_every_request_due_during_it(serving: Server, tmp_path: Path):
    """500 a second for 1.5 s; the server stops for 300 ms at the 100th. About 150 requests
    fall due during the stall: each waits for the rest of it, from when it was due. A closed
    loop would have delayed their sending instead, and counted the stall once per connection.
    The trace it writes shows the stall as one episode of slow requests."""
    trace = tmp_path / "trace.txt"
    figures = openloop(serving, 500, 1.5, OPENLOOP_TRACE=str(trace))
    assert figures["completed"] == 750
    assert figures["max_ms"] >= 280
    assert figures["p90_ms"] > 100  # a tenth of all requests waited more than a third of it
    assert figures["service_p50_ms"] < 20  # from when they were written: most never waited
    requests = read_trace(trace)
    assert len(requests) == 750
    found = episodes(requests, share=0.1)  # the slowest 75: all due during the stall
    assert len(found) == 1
    assert len(found[0].requests) >= 75
    assert 150 <= found[0].start_ms <= 300  # the 100th request fell due at 198 ms


@needs_openloop
@pytest.mark.parametrize("serving", [{"close_every": 7}], indirect=True)
def test_connections_the_server_closes_are_reopened_without_losing_a_request(serving: Server):
    figures = openloop(serving, 300, 1.0)
    assert figures["completed"] == len(serving.requests) == 300
    assert figures["reconnects"] >= 300 // 7
    assert figures["errors"] == 0


def test_unanswered_requests_make_the_run_fail():
    text = json.dumps(
        {"sent": 10, "completed": 9, "unanswered": 1, "rate": 9.0, "p50_ms": 1.0,
         "p99_ms": 2.0, "p999_ms": 2.0, "non2xx": 0}
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="unanswered"):
        parse_openloop(text)
    result = parse_openloop(text.replace('"unanswered": 1', '"unanswered": 0'))
    assert (result.sent, result.requests, result.p999_ms) == (10, 9, 2.0)


@needs_openloop
@pytest.mark.parametrize(
    "argv", [["127.0.0.1", "1", "0", "1", "4"], ["localhost", "1", "10", "1", "4"], ["x"]]
)
def test_bad_arguments_are_refused_with_a_reason(argv: list[str]):
    done = subprocess.run([str(OPENLOOP), *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(("openloop:", "usage:"))
