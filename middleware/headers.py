"""RateLimit-Policy and RateLimit fields (IETF httpapi draft 10), and the legacy X-RateLimit-*."""

from __future__ import annotations

import math

from ratelimit import Decision
from ratelimit.answer import DISTINCT, AllowedAnswer
from ratelimit.ops import STATUS_WIDTH, Op
from ratelimit.plans import Counts, Kind, Limit

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
    item = f'"{limit.name}";q={limit.quota}'
    if limit.rule.counts is Counts.BYTES:  # the draft's quota unit; the default is requests
        item += ';qu="content-bytes"'
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


class _Layout:
    """The fields of an allowed answer for one tuple of ops, whichever op binds: formatted
    straight from the raw answer's integers, with no Rate tuples and no float seconds."""

    __slots__ = ("heads", "ops", "policies")

    def __init__(self, ops: tuple[Op, ...]) -> None:
        self.ops = ops  # held, so that no other tuple takes its id while cached
        rated = [i for i, op in enumerate(ops) if op.code != DISTINCT]  # caps are no rate
        others = [[j for j in rated if j != i] for i in range(len(ops))]
        orders = [[i, *others[i]] if i in rated else rated for i in range(len(ops))]
        # By the binding op's index: each field's offset in the answer and its item head.
        self.heads = [
            [(3 + STATUS_WIDTH * i + 2, f'"{ops[i].limit.name}";r=') for i in order]
            for order in orders
        ]
        self.policies = [
            ", ".join(_policy_item(ops[i].limit) for i in order).encode() for order in orders
        ]


_layouts: dict[int, _Layout] = {}


def _allowed_fields(answer: AllowedAnswer) -> list[tuple[bytes, bytes]]:
    """ratelimit_headers of an allowed answer no override changed (answer.AllowedAnswer)."""
    ops = answer.ops
    layout = _layouts.get(id(ops))
    if layout is None:
        if len(_layouts) >= MAX_FORMATS:
            _layouts.clear()
        layout = _layouts[id(ops)] = _Layout(ops)
    best = answer.binding_index()
    heads = layout.heads[best] if best >= 0 else []
    if not heads:
        return []
    result = answer.result
    now_ms = result[2]
    states = ", ".join(
        [
            f"{head}{result[at]};t={max(0, (result[at + 1] - now_ms + 999) // 1000)}"
            if result[at + 1]
            else f"{head}{result[at]}"
            for at, head in heads
        ]
    )
    return [(b"ratelimit-policy", layout.policies[best]), (b"ratelimit", states.encode())]


def ratelimit_headers(decision: Decision, legacy: bool = False) -> list[tuple[bytes, bytes]]:
    """Fields for every counted limit, the binding (closest to exhaustion) first."""
    answer = decision.pending
    if not legacy and isinstance(answer, AllowedAnswer):
        return _allowed_fields(answer)
    rates = decision.rates()
    if not rates:
        return []
    found = _formats.get(tuple([id(rate[0]) for rate in rates]))
    if found is None:
        found = _format(tuple(rate[0] for rate in rates))
    now = decision.now
    resets = [None if r is None else max(0, math.ceil(r - now)) for _, _, r in rates]
    binding = decision.binding
    refused_by_first = not decision.allowed and binding is not None and rates[0][0] is binding.limit
    if refused_by_first:
        resets[0] = decision.retry_after  # the draft: t names the moment Retry-After does
    states = ", ".join(
        [
            f"{head}{remaining}" if reset is None else f"{head}{remaining};t={reset}"
            for head, (_, remaining, _), reset in zip(found[2], rates, resets, strict=True)
        ]
    )
    headers = [(b"ratelimit-policy", found[1]), (b"ratelimit", states.encode())]
    if legacy:
        limit, remaining, reset_at = rates[0]
        headers += [  # the quota RateLimit-Policy names: a bucket's burst
            (b"x-ratelimit-limit", str(limit.quota).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
        ]
        if refused_by_first:  # when a retry can pass, as Retry-After and t say
            assert binding is not None
            reset_at = now + binding.retry_after  # exact: the same moment however late now is
        if reset_at is not None:
            headers.append((b"x-ratelimit-reset", str(math.ceil(reset_at)).encode()))
    return headers
