"""Read plans.toml into a frozen Policy: whitelisted keys, typed values, compiled lookup tables.

Tables are read in the order they refer to each other: [policy], [routes], [limits] (naming
routes), [plans] (naming limits and each other). Every error is a PlanFileError naming the file,
the table and the key. The format is documented in docs/plans-format.md.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from . import plans_values as v
from .errors import PlanFileError
from .periods import Period
from .plans import (
    COUNTER_KINDS,
    SIZE_KINDS,
    Counts,
    Kind,
    Limit,
    Plan,
    Policy,
    Route,
    Rule,
    Scope,
    SuspensionRule,
    Upgrade,
)
from .plans_lifecycle import read_events, read_suspension
from .plans_values import Table, Unset

__all__ = ["load_policy", "parse_policy"]

T = TypeVar("T")

TOP_KEYS = ("policy", "routes", "limits", "plans", "events")
POLICY_KEYS = ("name", "contact", "timezone", "notify_at", "session_timeout", "suspension")
ROUTE_KEYS = ("match", "session", "user", "ticket", "cost", "upload", "plans")
LIMIT_KEYS: tuple[str, ...] = ("kind", "title", "unit", "scope", "counts", "per", "rate")
LIMIT_KEYS += ("limit", "burst", "notify_at", "timezone", "routes", "fail")
PLAN_KEYS = ("title", "url", "upgrade_to", "notify_at", "limits", "suspension")
PLAN_LIMIT_KEYS = ("limit", "burst", "notify_at")

ID_SCOPES = (Scope.SESSION, Scope.USER, Scope.TICKET)  # scopes whose id the request carries
MAX_BUCKET = 2**53  # burst × period ms: the bucket level must stay an exact Lua double


@dataclass(frozen=True, slots=True)
class _Amounts:
    """What one table sets for a limit (UNSET where left out), and the table, for errors."""

    table: Table
    amount: int | Unset | None = v.UNSET
    burst: int | Unset = v.UNSET
    notify_at: float | Unset | None = v.UNSET


@dataclass(frozen=True, slots=True)
class _RuleSpec:
    rule: Rule
    own: _Amounts  # the defaults [limits.NAME] gives every plan


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and compile a plans file; any problem, unreadable file included, is a PlanFileError."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(name, "", None, f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PlanFileError(name, "", None, f"not UTF-8 text: bad byte at {exc.start}") from None
    return parse_policy(text, name)


def parse_policy(text: str, path: str) -> Policy:
    """Compile the text of a plans file; `path` only names the file in messages and Policy.path."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanFileError(path, "", None, v.toml_message(str(exc), text)) from None
    except ValueError as exc:  # an integer past Python's 4,300 digits
        raise PlanFileError(path, "", None, f"not a plans file: {exc}") from None
    except RecursionError:
        raise PlanFileError(path, "", None, "not a plans file: nested too deeply") from None
    top = Table(path, "", doc, TOP_KEYS)
    if "policy" not in top:
        raise top.error("policy", "missing the [policy] table; it must set name and contact")
    settings = top.sub("policy", POLICY_KEYS)
    name = settings.require("name", v.text)
    contact = settings.require("contact", v.text, ": who to reach for limits no plan lifts")
    tz = settings.get("timezone", v.timezone, ZoneInfo("UTC"))
    notify = settings.get("notify_at", v.notify_at, 0.8)
    timeout = settings.get("session_timeout", v.duration, 1800.0)
    suspension = read_suspension(settings, None)
    routes = _read_routes(top)
    rules = {
        rule: _read_rule(_named(path, "limits", "limit", rule, data, LIMIT_KEYS), routes, tz)
        for rule, data in top.tables("limits").items()
    }
    plans = _read_plans(top, rules, notify, suspension)
    for route in routes.values():
        for unknown in sorted((route.plans or frozenset()) - plans.keys()):
            message = f'plans names unknown plan "{unknown}"; defined plans: {", ".join(plans)}'
            raise PlanFileError(path, f"routes.{route.name}", "plans", message)
    route_limits = {
        (plan.name, route): tuple(
            limit
            for limit in plan.limits.values()
            if limit.rule.routes is None or route in limit.rule.routes
        )
        for plan in plans.values()
        for route in routes
    }
    upgrades = {(p.name, lim): _upgrade(plans, p, lim) for p in plans.values() for lim in p.limits}
    return Policy(
        path=path,
        name=name,
        contact=contact,
        session_timeout=timeout,
        plans=MappingProxyType(plans),
        rules=MappingProxyType({rule: spec.rule for rule, spec in rules.items()}),
        routes=tuple(routes.values()),
        route_limits=MappingProxyType(route_limits),
        upgrades=MappingProxyType(upgrades),
        events=read_events(top),
    )


