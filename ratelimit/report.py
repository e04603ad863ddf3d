"""Plain-text dump of a compiled Policy, so a reviewer sees what plans.toml really says."""

from __future__ import annotations

from collections.abc import Sequence

from .periods import UNIT_SECONDS
from .plans import SIZE_KINDS, Counts, Kind, Limit, Policy, Route, SuspensionRule
from .plans_values import SIZE_UNITS

__all__ = ["format_amount", "format_policy", "format_size"]

PLAN_HEADERS = ("plan", "limit", "kind", "scope", "counts", "amount", "per", "notify at", "upgrade")
ROUTE_HEADERS = ("route", "match", "session", "upload", "limits", "other")
_UNITS = sorted(((size, unit) for unit, size in SIZE_UNITS.items() if unit != "kB"), reverse=True)


def format_policy(policy: Policy) -> str:
    """Every plan's limits, one row each, then the routes: the `check` command's output."""
    lines = [f"{policy.name} ({policy.path})", f"contact: {policy.contact}"]
    if any(route.session is not None for route in policy.routes):
        lines[-1] += f"; a chat session ends after {_seconds(policy.session_timeout)} idle"
    lines += _lifecycle_lines(policy)
    rows = [
        _limit_row(policy, plan.name, limit)
        for plan in policy.plans.values()
        for limit in plan.limits.values()
    ]
    lines += ["", *_table(PLAN_HEADERS, rows)] if rows else ["", "(no limits)"]
    if policy.routes:
        lines += ["", *_table(ROUTE_HEADERS, [_route_row(policy, r) for r in policy.routes])]
    return "\n".join(lines)


def format_size(size: int) -> str:
    """5000000 -> "5,000,000 bytes (5 MB)": exact bytes, and the largest unit that divides them."""
    for unit_size, unit in _UNITS:
        if size % unit_size == 0 and unit_size > 1:
            return f"{size:,} bytes ({size // unit_size:,} {unit})"
    return f"{size:,} byte" if size == 1 else f"{size:,} bytes"


def format_amount(limit: Limit) -> str:
    """A limit's amount as the table shows it: "2,000", "unlimited", "30 (burst 20)", sizes."""
    if limit.amount is None:
        return "unlimited"
    if limit.rule.kind in SIZE_KINDS or limit.rule.counts is Counts.BYTES:
        return format_size(limit.amount)
    if limit.burst is not None:
        return f"{limit.amount:,} (burst {limit.burst:,})"
    return f"{limit.amount:,}"


def _limit_row(policy: Policy, plan: str, limit: Limit) -> tuple[str, ...]:
    rule = limit.rule
    sized = rule.kind in SIZE_KINDS
    per = "-" if rule.period is None else str(rule.period)
    if rule.kind is Kind.FIXED_WINDOW and rule.period and rule.period.calendar:
        per += f" ({rule.timezone.key})"
    notify = "-" if not limit.notify_count else f"{(limit.notify_at or 0) * 100:g}%"
    upgrade = policy.upgrade_for(plan, limit.name)
    if limit.amount is None:
        hint = "-"
    else:
        hint = f"contact {policy.contact}" if upgrade is None else upgrade.title
    return (
        plan,
        limit.name,
        rule.kind.value,
        "-" if sized else rule.scope.value,
        "-" if sized else rule.counts.value,
        format_amount(limit),
        per,
        notify,
        hint,
    )


def _route_row(policy: Policy, route: Route) -> tuple[str, ...]:
    other = [f"{scope} {source}" for scope, source in route.ids.items()]
    if route.cost != 1:
        other.append(f"cost {route.cost}")
    if route.plans is not None:
        other.append("plans " + ", ".join(p for p in policy.plans if p in route.plans))
    limits = [r.name for r in policy.rules.values() if r.routes is None or route.name in r.routes]
    return (
        route.name,
        f"{route.method} {route.template}",
        "-" if route.session is None else str(route.session),
        "yes" if route.upload else "no",
        ", ".join(limits) or "-",
        "; ".join(other) or "-",
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    rules = ["-" * width for width in widths]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, rules, *rows]
    ]


def _lifecycle_lines(policy: Policy) -> list[str]:
    """Suspension rules, grouped by plan, and where events go."""
    rules: dict[SuspensionRule | None, list[str]] = {}
    for plan in policy.plans.values():
        rules.setdefault(plan.suspension, []).append(plan.name)
    lines = []
    if list(rules) != [None]:
        for rule, plans in rules.items():
            said = "never" if rule is None else _rule(rule)
            lines.append(f"suspension ({', '.join(plans)}): {said}")
    events = policy.events
    if events.stream is not None:
        lines.append(f"events: Redis stream {events.stream} (about {events.stream_maxlen:,} kept)")
    if events.webhook is not None:
        lines.append(f"events: webhook {events.webhook} (secret in ${events.webhook_secret_env})")
    return lines


def _rule(rule: SuspensionRule) -> str:
    return (
        f"{rule.denials:,} denied requests within {_seconds(rule.within)} suspend a workspace"
        f" for {_seconds(rule.hold)}"
    )


def _seconds(seconds: float) -> str:
    """1800.0 -> "30 minutes": the largest whole unit, as the file would say it."""
    for unit in ("day", "hour", "minute", "second"):
        length = UNIT_SECONDS[unit]
        if seconds >= length and seconds % length == 0:
            count = int(seconds // length)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} seconds"
