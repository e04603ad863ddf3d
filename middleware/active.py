"""The policy a middleware serves with, and everything compiled from it, as one immutable value.

A reload builds a new ActivePolicy and swaps it in with one assignment; each request reads the
attribute once, so a request in flight finishes with the policy it started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ratelimit import Limiter, Policy
from ratelimit.fallback import Fallback
from ratelimit.storage import Storage

from .routing import Router
from .uploads import UploadRules, compile_upload_rules


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    policy: Policy
    limiter: Limiter
    router: Router
    fallback: Fallback
    plan_names: tuple[str, ...]
    uploads: Mapping[tuple[str, str], UploadRules]  # (plan, route) -> what uploads are held to

    @classmethod
    def from_limiter(cls, limiter: Limiter) -> ActivePolicy:
        policy = limiter.policy
        return cls(
            policy=policy,
            limiter=limiter,
            router=Router(policy.routes),
            fallback=Fallback(policy, clock=limiter.clock),
            plan_names=tuple(policy.plans),
            uploads=compile_upload_rules(policy),
        )

    def replaced(self, policy: Policy) -> ActivePolicy:
        """The same storage (counts carry over) and clock, with a new policy."""
        storage: Storage = self.limiter.storage
        limiter = Limiter(policy, storage, clock=self.limiter.clock, prefix=self.limiter.prefix)
        return ActivePolicy.from_limiter(limiter)
