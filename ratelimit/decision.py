"""What the limiter answers: one LimitStatus per limit, and the Decision for the request."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from .plans import Counts, Kind, Limit, Plan, Scope, Upgrade


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

    def takes(self, cost: int) -> bool:
        """Whether a request of this cost could ever pass: a limit that counts requests holds
        at most its amount in one window, a bucket at most its burst; waiting never helps."""
        quota = self.limit.quota
        return quota is None or self.limit.rule.counts is not Counts.REQUESTS or cost <= quota

    @property
    def fill(self) -> float:
        """How close to exhaustion, 0..1; unlimited limits are never close. A bucket holds its
        burst, not its rate's amount."""
        quota = self.limit.quota
        if quota is None or self.remaining is None:
            return 0.0
        return 1.0 - self.remaining / quota


@dataclass(frozen=True, slots=True)
class Suspension:
    """A workspace, or a whole account, refused until `until` (epoch seconds; None: no end)."""

    scope: Scope  # Scope.WORKSPACE or Scope.ACCOUNT
    until: float | None


Rate = tuple[Limit, int, float | None]  # a counted limit: limit, remaining, reset_at


class PendingStatuses(Protocol):
    """The storage's raw answer for an allowed request, read into statuses only on demand."""

    def build(self) -> tuple[tuple[LimitStatus, ...], LimitStatus | None, tuple[LimitStatus, ...]]:
        """Statuses, binding (the fullest counted limit) and notices."""
        ...

    def has_notices(self) -> bool: ...

    def rates(self) -> tuple[Rate, ...]:
        """What `Decision.rates` answers, read straight from the raw answer."""
        ...


class Decision:
    """The answer for one request. Denied requests consumed nothing. Read it; never change it.

    An allowed request usually needs nothing but its RateLimit fields (`rates`), so a decision
    may keep the storage's raw answer and build its LimitStatus objects only when something reads
    `statuses`, `binding`, `notices` or `exceeded`.
    """

    __slots__ = (
        "_binding",
        "_exceeded",
        "_notices",
        "_pending",
        "_statuses",
        "allowed",
        "contact",
        "new_session",
        "now",
        "plan",
        "suspended",
        "suspends",
        "upgrade",
    )

    def __init__(
        self,
        allowed: bool,
        plan: Plan,
        statuses: tuple[LimitStatus, ...],
        binding: LimitStatus | None,  # the limit that denied, or the one closest to exhaustion
        notices: tuple[LimitStatus, ...] = (),  # limits that crossed notify_at in this request
        exceeded: tuple[LimitStatus, ...] = (),  # limits denied for the first time in their window
        new_session: bool = False,
        upgrade: Upgrade | None = None,  # the next plan that lifts the binding limit
        contact: str | None = None,  # whom to reach when no plan lifts it
        now: float = 0.0,  # the storage clock when it decided, epoch seconds
        suspended: Suspension
        | None = None,  # in force when it came (check: refused; peek: reported)
        suspends: Suspension | None = None,  # this request's denial suspended its workspace
    ) -> None:
        self.allowed = allowed
        self.plan = plan
        self._statuses = statuses
        self._binding = binding
        self._notices = notices
        self._exceeded = exceeded
        self.new_session = new_session
        self.upgrade = upgrade
        self.contact = contact
        self.now = now
        self.suspended = suspended
        self.suspends = suspends
        self._pending: PendingStatuses | None = None

    @classmethod
    def allowed_pending(
        cls, plan: Plan, new_session: bool, now: float, pending: PendingStatuses
    ) -> Decision:
        """An allowed decision whose statuses are built from `pending` when first read."""
        # Positional and by name, not `cls(...)`: compiled, a direct call skips argument parsing.
        decision = Decision(True, plan, (), None, (), (), new_session, None, None, now)
        decision._pending = pending
        return decision

    @property
    def pending(self) -> PendingStatuses | None:
        """The raw answer of an allowed decision while nothing has read its statuses."""
        return self._pending

    @property
    def statuses(self) -> tuple[LimitStatus, ...]:
        if self._pending is not None:
            self._build()
        return self._statuses

    @property
    def binding(self) -> LimitStatus | None:
        """The limit that denied, or (allowed) the counted one closest to exhaustion."""
        if self._pending is not None:
            self._build()
        return self._binding

    @property
    def notices(self) -> tuple[LimitStatus, ...]:
        if self._pending is not None:
            self._build()
        return self._notices

    @property
    def exceeded(self) -> tuple[LimitStatus, ...]:
        if self._pending is not None:
            self._build()
        return self._exceeded

    @property
    def has_events(self) -> bool:
        """Whether it carries a notice, a first denial or a suspension (events.py)."""
        if self._pending is not None:
            return self._pending.has_notices()  # allowed: nothing denied or suspended
        return bool(self._notices or self._exceeded or self.suspends)

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait, rounded up so a client never retries before the reset."""
        binding = self.binding
        if binding is None or self.allowed:
            return 0
        return max(1, math.ceil(binding.retry_after))

    def rates(self) -> tuple[Rate, ...]:
        """The counted limits with a window, binding first; lifetime caps (one workspace) are
        no rate. What the RateLimit fields report."""
        if self._pending is not None:
            return self._pending.rates()
        binding = self._binding
        rates = [
            (s.limit, s.remaining, s.reset_at)
            for s in self._statuses
            if s.remaining is not None and s is not binding and not s.is_cap
        ]
        if binding is not None and binding.remaining is not None and not binding.is_cap:
            rates.insert(0, (binding.limit, binding.remaining, binding.reset_at))
        return tuple(rates)

    def _build(self) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        self._statuses, self._binding, self._notices = pending.build()

    def __repr__(self) -> str:
        return (
            f"Decision(allowed={self.allowed}, plan={self.plan.name!r}, "
            f"statuses={self.statuses!r}, binding={self.binding!r}, now={self.now})"
        )


def pick_binding(statuses: tuple[LimitStatus, ...], allowed: bool) -> LimitStatus | None:
    """Denied: the cap, else the denial that lasts longest. Allowed: the fullest counted limit."""
    if not allowed:
        denied = [s for s in statuses if not s.allowed]
        return max(denied, key=lambda s: (s.is_cap, s.retry_after)) if denied else None
    counted = [  # a cap for life (one workspace) is no rate: it never binds an allowed one
        s
        for s in statuses
        if s.remaining is not None and s.limit.amount is not None and not s.is_cap
    ]
    return max(counted, key=lambda s: s.fill) if counted else None
