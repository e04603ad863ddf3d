"""Hot reload of plans.toml over real HTTP: applied without restart, atomic, bad files refused."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from starlette.types import Receive, Scope, Send

from middleware.fairuse import FairUseContext, FairUseMiddleware
from ratelimit.blocks import INVALIDATE_CHANNEL

from ..redis_servers import RedisProcess
from ..servers import serve_in_thread

pytestmark = pytest.mark.e2e
WHO = {"X-Workspace-ID": "acme", "X-Plan": "only"}
PATIENCE = 30.0  # a hang guard for wait-until loops, never a speed target
POLICY = """
[policy]
name = "{name}"
contact = "ops@example.test"

[routes.calls]
match = "POST /calls"

[routes.slow]
match = "POST /slow"

[limits.calls]
kind = "fixed_window"
per = "hour"
limit = 5

[plans.only]
[plans.only.limits]
calls = {calls}
"""


class Gate:
    """Holds requests to /slow inside the app until opened (the app runs on the server's loop)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Event()


def make_app(gate: Gate) -> Callable[[Scope, Receive, Send], object]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # so that the middleware closes its storage at the end
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        context: FairUseContext = scope["state"]["fairuse"]
        if scope["path"] == "/slow":
            gate.entered.set()
            await asyncio.to_thread(gate.opened.wait, PATIENCE)
        body = context.limiter.policy.name.encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def write(path: Path, name: str = "v1", calls: str = "5") -> None:
    """Write next to the file and rename over it, as deployment tools do."""
    draft = path.with_suffix(".draft")
    draft.write_text(POLICY.format(name=name, calls=calls))
    os.replace(draft, path)


@contextmanager
def served(
    path: Path, gate: Gate | None = None, storage: str = "memory://"
) -> Iterator[httpx.Client]:
    raw = make_app(gate or Gate())
    write(path)
    app = FairUseMiddleware(raw, plans=path, storage=storage, reload_interval=0.05)  # type: ignore[arg-type]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, headers=WHO, timeout=10) as c:
        c.fairuse = app  # type: ignore[attr-defined]
        yield c


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def quota(client: httpx.Client) -> str:
    response = client.post("/calls")
    assert response.status_code in (200, 429), response.text
    return response.headers["ratelimit-policy"]


def test_a_changed_file_applies_without_restart(tmp_path: Path):
    path = tmp_path / "plans.toml"
    with served(path) as client:
        assert quota(client) == '"calls";q=5;w=3600'
        assert client.post("/calls").headers["ratelimit"].startswith('"calls";r=3;')
        write(path, "v2", "7")
        wait_for(lambda: quota(client) == '"calls";q=7;w=3600', "the new quota")
        # counts carry over: the same storage, only the amounts changed
        used = client.post("/calls")
        assert used.text == "v2"
        remaining = int(used.headers["ratelimit"].split(";r=")[1].split(";")[0])
        assert remaining <= 7 - 4  # at least four calls so far, all remembered


def test_an_invalid_file_is_refused_and_the_old_policy_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.ERROR, logger="fairuse")
    path = tmp_path / "plans.toml"
    with served(path) as client:
        assert quota(client) == '"calls";q=5;w=3600'
        write(path, "v2", '"ten"')
        wait_for(lambda: any(r.name == "fairuse" for r in caplog.records), "the error")
        [record] = [r for r in caplog.records if r.name == "fairuse"]
        expected = f"{path}: [plans.only.limits.calls] limit must be a positive integer"
        expected += ' or "unlimited", got "ten"'
        assert record.getMessage().endswith(expected)
        assert "still serving the previous one" in record.getMessage()
        for _ in range(3):
            assert quota(client) == '"calls";q=5;w=3600'
        write(path, "v3", "9")  # a fixed file is taken up again
        wait_for(lambda: quota(client) == '"calls";q=9;w=3600', "the fixed file")


@pytest.mark.redis
def test_reloads_leave_one_invalidation_subscription(
    tmp_path: Path, redis_url: str, redis_server: RedisProcess
):
    """Each policy's limiter subscribes to block-cache invalidations; a replaced one lets go."""
    path = tmp_path / "plans.toml"
    with served(path, storage=redis_url) as client:
        quota(client)
        for calls in ("6", "7", "8"):
            write(path, "v2", calls)
            expected = f'"calls";q={calls};w=3600'
            wait_for(lambda: quota(client) == expected, "the new quota")  # noqa: B023
        app: FairUseMiddleware = client.fairuse  # type: ignore[attr-defined]
        wait_for(lambda: app.limiter.blocks is not None and app.limiter.blocks.listening, "it")
        wait_for(lambda: subscribers(redis_server) <= 1, "replaced limiters to unsubscribe")
        assert subscribers(redis_server) == 1


def subscribers(server: RedisProcess) -> int:
    client = redis.Redis(port=server.port)
    try:
        [(_, count)] = client.pubsub_numsub(INVALIDATE_CHANNEL)
    finally:
        client.close()
    return int(count)


def test_requests_in_flight_finish_on_the_policy_they_started_with(tmp_path: Path):
    path = tmp_path / "plans.toml"
    gate = Gate()
    with served(path, gate) as client, httpx.Client(base_url=client.base_url, headers=WHO) as other:
        result: list[httpx.Response] = []
        held = threading.Thread(target=lambda: result.append(other.post("/slow")))
        held.start()
        gate.entered.wait(PATIENCE)
        write(path, "v2", "7")
        wait_for(lambda: client.post("/calls").text == "v2", "the reload")
        gate.opened.set()
        held.join(PATIENCE)
    [response] = result
    assert response.text == "v1"
    assert response.headers["ratelimit-policy"] == '"calls";q=5;w=3600'


def test_a_copy_that_keeps_the_old_size_and_time_is_noticed(tmp_path: Path):
    """cp -p of a file with the same size and mtime (tar, reproducible builds)."""
    from middleware.reload import file_signature

    plans = tmp_path / "plans.toml"
    plans.write_text("limit = 2000\n")
    os.utime(plans, ns=(1_000_000_000, 1_000_000_000))
    before = file_signature(plans)
    time.sleep(0.01)
    plans.write_text("limit = 3000\n")  # in place: same inode, same size
    os.utime(plans, ns=(1_000_000_000, 1_000_000_000))
    assert file_signature(plans) != before
