"""What a request gets when storage fails, from the `fail` key of each limit it touches.

- every limit fails "open": the request goes through, unchecked and uncounted;
- any limit fails "closed": the request is refused (the middleware answers 503);
- otherwise (some "local"): this process decides the "local" limits on its own, in memory.

A local decision is honest in one direction only. Its counts start at zero when the outage
starts and see only this process's requests, so a local denial is always right (this process
alone has already served the limit) but a local admission may exceed the real quota: by at most
one allowance per window per process while storage is down. Requests admitted locally are not
written to Redis after it comes back.
"""

from __future__ import annotations

from dataclasses import replace

from .clock import Clock
from .decision import Decision
from .limiter import Identity, Limiter
from .plans import SIZE_KINDS, Limit, Plan, Policy
from .storage.memory import MemoryStorage

OPEN, CLOSED, LOCAL = "open", "closed", "local"


class Fallback:
    """Built once per policy: the mode of every (plan, route), and the local limiter if needed."""

    def __init__(self, policy: Policy, *, clock: Clock | None = None) -> None:
        self.modes: dict[tuple[str, str], str] = {}
        local_limits: dict[tuple[str, str], tuple[Limit, ...]] = {}
        for (plan, route), limits in policy.route_limits.items():
            stored = [limit for limit in limits if _stored(limit)]
            fails = {limit.rule.fail for limit in stored}
            self.modes[plan, route] = (
                CLOSED if CLOSED in fails else LOCAL if LOCAL in fails else OPEN
            )
            local_limits[plan, route] = tuple(x for x in stored if x.rule.fail == LOCAL)
        self.local: Limiter | None = None
        if LOCAL in self.modes.values():
            # No suspensions from local counts: they see one process, and only while Redis is down.
            plans = {name: replace(p, suspension=None) for name, p in policy.plans.items()}
            local_policy = replace(policy, route_limits=local_limits, plans=plans)
            self.local = Limiter(local_policy, MemoryStorage(), clock=clock)

    def mode(self, plan: str, route: str) -> str:
        return self.modes.get((plan, route), OPEN)

    async def decide(
        self,
        plan: Plan,
        identity: Identity,
        route: str,
        *,
        session: str | None = None,
        cost: int = 1,
    ) -> Decision | None:
        """The decision without storage; None means refuse (some limit fails closed)."""
        mode = self.modes.get((plan.name, route), OPEN)
        if mode == CLOSED:
            return None
        if mode == LOCAL and self.local is not None:
            decision = await self.local.check(identity, route, session=session, cost=cost)
            if not decision.allowed:
                return decision
        # Allowed, with no statuses: local counts would only mislead RateLimit headers.
        return Decision(True, plan, (), None)


def _stored(limit: Limit) -> bool:
    """Limits that need storage: unlimited ones and size limits are decided without it."""
    return limit.amount is not None and limit.rule.kind not in SIZE_KINDS
