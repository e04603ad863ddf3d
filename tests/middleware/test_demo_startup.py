"""The demo's own processes freeze what start-up made, so full collections skip it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import pytest
from starlette.applications import Starlette

from middleware.demo import app_from_env, create_app, create_bare_app

from ..conftest import ROOT


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """This test process must not keep what a demo app froze."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def frozen_once_started(app: Starlette) -> int:
    """Run the app's lifespan; how many objects were frozen when start-up completed."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    seen: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        assert not message["type"].endswith(".failed"), message
        if message["type"] == "lifespan.startup.complete":
            seen.append(gc.get_freeze_count())
            inbox.put_nowait({"type": "lifespan.shutdown"})

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return seen[0]


def protected(freeze: bool) -> Starlette:
    return create_app(ROOT / "plans.toml", "memory://", freeze_after_startup=freeze)


def bare(freeze: bool) -> Starlette:
    return create_bare_app(freeze_after_startup=freeze)


@pytest.mark.parametrize("make", [protected, bare])
async def test_start_up_freezes_only_when_asked(make: Callable[[bool], Starlette], unfrozen: None):
    assert await frozen_once_started(make(False)) == 0
    assert await frozen_once_started(make(True)) > 1000  # the modules, at least


@pytest.mark.parametrize(("setting", "frozen"), [(None, True), ("1", True), ("0", False)])
async def test_the_uvicorn_factory_freezes_unless_told_not_to(
    setting: str | None, frozen: bool, monkeypatch: pytest.MonkeyPatch, unfrozen: None
):
    monkeypatch.setenv("FAIRUSE_BARE", "1")
    if setting is not None:
        monkeypatch.setenv("FAIRUSE_GC_FREEZE", setting)
    else:
        monkeypatch.delenv("FAIRUSE_GC_FREEZE", raising=False)
    assert (await frozen_once_started(app_from_env()) > 0) is frozen
