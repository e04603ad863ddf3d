"""RateLimit-Policy and RateLimit fields (IETF httpapi draft 10), and the legacy X-RateLimit-*."""

from __future__ import annotations

import math

from ratelimit import Decision, LimitStatus
from ratelimit.plans import Kind

NOMINAL_SECONDS = {"month": 30 * 86400, "year": 365 * 86400}


def _window(status: LimitStatus) -> int | None:
    limit = status.limit
    period = limit.rule.period
    if period is None:
        return None
    seconds = NOMINAL_SECONDS.get(period.unit, period.approx_seconds)
    if limit.rule.kind is Kind.TOKEN_BUCKET and limit.burst and limit.amount:
        return math.ceil(seconds * limit.burst / limit.amount)  # time to refill the burst
    return seconds


def _counted(decision: Decision) -> list[LimitStatus]:
    """Limits with a window; lifetime caps (one workspace) are no rate and carry no field."""
    counted = [s for s in decision.statuses if s.remaining is not None and not s.is_cap]
    if decision.binding in counted:
        counted.remove(decision.binding)
        counted.insert(0, decision.binding)
    return counted


def ratelimit_headers(decision: Decision, legacy: bool = False) -> list[tuple[bytes, bytes]]:
    """Fields for every counted limit, the binding (closest to exhaustion) first."""
    counted = _counted(decision)
    if not counted:
        return []
    policies, states = [], []
    for status in counted:
        name = status.limit.name
        quota = status.limit.burst if status.limit.rule.kind is Kind.TOKEN_BUCKET else None
        item = f'"{name}";q={quota or status.limit.amount}'
        window = _window(status)
        if window is not None:
            item += f";w={window}"
        policies.append(item)
        state = f'"{name}";r={status.remaining}'
        if status.reset_at is not None:
            state += f";t={max(0, math.ceil(status.reset_at - decision.now))}"
        states.append(state)
    headers = [
        (b"ratelimit-policy", ", ".join(policies).encode()),
        (b"ratelimit", ", ".join(states).encode()),
    ]
    if legacy:
        top = counted[0]
        headers += [
            (b"x-ratelimit-limit", str(top.limit.amount).encode()),
            (b"x-ratelimit-remaining", str(top.remaining).encode()),
        ]
        if top.reset_at is not None:
            headers.append((b"x-ratelimit-reset", str(math.ceil(top.reset_at)).encode()))
    return headers
