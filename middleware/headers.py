"""RateLimit-Policy and RateLimit fields (IETF httpapi draft 10), and the legacy X-RateLimit-*."""

from __future__ import annotations

import math

from ratelimit import Decision
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


def ratelimit_headers(decision: Decision, legacy: bool = False) -> list[tuple[bytes, bytes]]:
    """Fields for every counted limit, the binding (closest to exhaustion) first."""
    rates = decision.rates()
    if not rates:
        return []
    policies, states = [], []
    now = decision.now
    for limit, remaining, reset_at in rates:
        _, policy, head = _item(limit)
        policies.append(policy)
        if reset_at is None:
            states.append(f"{head}{remaining}")
        else:
            states.append(f"{head}{remaining};t={max(0, math.ceil(reset_at - now))}")
    headers = [
        (b"ratelimit-policy", ", ".join(policies).encode()),
        (b"ratelimit", ", ".join(states).encode()),
    ]
    if legacy:
        limit, remaining, reset_at = rates[0]
        headers += [
            (b"x-ratelimit-limit", str(limit.amount).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
        ]
        if reset_at is not None:
            headers.append((b"x-ratelimit-reset", str(math.ceil(reset_at)).encode()))
    return headers
