"""decide.lua's answer read into LimitStatus objects: at once for a denial, on demand when allowed.

The answer is {allowed, new_session (2: and cached denials are void), now}, then STATUS_WIDTH
integers per op (allowed, used, remaining, reset ms, retry ms, notice, first denial), then the
lifecycle tail (see decide.lua).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import lifecycle_args as life
from .decision import LimitStatus, Rate, pick_binding
from .ops import KIND_CODES, STATUS_WIDTH, CompiledOps, Op
from .plans import Kind

DISTINCT = KIND_CODES[Kind.DISTINCT]  # a cap for life, never a rate
BUCKET = KIND_CODES[Kind.TOKEN_BUCKET]
NO_FILL = float("-inf")


def read_statuses(
    ops: tuple[Op, ...], result: Sequence[int], amounts: Sequence[int]
) -> tuple[list[LimitStatus], list[LimitStatus], list[LimitStatus]]:
    """Each op's status (with the amount in force), and those with a notice or a first denial."""
    statuses: list[LimitStatus] = []
    notices, exceeded = [], []
    at = 3
    for i, op in enumerate(ops):
        ok, used, remaining, reset, retry, notice, first = result[at : at + STATUS_WIDTH]
        at += STATUS_WIDTH
        status = LimitStatus(
            op.limit, used, remaining, reset / 1000 if reset else None, retry / 1000, bool(ok)
        )
        if amounts[i] != op.limit.amount:
            status = life.overridden(status, amounts[i])
        statuses.append(status)
        if notice:
            notices.append(status)
        if first:
            exceeded.append(status)
    return statuses, notices, exceeded


class AllowedAnswer:
    """An allowed request's raw answer, kept as it came: no admin override changed an amount,
    so every op's limit is its plan's and each value can be read straight from `result`."""

    __slots__ = ("amounts", "compiled", "ops", "result")

    def __init__(
        self, compiled: CompiledOps, ops: tuple[Op, ...], result: list[int], amounts: list[int]
    ) -> None:
        self.compiled = compiled
        self.ops = ops
        self.result = result
        self.amounts = amounts  # the ops' plan amounts, also the amounts in force

    def build(self) -> tuple[tuple[LimitStatus, ...], LimitStatus | None, tuple[LimitStatus, ...]]:
        found, notices, _ = read_statuses(self.ops, self.result, self.amounts)
        statuses = (*found, *self.compiled.reported)
        return statuses, pick_binding(statuses, True), tuple(notices)

    def has_notices(self) -> bool:
        end = 3 + STATUS_WIDTH * len(self.ops)
        return any(self.result[8:end:STATUS_WIDTH])  # each op's notice flag

    def binding_index(self) -> int:
        """The op that binds, as pick_binding picks it: the first of the fullest; -1: no op."""
        result = self.result
        best, most = -1, NO_FILL  # as pick_binding: max of whatever there is
        for i, at, capacity in _rated(self.ops):
            fill = 1.0 - result[at] / capacity if capacity else 0.0
            if fill > most:
                best, most = i, fill
        return best

    def rates(self) -> tuple[Rate, ...]:
        result, ops = self.result, self.ops
        best = self.binding_index()
        rows: list[Rate] = []
        at = 5  # the first op's remaining, then its reset
        for op in ops:
            remaining, reset = result[at], result[at + 1]
            at += STATUS_WIDTH
            rows.append((op.limit, remaining, reset / 1000 if reset else None))
        rates = tuple(row for i, row in enumerate(rows) if i != best and ops[i].code != DISTINCT)
        if best >= 0 and ops[best].code != DISTINCT:
            return (rows[best], *rates)
        return rates


# By the id of an ops tuple: each rated op's index, the offset of its remaining in the answer and
# its capacity (a bucket's burst, else the plan amount, which an AllowedAnswer has in force).
# Read from the ops once, not per request. Each entry holds its ops, so no id is reused while
# it is cached.
_rated_ops: dict[int, tuple[tuple[Op, ...], tuple[tuple[int, int, int], ...]]] = {}
MAX_RATED = 4096  # policies come and go in tests; a server keeps a handful


def _rated(ops: tuple[Op, ...]) -> tuple[tuple[int, int, int], ...]:
    found = _rated_ops.get(id(ops))
    if found is not None:
        return found[1]
    if len(_rated_ops) >= MAX_RATED:
        _rated_ops.clear()
    rated = tuple(
        (i, 3 + STATUS_WIDTH * i + 2, _capacity(op))
        for i, op in enumerate(ops)
        if op.code != DISTINCT  # a cap for life never binds an allowed request
    )
    _rated_ops[id(ops)] = (ops, rated)
    return rated


def _capacity(op: Op) -> int:
    limit = op.limit
    return (limit.quota if op.code == BUCKET else limit.amount) or 0
