"""Per-request cost of fairuse without HTTP: the demo app's ASGI callable called in a loop.

No sockets between client and app, so what it times is the app's own CPU per request plus one
Redis round trip (a real redis-server on a free loopback port, started and stopped here).
The collector is set as in the demo's servers (`middleware.demo.tune_gc`).
Run: `.venv/bin/python -m benchmarks.inprocess [--requests N] [--profile PATH]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from middleware.demo import create_app, create_bare_app, tune_gc
from tests.redis_servers import RedisProcess

BODY = b'{"text": "hello"}'
_fresh = itertools.count()
CONCURRENT = 32  # like benchmarks/compare's connections: replies of one turn share a read
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(path: str, account: str, workspace: str, plan: str) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"x-plan", plan.encode()),
        (b"x-account-id", account.encode()),
        (b"x-workspace-id", workspace.encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _one(app: App, scope: dict[str, Any]) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _sessions(n: int) -> dict[str, Any]:
    account = f"sa{n % 100}"
    return _scope(f"/v1/chats/c{n % 10000}/messages", account, account, "unlimited")


def _new_chats(n: int) -> dict[str, Any]:
    account = f"na{n % 2000}"  # a chat id never seen before: its session starts, quotas count
    return _scope(f"/v1/chats/n{next(_fresh)}/messages", account, account, "unlimited")


def _spent(n: int) -> dict[str, Any]:
    return _scope(f"/v1/chats/retry-{n % 50}/messages", "spent", "full-workspace", "sandbox")


async def _run(
    app: App, make: Callable[[int], dict[str, Any]], count: int, want: int
) -> tuple[float, float]:
    """Wall and CPU microseconds per request, CONCURRENT requests in flight at a time."""
    for n in range(200):  # warm up: connections, caches, windows
        await _one(app, make(n))
    scopes = [make(n) for n in range(count)]
    tune_gc()  # as the demo's servers after start-up; the prepared scopes are not requests
    wall, cpu = time.perf_counter(), time.process_time()
    for at in range(0, count, CONCURRENT):
        batch = scopes[at : at + CONCURRENT]
        statuses = await asyncio.gather(*(_one(app, scope) for scope in batch))
        if any(status != want for status in statuses):
            raise RuntimeError(f"answered {set(statuses)}, expected {want}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / count * 1e6, cpu / count * 1e6


async def _spend(app: App) -> None:
    for n in range(101):
        path = f"/v1/chats/fill-{n}/messages"
        await _one(app, _scope(path, "spent", "full-workspace", "sandbox"))


async def main(count: int, profile: str | None) -> None:
    redis = RedisProcess().start()
    try:
        bare: App = create_bare_app()
        app: App = create_app("plans.toml", redis.url)
        await _spend(app)
        rows = [
            ("bare", bare, _sessions, 200),
            ("allow: messages in live sessions", app, _sessions, 200),
            ("allow: new chats", app, _new_chats, 200),
            ("deny: spent quota, retried chats", app, _spent, 429),
        ]
        for label, target, make, want in rows:
            wall, cpu = min([await _run(target, make, count, want) for _ in range(3)])
            print(f"{label:36} {wall:7.1f} us wall {cpu:7.1f} us CPU (best of 3 x {count})")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _run(app, _sessions, count, 200)
            profiler.disable()
            profiler.dump_stats(profile)
    finally:
        redis.remove()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--profile", help="write a cProfile of the allow path here")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.profile))
