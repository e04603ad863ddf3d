"""Byte quotas: `check` reports what is left without spending it; `record_bytes` spends it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ratelimit import Identity, Limiter, ManualClock, Policy
from ratelimit.admin import Admin
from ratelimit.plans_file import parse_policy
from ratelimit.storage import Storage

POLICY = """
[policy]
name = "bytes"
contact = "ops@example.test"

[routes.upload]
match = "POST /v1/files"
upload = true

[routes.chat]
match = "POST /v1/chats"

[limits.uploads]
kind = "fixed_window"
per = "year"
counts = "bytes"
routes = ["upload"]
limit = "1 MB"

[limits.upload_rate]
kind = "sliding_window"
per = "hour"
counts = "bytes"
routes = ["upload"]
limit = "800 KB"

[limits.upload_requests]
kind = "fixed_window"
per = "day"
routes = ["upload"]
limit = 100

[plans.free]
[plans.open]
[plans.open.limits]
uploads = "unlimited"
upload_rate = "unlimited"
"""
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
ME = Identity("acme", "main", "free")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(POLICY, "bytes.toml")


def left(decision, name: str) -> tuple[int | None, int | None]:
    status = next(s for s in decision.statuses if s.name == name)
    return status.used, status.remaining


async def test_check_reports_what_is_left_and_record_spends_it(policy: Policy, storage: Storage):
    limiter = Limiter(policy, storage, clock=ManualClock(NOW))
    first = await limiter.check(ME, "upload")
    assert first.allowed
    assert left(first, "uploads") == (0, 1_000_000)
    assert left(first, "upload_requests") == (1, 99)  # the request itself counts as usual

    recorded = await limiter.record_bytes(ME, "upload", 700_000)
    assert recorded is not None
    assert left(recorded, "uploads") == (700_000, 300_000)
    assert left(recorded, "upload_rate") == (700_000, 100_000)
    assert [s.name for s in recorded.statuses] == ["uploads", "upload_rate"]  # bytes only
    assert [s.name for s in recorded.notices] == ["upload_rate"]  # crossed 80% of 800 KB

    second = await limiter.check(ME, "upload")
    assert left(second, "uploads") == (700_000, 300_000)
    assert left(second, "upload_requests") == (2, 98)  # record_bytes spent no request


async def test_recording_past_the_amount_counts_and_the_next_request_is_refused(
    policy: Policy, storage: Storage
):
    """Two uploads that each fit the same remaining: both are recorded, the excess too."""
    limiter = Limiter(policy, storage, clock=ManualClock(NOW))
    await limiter.record_bytes(ME, "upload", 600_000)
    over = await limiter.record_bytes(ME, "upload", 600_000)
    assert over is not None
    assert over.allowed
    assert left(over, "uploads") == (1_200_000, 0)
    refused = await limiter.check(ME, "upload")
    assert not refused.allowed
    assert refused.binding is not None
    assert (refused.binding.name, refused.binding.used) == ("uploads", 1_200_000)


async def test_nothing_to_record(policy: Policy, storage: Storage):
    limiter = Limiter(policy, storage, clock=ManualClock(NOW))
    assert await limiter.record_bytes(ME, "upload", 0) is None
    assert await limiter.record_bytes(ME, "chat", 10) is None  # no byte quota on the route
    assert await limiter.record_bytes(Identity("acme", "w", "open"), "upload", 10) is None
    fresh = await limiter.peek(ME)
    assert left(fresh, "uploads") == (0, 1_000_000)


async def test_recording_goes_past_an_admin_override_too(policy: Policy, storage: Storage):
    limiter = Limiter(policy, storage, clock=ManualClock(NOW))
    await Admin(limiter).set_override("acme", "uploads", 500_000)
    await limiter.record_bytes(ME, "upload", 400_000)
    assert left(await limiter.check(ME, "upload"), "uploads") == (400_000, 100_000)
    recorded = await limiter.record_bytes(ME, "upload", 400_000)  # fit what a check reported
    assert recorded is not None
    assert left(recorded, "uploads") == (800_000, 0)  # past the 500 KB in force
    assert recorded.statuses[0].limit.amount == 500_000
    refused = await limiter.check(ME, "upload")
    assert not refused.allowed
    assert refused.binding is not None
    assert (refused.binding.used, refused.binding.limit.amount) == (800_000, 500_000)


async def test_an_override_moves_a_byte_quotas_notice_with_it(policy: Policy, storage: Storage):
    """1 MB raised to 10 MB: the notice comes at 80% of 10 MB, as a check's would, and
    reports the amount in force, not at 80% of the plan's 1 MB."""
    limiter = Limiter(policy, storage, clock=ManualClock(NOW))
    await Admin(limiter).set_override("acme", "uploads", 10_000_000)
    recorded = await limiter.record_bytes(ME, "upload", 900_000)
    assert recorded is not None
    assert [s.name for s in recorded.notices] == ["upload_rate"]  # 900 KB of 800 KB, not 1 MB
    assert left(recorded, "uploads") == (900_000, 9_100_000)
    crossing = await limiter.record_bytes(ME, "upload", 7_200_000)
    assert crossing is not None
    notices = [(s.name, s.limit.amount) for s in crossing.notices]
    assert ("uploads", 10_000_000) in notices
