"""The demo's own processes set the cycle collector for a server once start-up is over:
what start-up made is frozen, and young collections run less often."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

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
