"""Redis down, restarted or frozen under real HTTP load: every request answered, per fail policy."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from middleware.fairuse import FairUseMiddleware
from ratelimit import ManualClock
from ratelimit.storage.breaker import CLOSED
from ratelimit.storage.redis import RedisStorage

from ..redis_servers import RedisProcess
from ..servers import serve_in_thread

pytestmark = [pytest.mark.redis, pytest.mark.e2e]
POLICY = Path(__file__).parent / "policies" / "outage.toml"
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
WHO = {"X-Workspace-ID": "acme", "X-Plan": "only"}
ANSWERS = {200, 429, 503}
PATIENCE = 30.0  # seconds before a wait-until gives up: a hang guard, never a speed target
CONCURRENCY = 16
MAX_REQUESTS = 40_000  # bounds the load even if a wait never ends
WARNING = logging.WARNING


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body", False):
        pass  # read the whole body, as an app taking an upload does
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def outage_redis() -> Iterator[RedisProcess]:
    """A Redis of this module's own, since its tests kill it."""
    server = RedisProcess().start()
    yield server
    server.remove()


@pytest.fixture
def redis_up(outage_redis: RedisProcess) -> RedisProcess:
    if outage_redis.process is None:
        outage_redis.start()
    outage_redis.command("FLUSHALL")
    return outage_redis


@contextmanager
def served(server: RedisProcess) -> Iterator[tuple[str, FairUseMiddleware]]:
    app = FairUseMiddleware(ok_app, plans=POLICY, storage=server.url, clock=ManualClock(NOW))
    with serve_in_thread(app) as url:
        yield url, app