def _named(
    path: str, parent: str, what: str, name: str, data: Mapping[str, object], keys: Sequence[str]
) -> Table:
    try:
        v.check_name(what, name)
    except ValueError as exc:
        raise PlanFileError(path, f"{parent}.{name}", None, str(exc)) from None
    return Table(path, f"{parent}.{name}", data, keys)


def _read_routes(top: Table) -> dict[str, Route]:
    routes: dict[str, Route] = {}
    shapes: dict[tuple[str, str], str] = {}
    for name, data in top.tables("routes").items():
        t = _named(top.path, "routes", "route", name, data, ROUTE_KEYS)
        match = t.require("match", v.match, ': "METHOD /path", such as "POST /v1/files"')
        other = shapes.setdefault((match.method, match.shape), name)
        if other != name:
            same = (
                f'"{match.method} {match.template}" matches the same requests as [routes.{other}]'
            )
            raise t.error("match", f"{same}; each request may match one route only")
        parse_source = v.source(match.params, match.template)
        ids = {scope: t.get(scope.value, parse_source, None) for scope in ID_SCOPES}
        session = ids.pop(Scope.SESSION)  # Route.session; ids holds the user and ticket sources
        plans = t.get("plans", v.names, None)
        routes[name] = Route(
            name=name,
            method=match.method,
            template=match.template,
            pattern=match.pattern,
            session=session,
            ids=MappingProxyType({s: source for s, source in ids.items() if source is not None}),
            cost=t.get("cost", v.cost, 1),
            upload=t.get("upload", v.boolean, False),
            plans=None if plans is None else frozenset(plans),
        )
    return routes


def _read_rule(t: Table, routes: Mapping[str, Route], tz: ZoneInfo) -> _RuleSpec:
    name = t.name.removeprefix("limits.")
    kind = Kind(t.require("kind", v.choice(tuple(Kind)), f"; one of {', '.join(Kind)}"))
    for key, kinds in v.KIND_KEYS.items():
        if key in t and kind not in kinds:
            raise t.error(key, v.not_for(key, kind))
    scope = Scope(t.get("scope", v.choice(tuple(Scope)), "account"))
    counts = _read_counts(t, kind, scope)
    sized = kind in SIZE_KINDS or counts is Counts.BYTES  # "5 MB" reads better than 5000000
    default = t.get("limit", v.size if sized else v.amount, v.UNSET)
    period = t.get("per", v.period, None)
    if "rate" in t:
        if "limit" in t or "per" in t:
            raise t.error("rate", "rate already sets limit and per; use rate, or limit and per")
        default, period = t.require("rate", v.rate)
    if kind in COUNTER_KINDS and period is None:
        hint = f': a {kind} limit needs a period such as "hour" (or rate = "30/minute")'
        raise t.error("per", f"missing required key 'per'{hint}")
    rule = Rule(
        name=name,
        title=t.get("title", v.text, name.replace("_", " ")),
        unit=t.get("unit", v.text, "byte" if kind in SIZE_KINDS else "request"),
        kind=kind,
        scope=scope,
        counts=counts,
        period=period,
        timezone=t.get("timezone", v.timezone, tz),
        routes=_read_rule_routes(t, kind, routes),
        fail=t.get("fail", v.choice(("open", "closed", "local")), "open"),
    )
    _check_rule_routes(t, rule, routes)
    burst = t.get("burst", v.positive_int, v.UNSET)
    return _RuleSpec(rule, _Amounts(t, default, burst, t.get("notify_at", v.notify_at, v.UNSET)))


