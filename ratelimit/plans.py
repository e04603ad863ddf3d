"""The policy model: plans, limits, routes. Frozen data only; plans_file.py builds it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

from .periods import Period


class Kind(StrEnum):
    FIXED_WINDOW = "fixed_window"  # counter over calendar-aligned windows
    SLIDING_WINDOW = "sliding_window"  # weighted two-window counter
    TOKEN_BUCKET = "token_bucket"  # `limit` tokens per `per`, up to `burst`
    DISTINCT = "distinct"  # distinct members per scope, for life
    FILE_SIZE = "file_size"  # bytes per uploaded file; no storage
    BODY_SIZE = "body_size"  # bytes per request body; no storage


COUNTER_KINDS = frozenset({Kind.FIXED_WINDOW, Kind.SLIDING_WINDOW, Kind.TOKEN_BUCKET})
SIZE_KINDS = frozenset({Kind.FILE_SIZE, Kind.BODY_SIZE})


class Scope(StrEnum):
    ACCOUNT = "account"
    WORKSPACE = "workspace"
    SESSION = "session"
    USER = "user"
    TICKET = "ticket"


class Counts(StrEnum):
    REQUESTS = "requests"  # each matching request, by its cost
    SESSIONS = "sessions"  # only requests that start a chat session
    BYTES = "bytes"  # bytes of accepted uploaded files
    WORKSPACES = "workspaces"  # distinct workspaces (kind distinct)
    USERS = "users"  # distinct users (kind distinct)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request carries a value: a path parameter or a header."""

    kind: str  # "path" or "header"
    name: str  # parameter name, or lower-case header name

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Rule:
    """What a limit counts and how; the amount comes from each plan."""

    name: str
    title: str  # "chat sessions per month", used in messages
    unit: str  # one counted thing: "chat session"
    kind: Kind
    scope: Scope
    counts: Counts
    period: Period | None
    timezone: ZoneInfo
    routes: frozenset[str] | None  # None: every ruled route
    fail: str = "open"  # when storage is down: open, closed or local (see fallback.py)

    @property
    def gated_by_session(self) -> bool:
        return self.counts is Counts.SESSIONS


@dataclass(frozen=True, slots=True)
class Limit:
    """A rule with one plan's amount. `amount` None means unlimited (no storage work)."""

    rule: Rule
    amount: int | None
    burst: int | None = None
    notify_at: float | None = None

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def unlimited(self) -> bool:
        return self.amount is None

    @property
    def quota(self) -> int | None:
        """The most one window (or a full bucket) holds: a bucket's burst, else the amount."""
        if self.amount is None:
            return None
        return self.burst if self.burst is not None else self.amount

    @property
    def notify_count(self) -> int:
        """First used count that crosses `notify_at` (0: no notice)."""
        if self.notify_at is None or self.amount is None:
            return 0
        count = max(1, -(-round(self.amount * self.notify_at * 1_000_000) // 1_000_000))
        return count if count < self.amount else 0  # reaching the limit itself is no warning


@dataclass(frozen=True, slots=True)
class SuspensionRule:
    """`denials` denied requests of one workspace within `within` seconds suspend it `hold`."""

    denials: int
    within: float
    hold: float


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    title: str
    url: str | None
    upgrade_to: str | None
    limits: Mapping[str, Limit]
    suspension: SuspensionRule | None = None


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The next plan that lifts a limit: its name, title, URL and amount (None: unlimited)."""

    plan: str
    title: str
    url: str | None
    amount: int | None


@dataclass(frozen=True, slots=True)
class Route:
    """A ruled request: method + path template, and where its ids and cost come from."""

    name: str
    method: str
    template: str
    pattern: re.Pattern[str]
    session: Source | None = None
    ids: Mapping[Scope, Source] = field(default_factory=dict)
    cost: int | Source = 1
    upload: bool = False
    plans: frozenset[str] | None = None  # plans allowed on this route; None: all

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method and not (self.method == "GET" and method == "HEAD"):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True, slots=True)
class EventSettings:
    """[events]: where usage events go besides the hooks the app passes the middleware."""

    stream: str | None = None  # a Redis stream in the storage's Redis
    stream_maxlen: int = 100_000  # kept approximately (XADD MAXLEN ~)
    webhook: str | None = None  # an http(s) URL that receives each event as a signed POST
    webhook_secret_env: str | None = None  # the environment variable holding its secret


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled plans.toml: lookups the request path does with dict access only."""

    path: str
    name: str
    contact: str
    session_timeout: float
    plans: Mapping[str, Plan]
    rules: Mapping[str, Rule]
    routes: tuple[Route, ...]
    route_limits: Mapping[tuple[str, str], tuple[Limit, ...]]
    upgrades: Mapping[tuple[str, str], Upgrade | None]
    events: EventSettings = field(default_factory=EventSettings)

    def limits_for(self, plan: str, route: str) -> tuple[Limit, ...]:
        return self.route_limits.get((plan, route), ())

    def upgrade_for(self, plan: str, limit: str) -> Upgrade | None:
        return self.upgrades.get((plan, limit))

    def route_named(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)
