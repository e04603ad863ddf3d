"""What the limiter answers: one LimitStatus per limit, and the Decision for the request."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .plans import Kind, Limit, Plan, Scope, Upgrade


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One limit after a request: `used` and `remaining` are None when nothing is counted."""

    limit: Limit
    used: int | None
    remaining: int | None
    reset_at: float | None  # epoch seconds; None when the limit never resets
    retry_after: float = 0.0  # seconds until the request could pass; 0 when it passed
    allowed: bool = True

    @property
    def name(self) -> str:
        return self.limit.name

    @property
    def is_cap(self) -> bool:
        """A cap for life (e.g. one workspace): waiting never helps, so it answers 403."""
        return self.limit.rule.kind is Kind.DISTINCT

    @property
    def fill(self) -> float:
        """How close to exhaustion, 0..1; unlimited limits are never close."""
        if self.limit.amount is None or self.remaining is None:
            return 0.0
        return 1.0 - self.remaining / self.limit.amount


@dataclass(frozen=True, slots=True)
class Suspension:
    """A workspace, or a whole account, refused until `until` (epoch seconds; None: no end)."""

    scope: Scope  # Scope.WORKSPACE or Scope.ACCOUNT
    until: float | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request. Denied requests consumed nothing."""

    allowed: bool
    plan: Plan
    statuses: tuple[LimitStatus, ...]
    binding: LimitStatus | None  # the limit that denied, or the one closest to exhaustion
    notices: tuple[LimitStatus, ...] = ()  # limits that crossed notify_at in this request
    exceeded: tuple[LimitStatus, ...] = ()  # limits denied for the first time in their window
    new_session: bool = False
    upgrade: Upgrade | None = None  # the next plan that lifts the binding limit
    contact: str | None = None  # whom to reach when no plan lifts it
    now: float = 0.0  # the storage clock when it decided, epoch seconds
    suspended: Suspension | None = None  # in force when it came (check: refused; peek: reported)
    suspends: Suspension | None = None  # this request's denial suspended its workspace

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, rounded up so a client never retries before the reset."""
        if self.binding is None or self.allowed:
            return 0
        return max(1, math.ceil(self.binding.retry_after))


def pick_binding(statuses: tuple[LimitStatus, ...], allowed: bool) -> LimitStatus | None:
    """Denied: the cap, else the denial that lasts longest. Allowed: the fullest counted limit."""
    if not allowed:
        denied = [s for s in statuses if not s.allowed]
        return max(denied, key=lambda s: (s.is_cap, s.retry_after)) if denied else None
    counted = [s for s in statuses if s.remaining is not None and s.limit.amount is not None]
    return max(counted, key=lambda s: s.fill) if counted else None