def _read_counts(t: Table, kind: Kind, scope: Scope) -> Counts:
    if kind in SIZE_KINDS:
        return Counts.BYTES  # what a size limit measures; nothing is counted over time
    if kind is not Kind.DISTINCT:
        hint = '; counting distinct workspaces or users needs kind = "distinct"'
        counters = v.choice(("requests", "sessions", "bytes"), hint)
        return Counts(t.get("counts", counters, "requests"))
    hint = ': a distinct limit counts "workspaces" or "users"'
    counts = Counts(t.require("counts", v.choice(("workspaces", "users")), hint))
    scopes = ("account",) if counts is Counts.WORKSPACES else ("account", "workspace")
    if scope not in scopes:
        allowed = " or ".join(f'"{s}"' for s in scopes)
        message = f'scope must be {allowed} for a distinct count of {counts}, got "{scope}"'
        raise t.error("scope", message)
    return counts


def _read_rule_routes(t: Table, kind: Kind, routes: Mapping[str, Route]) -> frozenset[str] | None:
    named = t.get("routes", v.names, None)
    if named is not None:
        for name in named:
            if name not in routes:
                known = ", ".join(routes) or "none defined"
                raise t.error(
                    "routes", f'routes names unknown route "{name}"; defined routes: {known}'
                )
        return frozenset(named)
    if kind not in SIZE_KINDS:
        return None
    uploads = frozenset(name for name, route in routes.items() if route.upload)
    if not uploads:
        message = f"a {kind} limit applies to upload routes, but no route sets upload = true"
        raise t.error("routes", f"{message}; set upload = true on a route or list routes here")
    return uploads


def _check_rule_routes(t: Table, rule: Rule, routes: Mapping[str, Route]) -> None:
    """Every route a rule applies to must carry the ids the rule is keyed by or counts."""
    needs: list[tuple[str, str, Scope]] = []
    if rule.scope in ID_SCOPES:
        needs.append(("scope", rule.scope, rule.scope))
    if rule.counts in (Counts.SESSIONS, Counts.USERS):
        needs.append(("counts", rule.counts, Scope(rule.counts.value.removesuffix("s"))))
    uploads_only = rule.kind is Kind.FILE_SIZE or (
        rule.counts is Counts.BYTES and rule.kind in COUNTER_KINDS
    )
    for route in routes.values():
        if rule.routes is not None and route.name not in rule.routes:
            continue
        for key, value, scope in needs:
            if (route.session if scope is Scope.SESSION else route.ids.get(scope)) is None:
                raise t.error(
                    key,
                    f'{key} = "{value}" needs a {scope} id on every route it applies to, but'
                    f' [routes.{route.name}] has no {scope} source; add {scope} = "path:..." or'
                    ' "header:..." there, or list the routes to count in routes',
                )
        if uploads_only and not route.upload:
            key, what = ("kind", rule.kind) if rule.kind in SIZE_KINDS else ("counts", rule.counts)
            raise t.error(
                key,
                f'{key} = "{what}" measures uploaded files, but [routes.{route.name}] is not an'
                " upload route; set upload = true there, or list only upload routes in routes",
            )


def _read_plans(
    top: Table,
    rules: Mapping[str, _RuleSpec],
    notify: float | None,
    suspension: SuspensionRule | None,
) -> dict[str, Plan]:
    plans: dict[str, Plan] = {}
    tables: dict[str, Table] = {}
    for name, data in top.tables("plans").items():
        t = tables[name] = _named(top.path, "plans", "plan", name, data, PLAN_KEYS)
        limits = _plan_limits(t, rules, t.get("notify_at", v.notify_at, v.UNSET), notify)
        title = t.get("title", v.text, name.capitalize())
        url, upgrade_to = t.get("url", v.text, None), t.get("upgrade_to", v.text, None)
        rule = read_suspension(t, suspension)
        plans[name] = Plan(name, title, url, upgrade_to, MappingProxyType(limits), rule)
    if not plans:
        message = "no plans defined; add at least one [plans.NAME] table"
        raise PlanFileError(top.path, "plans", None, message)
    for plan in plans.values():
        if plan.upgrade_to is not None and plan.upgrade_to not in plans:
            defined = ", ".join(plans)
            message = f'upgrade_to names unknown plan "{plan.upgrade_to}"; defined plans: {defined}'
            raise tables[plan.name].error("upgrade_to", message)
    for name in plans:
        chain = [name]
        while (after := plans[chain[-1]].upgrade_to) is not None:
            if after in chain:
                cycle = [*chain[chain.index(after) :], after]
                message = f"upgrade_to forms a cycle: {' -> '.join(cycle)}"
                raise tables[cycle[0]].error("upgrade_to", message)
            chain.append(after)
    return plans


