"""Decisions without storage: open, closed or local, from the limits a request touches."""

from __future__ import annotations

from pathlib import Path

from ratelimit import Identity, Policy
from ratelimit.fallback import CLOSED, LOCAL, OPEN, Fallback
from ratelimit.plans_file import load_policy

OUTAGE = Path(__file__).parents[1] / "middleware" / "policies" / "outage.toml"
WHO = Identity("acme", "main", "only")


def test_modes_per_route():
    fallback = Fallback(load_policy(OUTAGE))
    assert fallback.mode("only", "open") == OPEN
    assert fallback.mode("only", "closed") == CLOSED
    assert fallback.mode("only", "mixed") == CLOSED  # closed wins over open
    assert fallback.mode("only", "local") == LOCAL


def test_the_shipped_policy_fails_open_and_needs_no_local_limiter(shipped_policy: Policy):
    fallback = Fallback(shipped_policy)
    assert set(fallback.modes.values()) == {OPEN}
    assert fallback.local is None


async def test_decisions():
    policy = load_policy(OUTAGE)
    fallback = Fallback(policy)
    plan = policy.plans["only"]
    assert await fallback.decide(plan, WHO, "closed") is None
    opened = await fallback.decide(plan, WHO, "open")
    assert opened is not None
    assert opened.allowed
    assert opened.statuses == ()  # no numbers: nothing was checked
    local = [await fallback.decide(plan, WHO, "local") for _ in range(4)]
    assert [d is not None and d.allowed for d in local] == [True, True, True, False]
    denied = local[-1]
    assert denied is not None
    assert denied.binding is not None
    assert (denied.binding.name, denied.binding.used) == ("local_calls", 3)
    # another account has its own local allowance
    other = await fallback.decide(plan, Identity("other", "main", "only"), "local")
    assert other is not None
    assert other.allowed


async def test_local_checks_only_the_local_limits(tmp_path: Path):
    text = OUTAGE.read_text().replace('routes = ["local"]', 'routes = ["local", "open"]')
    text = text.replace("limit = 3", "limit = 1")
    path = tmp_path / "plans.toml"
    path.write_text(text)
    policy = load_policy(path)
    fallback = Fallback(policy)
    assert fallback.mode("only", "open") == LOCAL
    assert fallback.local is not None
    touched = fallback.local.policy.limits_for("only", "open")
    assert [limit.name for limit in touched] == ["local_calls"]
    plan = policy.plans["only"]
    first = await fallback.decide(plan, WHO, "open")
    second = await fallback.decide(plan, WHO, "open")
    assert first is not None
    assert first.allowed
    assert second is not None
    assert not second.allowed
