"""The demo's own processes set the cycle collector for a server once start-up is over:
what start-up made is frozen, and young collections run less often."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from middleware.demo import YOUNG_GC_THRESHOLD, app_from_env, create_app, create_bare_app

from ..conftest import ROOT

PYTHON_YOUNG_THRESHOLD = 700  # CPython's default


@pytest.fixture
def untuned() -> Iterator[None]:
    """This test process must not keep what a demo app froze, nor its thresholds; and each
    test starts from Python's young threshold, whatever an earlier test left."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(PYTHON_YOUNG_THRESHOLD, *thresholds[1:])
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def tuning_once_started(app: Starlette) -> tuple[int, int]:
    """Run the app's lifespan; how many objects were frozen when start-up completed, and the
    young generation's threshold then."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    seen: list[tuple[int, int]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        assert not message["type"].endswith(".failed"), message
        if message["type"] == "lifespan.startup.complete":
            seen.append((gc.get_freeze_count(), gc.get_threshold()[0]))
            inbox.put_nowait({"type": "lifespan.shutdown"})

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return seen[0]


def protected(tune: bool) -> Starlette:
    return create_app(ROOT / "plans.toml", "memory://", tune_gc_after_startup=tune)


def bare(tune: bool) -> Starlette:
    return create_bare_app(tune_gc_after_startup=tune)


@pytest.mark.parametrize("make", [protected, bare])
async def test_start_up_tunes_the_collector_only_when_asked(
    make: Callable[[bool], Starlette], untuned: None
):
    assert await tuning_once_started(make(False)) == (0, PYTHON_YOUNG_THRESHOLD)
    frozen, young = await tuning_once_started(make(True))
    assert frozen > 1000  # the modules, at least
    assert young == YOUNG_GC_THRESHOLD


@pytest.mark.parametrize(("setting", "tuned"), [(None, True), ("1", True), ("0", False)])
async def test_the_uvicorn_factory_tunes_the_collector_unless_told_not_to(
    setting: str | None, tuned: bool, monkeypatch: pytest.MonkeyPatch, untuned: None
):
    monkeypatch.setenv("FAIRUSE_BARE", "1")
    if setting is not None:
        monkeypatch.setenv("FAIRUSE_GC_TUNING", setting)
    else:
        monkeypatch.delenv("FAIRUSE_GC_TUNING", raising=False)
    frozen, young = await tuning_once_started(app_from_env())
    assert (frozen > 0) is tuned
    assert (young == YOUNG_GC_THRESHOLD) is tuned


@pytest.mark.parametrize("bare_app", [True, False])
async def test_the_factory_can_make_chat_replies_wait(
    bare_app: bool, monkeypatch: pytest.MonkeyPatch, untuned: None
):
    """FAIRUSE_DEMO_REPLY_MS: the benchmarks' stand-in for an app that waits on a model."""
    if bare_app:
        monkeypatch.setenv("FAIRUSE_BARE", "1")
    else:
        monkeypatch.delenv("FAIRUSE_BARE", raising=False)
    monkeypatch.setenv("FAIRUSE_GC_TUNING", "0")
    monkeypatch.setenv("FAIRUSE_PLANS", str(ROOT / "plans.toml"))
    monkeypatch.setenv("FAIRUSE_DEMO_REPLY_MS", "150")
    transport = httpx.ASGITransport(app=app_from_env())
    who = {"X-Account-ID": "a", "X-Workspace-ID": "w", "X-Plan": "pro"}
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        started = time.monotonic()
        reply = await client.post("/v1/chats/c1/messages", json={"text": "hi"}, headers=who)
        waited = time.monotonic() - started
        assert reply.json() == {"chat_id": "c1", "reply": "You said: hi"}
        assert waited >= 0.15
        assert (await client.get("/healthz")).status_code == 200  # other routes as before


@pytest.mark.parametrize("setting", ["soon", "-1", "nan", "60001"])
def test_a_bad_reply_wait_is_named(setting: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FAIRUSE_BARE", "1")
    monkeypatch.setenv("FAIRUSE_DEMO_REPLY_MS", setting)
    with pytest.raises(
        ValueError,
        match=f"FAIRUSE_DEMO_REPLY_MS must be milliseconds from 0 to 60000, got '{setting}'",
    ):
        app_from_env()