def breaker_of(app: FairUseMiddleware) -> RedisStorage:
    storage = app.limiter.storage
    if not isinstance(storage, RedisStorage):
        raise TypeError("expected Redis storage")
    return storage


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition()` holds; fail after PATIENCE seconds (a hang guard only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def test_each_fail_policy_while_redis_is_down(redis_up: RedisProcess):
    with served(redis_up) as (url, app):
        async with httpx.AsyncClient(base_url=url, headers=WHO, timeout=10) as client:
            up = await client.post("/open")
            assert up.status_code == 200
            assert "ratelimit" in up.headers
            redis_up.stop()

            opened = await client.post("/open")
            assert opened.status_code == 200
            assert "ratelimit" not in opened.headers  # unchecked: no numbers to report

            closed = await client.post("/closed")
            assert closed.status_code == 503
            assert closed.headers["content-type"] == "application/problem+json"
            assert closed.headers["retry-after"] == "1"
            assert closed.json()["type"] == "urn:fairuse:problem:unavailable"

            # one closed limit among the request's limits is enough to refuse
            assert (await client.post("/mixed")).status_code == 503

            # local: this process counts on its own, and refuses past the limit
            local = [(await client.post("/local")).status_code for _ in range(5)]
            assert local == [200, 200, 200, 429, 429]
            refused = await client.post("/local")
            assert refused.json()["limit"] == "local_calls"
            assert int(refused.headers["retry-after"]) > 0

            redis_up.start()  # empty: the first instance's counts are gone
            back = await post_until(client, "/closed", lambda r: r.status_code != 503)
            assert back.status_code == 200
            assert "ratelimit" in back.headers
            assert breaker_of(app).breaker.state == CLOSED


async def post_until(
    client: httpx.AsyncClient, path: str, done: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """Post every 50 ms until `done(response)`; fail after PATIENCE seconds."""
    for _ in range(int(PATIENCE / 0.05)):
        response = await client.post(path)
        if done(response):
            return response
        await asyncio.sleep(0.05)
    pytest.fail(f"POST {path} never gave the awaited answer")


async def test_uploads_during_an_outage_log_nothing_per_request(
    redis_up: RedisProcess, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="fairuse")
    files = {"file": ("a.txt", b"x" * 1000, "text/plain")}
    with served(redis_up) as (url, app):
        async with httpx.AsyncClient(base_url=url, headers=WHO, timeout=10) as client:
            assert (await client.post("/upload", files=files)).status_code == 200
            redis_up.stop()
            for _ in range(10):
                assert (await client.post("/upload", files=files)).status_code == 200
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == breaker_of(app).breaker.transitions == 1, loud


class Load:
    """CONCURRENCY clients posting in a loop; each answer is kept with the phase it was sent in."""

    def __init__(self, client: httpx.AsyncClient, spread: bool = False) -> None:
        self.client = client
        self.spread = spread  # each /closed request from a new workspace: none is refused
        self.phase = "before"
        self.answers: list[tuple[str, str, int | str, bool]] = []
        self._stop = False
        self._tasks = [asyncio.create_task(self._run(n)) for n in range(CONCURRENCY)]

    def count(self, phase: str, path: str, status: int, headers: bool | None = None) -> int:
        return sum(
            1
            for sent_in, where, code, limited in self.answers
            if (sent_in, where, code) == (phase, path, status) and headers in (None, limited)
        )

    async def stop(self) -> None:
        self._stop = True
        await asyncio.gather(*self._tasks)

    async def _run(self, n: int) -> None:
        for i in range(MAX_REQUESTS // CONCURRENCY):
            if self._stop:
                return
            path, phase = ("/open", "/closed")[(n + i) % 2], self.phase
            who = {"X-Workspace-ID": f"w{n}-{i}"} if self.spread and path == "/closed" else None
            try:
                response = await self.client.post(path, headers=who)
            except httpx.HTTPError as error:
                self.answers.append((phase, path, type(error).__name__, False))
                continue
            self.answers.append(
                (phase, path, response.status_code, "ratelimit" in response.headers)
            )


def storage_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fairuse.storage" and r.levelno >= WARNING]


async def test_redis_killed_and_restarted_under_load(
    redis_up: RedisProcess, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="fairuse.storage")
    with served(redis_up) as (url, app):
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, headers=WHO, timeout=10, limits=limits) as c:
            load = Load(c)
            try:
                await until(lambda: load.count("before", "/closed", 429) > 0, "the limit")
                await asyncio.to_thread(redis_up.stop)
                load.phase = "down"
                await until(
                    lambda: (
                        load.count("down", "/closed", 503) >= 20
                        and load.count("down", "/open", 200, headers=False) >= 20
                    ),
                    "answers while Redis is down",
                )
                await asyncio.to_thread(redis_up.start)
                load.phase = "after"
                await until(lambda: load.count("after", "/closed", 429) > 0, "limits again")
            finally:
                await load.stop()
    codes = [code for _, _, code, _ in load.answers]
    assert set(codes) <= ANSWERS, sorted({str(c) for c in codes} - {str(a) for a in ANSWERS})
    # each Redis instance admitted exactly the closed limit's 5, whatever the outage did
    assert sum(1 for _, path, code, _ in load.answers if (path, code) == ("/closed", 200)) == 10
    breaker = breaker_of(app).breaker
    assert breaker.state == CLOSED
    failed = sum(
        1 for _, _, code, limited in load.answers if code == 503 or (code == 200 and not limited)
    )
    logs = storage_logs(caplog)
    assert len(logs) == breaker.transitions  # one line per transition, none per request
    assert 2 <= breaker.transitions < failed


async def test_frozen_redis_under_load(redis_up: RedisProcess, caplog: pytest.LogCaptureFixture):
    """SIGSTOP: connections open but nothing answers; the read timeout and breaker take over."""
    caplog.set_level(logging.WARNING, logger="fairuse.storage")
    process = redis_up.process
    assert process is not None
    with served(redis_up) as (url, app):
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, headers=WHO, timeout=10, limits=limits) as c:
            # Fresh workspaces on /closed: a limit already spent is refused from the local block
            # cache without asking the frozen Redis, and this test is about asking it.
            load = Load(c, spread=True)
            try:
                await until(lambda: load.count("before", "/open", 200, headers=True) > 20, "load")
                breaker = breaker_of(app).breaker
                probes = breaker.probes
                process.send_signal(signal.SIGSTOP)
                load.phase = "frozen"
                await until(
                    lambda: (
                        load.count("frozen", "/closed", 503) >= 20
                        and load.count("frozen", "/open", 200, headers=False) >= 20
                        and breaker.probes >= probes + 2  # probes connect, then hear nothing
                    ),
                    "answers while Redis is frozen",
                )
            finally:
                process.send_signal(signal.SIGCONT)
            load.phase = "after"
            try:
                await until(lambda: load.count("after", "/open", 200, headers=True) > 0, "recovery")
            finally:
                await load.stop()
    codes = {code for _, _, code, _ in load.answers}
    assert codes <= ANSWERS, codes
    assert breaker_of(app).breaker.state == CLOSED
    assert len(storage_logs(caplog)) == breaker_of(app).breaker.transitions
