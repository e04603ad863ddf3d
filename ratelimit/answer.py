"""decide.lua's answer read into LimitStatus objects: at once for a denial, on demand when allowed.

The answer is {allowed, new_session, now}, then STATUS_WIDTH integers per op (allowed, used,
remaining, reset ms, retry ms, notice, first denial), then the lifecycle tail (see decide.lua).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import lifecycle_args as life
from .decision import LimitStatus, Rate, pick_binding
from .ops import KIND_CODES, STATUS_WIDTH, CompiledOps, Op
from .plans import Kind

DISTINCT = KIND_CODES[Kind.DISTINCT]  # a cap for life, never a rate


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
        best, most = -1, float("-inf")  # as pick_binding: max of whatever there is
        at = 5  # the first op's remaining
        for i, (op, amount) in enumerate(zip(self.ops, self.amounts, strict=True)):
            if op.code != "4":  # a cap for life never binds an allowed request
                capacity = op.limit.quota if op.code == "3" else amount  # amount: in force
                fill = 1.0 - result[at] / capacity if capacity else 0.0
                if fill > most:
                    best, most = i, fill
            at += STATUS_WIDTH
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
