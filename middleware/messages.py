"""Sentences an end user understands, built from a decision: what happened, when, what next."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from ratelimit import Decision, LimitStatus, Plan, Upgrade
from ratelimit.decision import Suspension
from ratelimit.periods import Period
from ratelimit.plans import Kind, Rule, Scope

SCOPE_NOUNS = {
    Scope.ACCOUNT: "account",
    Scope.WORKSPACE: "workspace",
    Scope.SESSION: "chat",
    Scope.USER: "user",
    Scope.TICKET: "ticket",
}
THIS_PERIOD = {
    "second": "this second",
    "minute": "this minute",
    "hour": "this hour",
    "day": "today",
    "week": "this week",
    "month": "this month",
    "year": "this year",
}
ARTICLE = {"hour": "an hour"}


def plural(unit: str, count: int | None = None) -> str:
    if count == 1:
        return unit
    if unit.endswith(("s", "x", "ch", "sh")):
        return unit + "es"
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return unit[:-1] + "ies"  # reply -> replies; day -> days
    return unit + "s"


def amount_text(amount: int | None, unit: str) -> str:
    if amount is None:
        return f"unlimited {plural(unit)}"
    if unit == "byte":
        return size_text(amount)
    return f"{amount:,} {plural(unit, amount)}"


def every(period: Period) -> str:
    """'a month', 'an hour', 'every 15 minutes'."""
    if period.count == 1:
        return ARTICLE.get(period.unit, f"a {period.unit}")
    return f"every {period}"


@lru_cache(maxsize=4096)
def when(moment: float, tz: ZoneInfo) -> str:
    """'1 December 2026 at 00:00 UTC'."""
    local = datetime.fromtimestamp(moment, tz)
    zone = "UTC" if tz.key in ("UTC", "Etc/UTC") else local.strftime("%Z (") + tz.key + ")"
    return f"{local.day} {local:%B %Y} at {local:%H:%M} {zone}"


def duration(seconds: float) -> str:
    """'45 seconds', '12 minutes', '3 hours'."""
    whole = max(1, math.ceil(seconds))  # as Retry-After: never sooner than it
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if whole >= 2 * size or (size == 60 and whole >= 60):
            count = -(-whole // size)
            return f"{count} {plural(name, count)}"
    return f"{whole} {plural('second', whole)}"


@lru_cache(maxsize=4096)
def iso(moment: float | None) -> str | None:
    """A moment for people and clients, in whole seconds rounded up: never before it."""
    if moment is None:
        return None
    return datetime.fromtimestamp(math.ceil(moment), UTC).isoformat().replace("+00:00", "Z")


def limit_detail(decision: Decision, status: LimitStatus) -> str:
    """The whole explanation of a denial: the limit, the reset, and the way out."""
    rule = status.limit.rule
    plan = decision.plan
    noun = SCOPE_NOUNS[rule.scope]
    amount = status.limit.amount
    if rule.kind is Kind.DISTINCT:
        first = (
            f"This {noun} already has {amount_text(amount, rule.unit)}, "
            f"the most the {plan.title} plan allows."
        )
        return f"{first} {way_out(decision, rule, None)}"
    if rule.kind is Kind.TOKEN_BUCKET:
        assert rule.period is not None
        first = (
            f"This {noun} is sending {plural(rule.unit)} faster than the {plan.title} plan allows "
            f"({amount_text(amount, rule.unit)} {every(rule.period)})."
        )
        return f"{first} Try again in {duration(status.retry_after)}."
    assert rule.period is not None
    period = rule.period
    when_text = THIS_PERIOD[period.unit] if period.count == 1 else f"every {period}"
    planned = plan.limits.get(status.limit.name)
    if planned is not None and planned.amount == amount:
        source = f"included in the {plan.title} plan {when_text}"
    else:  # an admin's override
        source = f"it is allowed {when_text}"
    if status.remaining:  # some is left, less than this request counts
        first = (
            f"This {noun} has {status.remaining:,} of the {amount_text(amount, rule.unit)} "
            f"{source} left, fewer than this request counts."
        )
    else:
        first = f"This {noun} has used all {amount_text(amount, rule.unit)} {source}."
    if rule.period.calendar and status.reset_at is not None:
        reset = f"{plural(rule.unit).capitalize()} reset on {when(status.reset_at, rule.timezone)}."
    else:
        reset = f"Try again in {duration(status.retry_after)}."
    return f"{first} {reset} {way_out(decision, rule, rule.period)}"


def way_out(decision: Decision, rule: Rule, period: Period | None) -> str:
    upgrade = decision.upgrade
    if upgrade is not None:
        return upgrade_sentence(upgrade, rule, period)
    return f"To go beyond this limit, contact {decision.contact}."


def upgrade_sentence(upgrade: Upgrade, rule: Rule, period: Period | None) -> str:
    if upgrade.amount is None:  # no limit of this kind there; its other limits still hold
        return f"Upgrade to {upgrade.title} for no limit on {rule.title}."
    rate = "" if period is None else f" {every(period)}"
    return f"Upgrade to {upgrade.title} for {amount_text(upgrade.amount, rule.unit)}{rate}."


def too_costly_detail(
    plan: Plan, status: LimitStatus, cost: int, upgrade: Upgrade | None, contact: str
) -> str:
    """A request that counts more than its limit ever holds, and the way out, if any."""
    limit = status.limit
    rule = limit.rule
    assert limit.amount is not None
    assert rule.period is not None
    if rule.kind is Kind.TOKEN_BUCKET:
        most = f"{amount_text(limit.quota, rule.unit)} at once"
    else:
        most = f"{amount_text(limit.amount, rule.unit)} {every(rule.period)}"
    first = (
        f"This request counts {amount_text(cost, rule.unit)}, more than the "
        f"{plan.title} plan allows in all ({most}), so it cannot pass however long it "
        "waits."
    )
    if upgrade is not None:
        return f"{first} {upgrade_sentence(upgrade, rule, rule.period)}"
    return f"{first} To go beyond this limit, contact {contact}."


def not_on_plan_detail(plan: Plan, route: str, allowed_on: list[Plan]) -> str:
    names = ", ".join(p.title for p in allowed_on) or "no plan"
    return f"The {plan.title} plan does not include {route}. It is available on: {names}."


def suspended_detail(suspension: Suspension, contact: str) -> str:
    """'This workspace is suspended until 24 November 2026 at 10:30 UTC. To have it ...'."""
    noun = SCOPE_NOUNS[suspension.scope]
    if suspension.until is None:
        return f"This {noun} is suspended. To have it restored, contact {contact}."
    end = when(math.ceil(suspension.until / 60) * 60, ZoneInfo("UTC"))  # minutes: never early
    return f"This {noun} is suspended until {end}. To have it restored sooner, contact {contact}."


# ---- sizes and uploads ------------------------------------------------------------------

DECIMAL_SIZES = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))
BINARY_SIZES = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def size_text(size: int) -> str:
    """'5 MB', '1 MiB', '1.23 GB', '512 bytes': exact when a unit divides it, else 3 digits."""
    for unit_size, unit in (*DECIMAL_SIZES, *BINARY_SIZES):
        if size >= unit_size and size % unit_size == 0:
            return f"{size // unit_size:,} {unit}"
    for unit_size, unit in DECIMAL_SIZES:
        if size >= unit_size:
            return f"{size / unit_size:.3g} {unit}"
    return f"{size:,} {plural('byte', size)}"


def file_text(filename: str | None) -> str:
    return "The uploaded file" if filename is None else f'The file "{filename}"'


def too_large_detail(
    plan: Plan,
    amount: int,
    upgrade: Upgrade | None,
    contact: str | None,
    *,
    body: bool,
    filename: str | None,
) -> str:
    """A file (or the whole request `body`) over a size cap, and the plan that lifts it."""
    subject, each, things = (
        ("The request body", "one request", "requests")
        if body
        else (
            file_text(filename),
            "one file",
            "files",
        )
    )
    first = f"{subject} is larger than {size_text(amount)}, the most the {plan.title} plan allows"
    first += f" for {each}."
    if upgrade is None:
        return f"{first} To go beyond this limit, contact {contact}."
    bigger = "any size" if upgrade.amount is None else f"up to {size_text(upgrade.amount)}"
    return f"{first} Upgrade to {upgrade.title} for {things} of {bigger}."


def quota_detail(
    plan: Plan,
    status: LimitStatus,
    filename: str | None,
    upgrade: Upgrade | None,
    contact: str | None,
    now: float,
    before: int = 0,
) -> str:
    """A file that would take a byte quota past its amount: what is left, when, the way out.
    `before`: the bytes of the request's files before this one, which take part of it."""
    rule = status.limit.rule
    amount = status.limit.amount or 0
    left = max(0, (status.remaining or 0) - before)
    period = rule.period
    this = THIS_PERIOD[period.unit] if period is not None and period.count == 1 else "now"
    after = f" after the {size_text(before)} of this request's other files" if before else ""
    first = (
        f"{file_text(filename)} would take this {SCOPE_NOUNS[rule.scope]} past its"
        f" {size_text(amount)} of {rule.title} on the {plan.title} plan:"
        f" {size_text(left) if left else 'nothing'} {'remains' if left else 'is left'} {this}"
        f"{after}."
    )
    if period is not None and period.calendar and status.reset_at is not None:
        reset = f"The quota resets on {when(status.reset_at, rule.timezone)}."
    else:
        reset = f"Try again in {duration(max(1.0, (status.reset_at or now) - now))}."
    if upgrade is None:
        return f"{first} {reset} To go beyond this limit, contact {contact}."
    if upgrade.amount is None:
        return f"{first} {reset} Upgrade to {upgrade.title} for no limit on {rule.title}."
    rate = "" if period is None else f" {every(period)}"
    return f"{first} {reset} Upgrade to {upgrade.title} for {size_text(upgrade.amount)}{rate}."
