"""RateLimit-Policy and RateLimit fields (IETF httpapi draft 10), and the legacy X-RateLimit-*."""

from __future__ import annotations

import math

from ratelimit import Decision, LimitStatus
from ratelimit.plans import Kind, Limit

NOMINAL_SECONDS = {"month": 30 * 86400, "year": 365 * 86400}


def _window(limit: Limit) -> int | None:
    period = limit.rule.period
    if period is None:
        return None
    seconds = NOMINAL_SECONDS.get(period.unit, period.approx_seconds)
    if limit.rule.kind is Kind.TOKEN_BUCKET and limit.burst and limit.amount:
        return math.ceil(seconds * limit.burst / limit.amount)  # time to refill the burst
    return seconds


_items: dict[int, tuple[Limit, str, str]] = {}  # id(limit) -> (limit, policy item, state head)


def _item(limit: Limit) -> tuple[Limit, str, str]:
    """A limit's RateLimit-Policy item and RateLimit prefix, formatted once per limit."""
    found = _items.get(id(limit))
    if found is not None and found[0] is limit:
        return found
    quota = limit.burst if limit.rule.kind is Kind.TOKEN_BUCKET else None
    policy = f'"{limit.name}";q={quota or limit.amount}'
    window = _window(limit)
    if window is not None:
        policy += f";w={window}"
    if len(_items) > 4096:  # policies come and go in tests; a server keeps a handful
        _items.clear()
    found = _items[id(limit)] = (limit, policy, f'"{limit.name}";r=')
    return found


def _counted(decision: Decision) -> list[LimitStatus]:
    """Limits with a window; lifetime caps (one workspace) are no rate and carry no field."""
    binding = decision.binding
    counted = [
        s
        for s in decision.statuses
        if s.remaining is not None and s is not binding and s.limit.rule.kind is not Kind.DISTINCT
    ]
    if binding is not None and binding.remaining is not None and not binding.is_cap:
        counted.insert(0, binding)
    return counted


def ratelimit_headers(decision: Decision, legacy: bool = False) -> list[tuple[bytes, bytes]]:
    """Fields for every counted limit, the binding (closest to exhaustion) first."""
    counted = _counted(decision)
    if not counted:
        return []
    policies, states = [], []
    now = decision.now
    for status in counted:
        _, policy, head = _item(status.limit)
        policies.append(policy)
        if status.reset_at is None:
            states.append(f"{head}{status.remaining}")
        else:
            states.append(f"{head}{status.remaining};t={max(0, math.ceil(status.reset_at - now))}")
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
