"""Middleware fixtures: the demo app served by a real uvicorn, on memory or Redis storage."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from starlette.types import ASGIApp

from middleware.demo import create_app
from ratelimit import ManualClock

from ..conftest import ROOT
from ..servers import serve_in_thread
from .uploading import demo_app, server_errors

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def storage_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def demo(storage_url: str, clock: ManualClock) -> Iterator[httpx.Client]:
    """An HTTP client for the demo app behind fairuse with the shipped plans.toml."""
    app = create_app(ROOT / "plans.toml", storage_url, clock=clock)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def headers(workspace: str, plan: str, account: str | None = None) -> dict[str, str]:
    found = {"X-Workspace-ID": workspace, "X-Plan": plan}
    if account is not None:
        found["X-Account-ID"] = account
    return found


@dataclass
class Served:
    """A served app for the upload tests: its client, base URL and the errors uvicorn logged."""

    client: httpx.Client
    url: str
    errors: list[logging.LogRecord]


@contextmanager
def serving(app: ASGIApp) -> Iterator[Served]:
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, timeout=30) as client,
        server_errors() as errors,
    ):
        yield Served(client, url, errors)


@pytest.fixture
def uploads(storage_url: str, clock: ManualClock) -> Iterator[Served]:
    """The demo's routes behind tests/middleware/policies/uploads.toml."""
    with serving(demo_app(storage_url, clock)) as served:
        yield served