def _plan_limits(
    t: Table,
    rules: Mapping[str, _RuleSpec],
    plan_notify: float | Unset | None,
    notify: float | None,
) -> dict[str, Limit]:
    """The plan's limits: each it names in [plans.NAME.limits], and each with a default amount."""
    given = t.data.get("limits", {})
    if not isinstance(given, dict):
        raise t.error("limits", f"limits must be a table ([{t.name}.limits]), got {v.show(given)}")
    for name in given:
        if name not in rules:
            message = f"unknown limit {name!r}; defined limits: {', '.join(rules) or 'none'}"
            raise PlanFileError(t.path, f"{t.name}.limits", name, message)
    limits: dict[str, Limit] = {}
    for name, spec in rules.items():  # [limits] file order: route_limits keeps it
        rule, layers = spec.rule, [spec.own]  # nearest first
        if name in given:
            layers.insert(0, _plan_amounts(t, name, given[name], spec))
        elif isinstance(spec.own.amount, Unset):
            continue  # no default amount and the plan does not name it: not on this plan
        amount = _first([layer.amount for layer in layers], None)
        burst = notify_at = None
        if amount is not None and rule.kind is Kind.TOKEN_BUCKET:
            burst = _first([layer.burst for layer in layers], amount)
            _check_bucket(rule, burst, layers)
        if amount is not None and rule.kind in v.KIND_KEYS["notify_at"]:
            nearest = layers[0].notify_at if name in given else v.UNSET
            notify_at = _first([nearest, plan_notify, spec.own.notify_at], notify)
        limits[name] = Limit(rule, amount, burst, notify_at)
    return limits


def _plan_amounts(t: Table, name: str, value: object, spec: _RuleSpec) -> _Amounts:
    """LIMIT = amount, or LIMIT = {limit = .., burst = .., notify_at = ..}; errors name both."""
    data = value if isinstance(value, dict) else {"limit": value}
    lt = Table(t.path, f"{t.name}.limits.{name}", data, PLAN_LIMIT_KEYS)
    kind = spec.rule.kind
    sized = kind in SIZE_KINDS or spec.rule.counts is Counts.BYTES
    for key in ("burst", "notify_at"):
        if key in lt and kind not in v.KIND_KEYS[key]:
            raise lt.error(key, v.not_for(key, kind))
    if "limit" not in lt and isinstance(spec.own.amount, Unset):
        message = f"missing required key 'limit': [limits.{name}] sets no default amount"
        raise lt.error("limit", message)
    return _Amounts(
        lt,
        lt.get("limit", v.size if sized else v.amount, v.UNSET),
        lt.get("burst", v.positive_int, v.UNSET),
        lt.get("notify_at", v.notify_at, v.UNSET),
    )


def _first(values: Sequence[T | Unset], last: T) -> T:
    """The first value a table set, else `last`."""
    for value in values:
        if not isinstance(value, Unset):
            return value
    return last


def _check_bucket(rule: Rule, burst: int, layers: Sequence[_Amounts]) -> None:
    """The bucket level is burst × period in ms: keep it exact in a Lua double."""
    period = rule.period or Period("second")
    ms = period.approx_seconds * 1000
    if burst * ms < MAX_BUCKET:
        return
    culprit = next((a for a in layers if not isinstance(a.burst, Unset)), None)
    key = "burst"
    if culprit is None:
        culprit = next(a for a in layers if not isinstance(a.amount, Unset))
        key = "rate" if "rate" in culprit.table else "limit"
    raise culprit.table.error(
        key,
        f"token bucket too large for exact arithmetic: burst {burst:,} × {ms:,} ms per {period}"
        f" = {burst * ms:,}, which must be below 2**53; lower the burst or use a shorter per",
    )


def _upgrade(plans: Mapping[str, Plan], plan: Plan, name: str) -> Upgrade | None:
    """The first plan up the upgrade_to chain that lifts `name`; None if none does."""
    current = plan.limits[name].amount
    after = plan.upgrade_to
    while current is not None and after is not None:
        other = plans[after]
        theirs = other.limits.get(name)
        if theirs is None or theirs.amount is None or theirs.amount > current:
            amount = None if theirs is None else theirs.amount
            return Upgrade(other.name, other.title, other.url, amount)
        after = other.upgrade_to
    return None
