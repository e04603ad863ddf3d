"""Two uvicorn worker processes sharing one Redis admit exactly the limit under concurrency."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from ..conftest import ROOT
from ..redis_servers import RedisProcess, free_port, patient

pytestmark = [pytest.mark.redis, pytest.mark.e2e]
CLIENTS = 300
SANDBOX_SESSIONS = 100


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`uvicorn --workers 2` on the demo app, with the shipped plans.

    The monthly sessions fail closed here, so a storage error would show as a 503 instead of
    passing as an admission (the generous timeouts keep a busy shared machine from causing one).
    The shipped Sandbox plan is never suspended, so 200 denials leave every answer a 429.
    """
    plans = tmp_path / "plans.toml"
    text = (ROOT / "plans.toml").read_text()
    for table, line in [("limits.sessions_per_month", 'fail = "closed"')]:
        if f"[{table}]\n" not in text:
            raise ValueError(f"plans.toml has no [{table}] any more")
        text = text.replace(f"[{table}]\n", f"[{table}]\n{line}\n")
    plans.write_text(text)
    port = free_port()
    env = dict(
        os.environ,
        FAIRUSE_STORAGE=patient(redis_url, timeout=5, pool_timeout=10),
        FAIRUSE_PLANS=str(plans),
    )
    command = [sys.executable, "-m", "uvicorn", "--factory", "middleware.demo:app_from_env"]
    command += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("uvicorn --workers 2 did not start")
            time.sleep(0.05)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


async def new_chats(url: str) -> list[httpx.Response]:
    who = {"X-Workspace-ID": "crowded", "X-Plan": "sandbox"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(f"/v1/chats/chat-{n}/messages", json={"text": "hi"}, headers=who)
                for n in range(CLIENTS)
            )
        )


def test_two_workers_admit_exactly_the_sandbox_sessions(
    workers: tuple[str, subprocess.Popen[bytes]], redis_server: RedisProcess
):
    url, server = workers
    responses = asyncio.run(new_chats(url))
    codes = Counter(response.status_code for response in responses)
    assert codes == {200: SANDBOX_SESSIONS, 429: CLIENTS - SANDBOX_SESSIONS}
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["limit"] == "sessions_per_month"
    # both worker processes took part: each holds its own connections to Redis
    talking = [
        child.pid
        for child in psutil.Process(server.pid).children(recursive=True)
        if any(c.raddr and c.raddr.port == redis_server.port for c in child.net_connections())
    ]
    assert len(talking) == 2
