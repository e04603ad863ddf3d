"""The lifecycle section of decide.lua's arguments, and what the script answers in it.

The limiter appends three keys and a few values to every decision, so one round trip also
checks suspensions, applies limit overrides and counts denials; see the header of decide.lua.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .decision import LimitStatus, Suspension
from .keys import denials_key, escape, overrides_key, suspensions_key
from .plans import Limit, Scope, SuspensionRule

SUSPENDED = -2  # the script's first value when it refused a suspended workspace
HELD_SCOPES = {1: Scope.WORKSPACE, 2: Scope.ACCOUNT}


def rule_args(rule: SuspensionRule | None) -> tuple[str, str, str]:
    """Denials that suspend (0: never), within ms, for ms."""
    if rule is None:
        return ("0", "0", "0")
    return (str(rule.denials), str(round(rule.within * 1000)), str(round(rule.hold * 1000)))


def op_args(limit: Limit) -> tuple[str, str]:
    """The limit's name (its override field) and notify_at in millionths (0: none)."""
    ppm = 0 if limit.notify_at is None else round(limit.notify_at * 1_000_000)
    return (limit.name, str(ppm))


def extend(
    keys: list[str],
    argv: list[str],
    base: str,
    workspace: str,
    rule: tuple[str, str, str],
    ops: Sequence[tuple[str, str]],
) -> None:
    """Append the lifecycle keys and values after the ops."""
    keys += [overrides_key(base), suspensions_key(base), denials_key(base, workspace)]
    argv += [escape(workspace), *rule]
    for name, ppm in ops:
        argv += [name, ppm]


def refused(result: Sequence[int]) -> Suspension | None:
    """The suspension that refused the request, when the script answered SUSPENDED."""
    if result[0] != SUSPENDED:
        return None
    return _suspension(result[3], result[4])


def read_tail(
    result: Sequence[int], nops: int, rule: SuspensionRule | None
) -> tuple[Suspension | None, Suspension | None, Sequence[int]]:
    """After the per-op values: the suspension in force, the one this request started, and
    each op's limit in force."""
    at = 3 + 7 * nops
    held, until, tripped = result[at : at + 3]
    started = None
    if tripped and rule is not None:
        started = Suspension(Scope.WORKSPACE, result[2] / 1000 + rule.hold)
    held_now = _suspension(held, until) if held else None
    return held_now, started, result[at + 3 : at + 3 + nops]


def overridden(status: LimitStatus, amount: int) -> LimitStatus:
    """The status with the amount an admin set, when it differs from the plan's."""
    if status.limit.amount == amount:
        return status
    return replace(status, limit=replace(status.limit, amount=amount))


def _suspension(held: int, until: int) -> Suspension:
    return Suspension(HELD_SCOPES.get(held, Scope.WORKSPACE), until / 1000 if until else None)
