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


def _policy_item(limit: Limit) -> str:
    quota = limit.burst if limit.rule.kind is Kind.TOKEN_BUCKET else None
    item = f'"{limit.name}";q={quota or limit.amount}'
    window = _window(limit)
    return item if window is None else f"{item};w={window}"


# The RateLimit-Policy value and each RateLimit item's head, by the ids of the limits reported,
# in order: formatted once per combination. Each entry holds its limits, so no id is reused
# while it is cached.
_formats: dict[tuple[int, ...], tuple[tuple[Limit, ...], bytes, tuple[str, ...]]] = {}
MAX_FORMATS = 4096  # policies come and go in tests; a server keeps a handful


def _format(limits: tuple[Limit, ...]) -> tuple[tuple[Limit, ...], bytes, tuple[str, ...]]:
    if len(_formats) >= MAX_FORMATS:
        _formats.clear()
    policy = ", ".join(_policy_item(limit) for limit in limits).encode()
    heads = tuple(f'"{limit.name}";r=' for limit in limits)
    found = _formats[tuple([id(limit) for limit in limits])] = (limits, policy, heads)
    return found


def ratelimit_headers(decision: Decision, legacy: bool = False) -> list[tuple[bytes, bytes]]:
    """Fields for every counted limit, the binding (closest to exhaustion) first."""
    rates = decision.rates()
    if not rates:
        return []
    found = _formats.get(tuple([id(rate[0]) for rate in rates]))
    if found is None:
        found = _format(tuple(rate[0] for rate in rates))
    now = decision.now
    states = ", ".join(
        [
            f"{head}{remaining}"
            if reset_at is None
            else f"{head}{remaining};t={max(0, math.ceil(reset_at - now))}"
            for head, (_, remaining, reset_at) in zip(found[2], rates, strict=True)
        ]
    )
    headers = [(b"ratelimit-policy", found[1]), (b"ratelimit", states.encode())]
    if legacy:
        limit, remaining, reset_at = rates[0]
        headers += [
            (b"x-ratelimit-limit", str(limit.amount).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
        ]
        if reset_at is not None:
            headers.append((b"x-ratelimit-reset", str(math.ceil(reset_at)).encode()))
    return headers
