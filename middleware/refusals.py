"""Rendered limit refusals, reused while every value they show is the same.

A tenant over a spent quota is refused again and again with the same body and headers: only
Retry-After, the RateLimit `t=` values and "Try again in ..." move, and those only once a
second. Rendering (detail text, JSON, headers) costs more than the rest of such a refusal, so a
refusal is keyed by exactly the values `problems.limit_reached` reads, rounded the way it
rounds them, and rendered once per key.
"""

from __future__ import annotations

import math

from ratelimit import Decision

from . import problems

MAX_RENDERED = 1024  # distinct refusals kept per process; cleared when full

# key -> (the decision first rendered: it keeps the ids in the key alive, the problem)
_rendered: dict[tuple[object, ...], tuple[Decision, problems.Problem]] = {}


def render_key(decision: Decision, legacy_headers: bool) -> tuple[object, ...] | None:
    """Everything `limit_reached` shows, as `limit_reached` rounds it; None: do not cache."""
    binding = decision.binding
    if binding is None:
        return None
    now = decision.now
    parts: list[object] = [
        legacy_headers,
        decision.allowed,
        id(decision.plan),
        id(decision.upgrade),
        decision.contact,
        math.ceil(binding.retry_after),  # Retry-After, "retry_after" and "Try again in ..."
        binding.remaining,  # "has N of the ... left"
        math.ceil(now + binding.retry_after) if legacy_headers else None,  # X-RateLimit-Reset
    ]
    binding_at = -1
    for at, status in enumerate(decision.statuses):
        if status is binding:
            binding_at = at
        reset_at = status.reset_at
        parts += (
            id(status.limit),
            status.used,
            status.remaining,
            reset_at,
            status.allowed,
            None if reset_at is None else math.ceil(reset_at - now),  # RateLimit t=
        )
    if binding_at < 0:  # a binding outside the statuses: too unusual to key safely
        return None
    parts.append(binding_at)
    return tuple(parts)


def limit_reached(decision: Decision, legacy_headers: bool = False) -> problems.Problem:
    """`problems.limit_reached`, rendered once for each distinct set of values it shows."""
    key = render_key(decision, legacy_headers)
    if key is None:
        return problems.limit_reached(decision, legacy_headers)
    found = _rendered.get(key)
    if found is not None:
        return found[1]
    problem = problems.limit_reached(decision, legacy_headers)
    if len(_rendered) >= MAX_RENDERED:
        _rendered.clear()
    _rendered[key] = (decision, problem)
    return problem
