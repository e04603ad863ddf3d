"""Script operations compiled once per plan and route: what a request only fills in.

Each `Op` carries every ARGV value of one stateful limit that no request changes (see the header
of lua/decide.lua); `CompiledOps` groups a plan's ops for one route, by the ids a request carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from . import lifecycle_args as life
from .decision import LimitStatus
from .keys import limit_key_tail, stored_name
from .periods import Period
from .plans import COUNTER_KINDS, Counts, Kind, Limit, Plan, Scope

KIND_CODES = {
    Kind.FIXED_WINDOW: "1",
    Kind.SLIDING_WINDOW: "2",
    Kind.TOKEN_BUCKET: "3",
    Kind.DISTINCT: "4",
}
DISTINCT_IDLE_MS = 400 * 86400 * 1000  # a cap's members are forgotten after 400 idle days
DISTINCT_TTL = str(DISTINCT_IDLE_MS)
UNCAPPED_AMOUNT = 2**53 - 1  # a window op with this amount always consumes: see record_bytes
UNCAPPED = str(UNCAPPED_AMOUNT)
STATUS_WIDTH = 7


@dataclass(frozen=True, slots=True)
class Op:
    """One stateful limit, with every ARGV value that does not depend on the request."""

    limit: Limit
    code: str
    gate: str
    amount: str
    fixed_args: tuple[str, str, str, str] | None  # None: fixed window, bounds per request
    window: tuple[Period, ZoneInfo] | None
    notify: str
    counts: Counts
    scope: Scope
    life: tuple[str, str]  # limit name and notify_at in millionths, for overrides
    # Derived once, so that a request only fills in what is its own:
    key_tail: str = field(init=False)  # the key after the account base, before scope ids
    head: tuple[str, str, str] = field(init=False)  # kind, gate, amount
    tail: tuple[str, ...] | None = field(init=False)  # p1..p4 and notify, when all fixed
    cost_from: int = field(init=False)  # COST_BYTES, COST_REQUEST or COST_ONE

    def __post_init__(self) -> None:
        fixed = self.fixed_args
        tail = None if fixed is None or self.code == "4" else (*fixed, self.notify)
        if self.counts is Counts.BYTES:
            cost_from = COST_BYTES
        elif self.counts is Counts.REQUESTS and self.limit.rule.kind in COUNTER_KINDS:
            cost_from = COST_REQUEST
        else:
            cost_from = COST_ONE
        name = stored_name(self.limit.name, self.limit.rule.kind)
        object.__setattr__(self, "key_tail", limit_key_tail(name, self.scope))
        object.__setattr__(self, "head", (self.code, self.gate, self.amount))
        object.__setattr__(self, "tail", tail)
        object.__setattr__(self, "cost_from", cost_from)


COST_BYTES, COST_REQUEST, COST_ONE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class CompiledOps:
    plan: Plan
    ops: tuple[Op, ...]
    passive: tuple[Limit, ...]  # unlimited and size limits: reported, never stored
    uses_session: bool
    suspension: tuple[str, str, str]  # the plan's suspension rule, as script arguments
    reported: tuple[LimitStatus, ...] = field(init=False)  # the passive limits' statuses
    # The ops a request has ids for, by which of chat, user and ticket it carries (_present).
    by_present: tuple[tuple[Op, ...], ...] = field(init=False)
    # Their plan amounts, as the script lists the amounts in force: equal means no override.
    amounts_by_present: tuple[list[int], ...] = field(init=False)

    def __post_init__(self) -> None:
        statuses = tuple(LimitStatus(limit, None, None, None) for limit in self.passive)
        object.__setattr__(self, "reported", statuses)
        needs = {Scope.SESSION: 4, Scope.USER: 2, Scope.TICKET: 1}
        by_present = tuple(
            tuple(
                op for op in self.ops if needs.get(op.scope, 0) & present == needs.get(op.scope, 0)
            )
            for present in range(8)
        )
        object.__setattr__(self, "by_present", by_present)
        amounts = tuple([op.limit.amount or 0 for op in ops] for ops in by_present)
        object.__setattr__(self, "amounts_by_present", amounts)


def compile_ops(plan: Plan, limits: tuple[Limit, ...]) -> CompiledOps:
    """Every script argument of a plan's limits that no request changes, built once."""
    ops, passive = [], []
    for limit in limits:
        rule = limit.rule
        if limit.amount is None or rule.kind not in KIND_CODES:
            passive.append(limit)
            continue
        fixed: tuple[str, str, str, str] | None
        window = None
        if rule.kind is Kind.FIXED_WINDOW:
            assert rule.period is not None
            fixed, window = None, (rule.period, rule.timezone)
        elif rule.kind is Kind.SLIDING_WINDOW:
            assert rule.period is not None
            fixed = (str(rule.period.approx_seconds * 1000), "", "", "")
        elif rule.kind is Kind.TOKEN_BUCKET:
            assert rule.period is not None
            burst = limit.burst or limit.amount
            fixed = (str(burst), str(rule.period.approx_seconds * 1000), "", "")
        else:
            fixed = ("", DISTINCT_TTL, "", "")
        ops.append(
            Op(
                limit=limit,
                code=KIND_CODES[rule.kind],
                gate="1" if rule.gated_by_session else "0",
                amount=str(limit.amount),
                fixed_args=fixed,
                window=window,
                notify=str(limit.notify_count),
                counts=rule.counts,
                scope=rule.scope,
                life=life.op_args(limit),
            )
        )
    uses_session = any(op.gate == "1" or op.scope is Scope.SESSION for op in ops)
    suspension = life.rule_args(plan.suspension)
    return CompiledOps(plan, tuple(ops), tuple(passive), uses_session, suspension)


def uncapped(op: Op) -> Op:
    """Windows record without a ceiling: the script counts past any amount, an override's too,
    which then only moves the notice threshold (decide.lua). A bucket's amount is its refill
    rate, so it stays."""
    if op.limit.rule.kind is Kind.TOKEN_BUCKET:
        return op
    return replace(op, amount=UNCAPPED)
