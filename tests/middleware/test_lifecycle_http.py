"""Suspension and plan changes over real HTTP, with the shipped plans.toml."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from ratelimit import Identity, Limiter
from ratelimit.admin import Admin
from ratelimit.storage.redis import RedisStorage

from .conftest import NOW, headers
from .test_demo_http import chat, middleware_of
from .test_reload import wait_for

pytestmark = pytest.mark.e2e


async def admin_call(served: Limiter, action: str, *args: str) -> object:
    """Run an admin action on the served storage from this test's own event loop."""
    storage = served.storage
    if isinstance(storage, RedisStorage):
        storage = RedisStorage(storage.url)
    try:
        admin = Admin(Limiter(served.policy, storage, clock=served.clock))
        return await getattr(admin, action)(*args)
    finally:
        if storage is not served.storage:
            await storage.close()


async def spend(served: Limiter, who: Identity, route: str, count: int) -> bool:
    """Spend `count` units of a route's limit through the served storage, from this loop."""
    storage = served.storage
    if isinstance(storage, RedisStorage):
        storage = RedisStorage(storage.url)
    try:
        limiter = Limiter(served.policy, storage, clock=served.clock)
        return (await limiter.check(who, route, cost=count)).allowed
    finally:
        if storage is not served.storage:
            await storage.close()


def test_fifty_denials_suspend_the_workspace_until_lifted(demo: httpx.Client):
    who = headers("noisy", "ltd", account="acme")
    assert chat(demo, "c1", who).status_code == 200  # a live chat
    served = middleware_of(demo).limiter
    assert asyncio.run(spend(served, Identity("acme", "noisy", "ltd"), "ticket", 10_000))
    for _ in range(49):
        assert demo.post("/v1/tickets", headers=who).status_code == 429
    # the 50th denial starts the suspension, and says so: a 429 would invite a retry
    suspending = demo.post("/v1/tickets", headers=who)
    assert suspending.status_code == 403
    assert "retry-after" not in suspending.headers
    assert suspending.json()["type"] == "urn:fairuse:problem:suspended"

    refused = chat(demo, "c1", who)  # even a message in a live chat
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    until = (NOW + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert refused.json() == {
        "type": "urn:fairuse:problem:suspended",
        "title": "Suspended",
        "status": 403,
        "detail": (
            "This workspace is suspended until 24 November 2026 at 10:30 UTC. "
            "To have it restored sooner, contact bizdev@jikoo.example."
        ),
        "plan": "ltd",
        "scope": "workspace",
        "suspended_until": until,
        "contact": "bizdev@jikoo.example",
    }
    assert demo.get("/v1/usage", headers=who).status_code == 403  # every ruled route
    assert demo.get("/healthz", headers=who).status_code == 200  # unruled routes pass
    assert chat(demo, "c0", headers("quiet", "pro", account="other")).status_code == 200

    lifted = asyncio.run(admin_call(served, "unsuspend", "acme", "noisy"))
    assert lifted is True
    blocks = served.blocks
    if blocks is not None:  # on Redis the lift reaches the server's subscriber as a message
        wait_for(lambda: "acme" not in blocks.accounts, "the server to apply the invalidation")
    assert chat(demo, "c1", who).status_code == 200  # chats flow again
    assert demo.post("/v1/tickets", headers=who).status_code == 429  # tickets are still spent


def test_a_spent_sandbox_is_never_suspended(demo: httpx.Client):
    who = headers("eager", "sandbox")
    for n in range(100):
        assert chat(demo, f"c{n}", who).status_code == 200
    refusals = [chat(demo, f"more-{n}", who) for n in range(60)]
    assert {r.status_code for r in refusals} == {429}
    assert refusals[-1].json()["upgrade"]["plan"] == "pro"  # still invited to upgrade


def test_an_upgrade_lifts_the_block_on_the_next_request(demo: httpx.Client):
    sandbox = headers("growing", "sandbox")
    for n in range(100):
        assert chat(demo, f"c{n}", sandbox).status_code == 200
    assert chat(demo, "c100", sandbox).status_code == 429
    upgraded = chat(demo, "c100", headers("growing", "pro"))
    assert upgraded.status_code == 200
    assert '"sessions_per_month";r=9899;' in upgraded.headers["ratelimit"]
