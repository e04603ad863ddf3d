"""Operator actions on a policy's storage: overrides, suspensions, resets and usage reports.

Every action that can lift or change a block publishes the escaped account id (or "*") on the
channel `fairuse:invalidate`, so processes that cache denials drop what they hold for it.
Overrides and suspensions are records the decision script reads (records.py), so they are in
force on the very next request, with no restart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .decision import Decision
from .errors import FairUseError
from .identifiers import id_problem
from .keys import account_base, escape, overrides_key, stored_name, suspensions_key
from .limiter import Identity, Limiter
from .periods import MAX_SECONDS
from .plans import SIZE_KINDS, Rule, Scope
from .plans_values import MAX_AMOUNT
from .records import (
    Override,
    SuspensionRecord,
    encode,
    override_field,
    overrides_from,
    suspension_field,
    suspensions_from,
)
from .storage import Storage

INVALIDATE_CHANNEL = "fairuse:invalidate"


async def publish_invalidation(storage: Storage, account: str | None) -> int:
    """Tell block caches that `account` (None: every account) may have changed."""
    return await storage.publish(INVALIDATE_CHANNEL, "*" if account is None else escape(account))


@dataclass(frozen=True, slots=True)
class Usage:
    """What `fairuse usage` shows: the limits read without consuming, and the admin records."""

    decision: Decision
    overrides: list[Override]
    suspensions: list[SuspensionRecord]


class Admin:
    """Admin actions for the limiter's policy, storage and key prefix."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self.policy = limiter.policy
        self.storage = limiter.storage

    def now(self) -> float:
        return self.limiter.clock.now() if self.limiter.clock is not None else time.time()

    async def usage(self, identity: Identity) -> Usage:
        decision = await self.limiter.peek(identity)
        return Usage(
            decision,
            [o for o in await self.overrides(identity.account) if _in(o.workspace, identity)],
            [s for s in await self.suspensions(identity.account) if _in(s.workspace, identity)],
        )

    async def set_override(
        self,
        account: str,
        limit: str,
        amount: int,
        *,
        workspace: str | None = None,
        until: float | None = None,
    ) -> Override:
        """Put `amount` in force for `limit` from the next request, until `until` if given."""
        rule = self._rule(limit)
        if rule.kind in SIZE_KINDS:
            raise FairUseError(
                f"{limit} is a {rule.kind} limit, checked within the request; overrides apply"
                " to counted limits only"
            )
        if workspace is not None and rule.scope is Scope.ACCOUNT:
            raise FairUseError(
                f"{limit} counts per account: override it for the account, not a workspace"
            )
        if isinstance(amount, bool) or amount < 1 or amount >= MAX_AMOUNT:
            raise FairUseError(
                f"the amount must be a whole number from 1 to 10**15 - 1, got {amount}"
            )
        _check_workspace(workspace)
        _check_matchable(account, workspace)
        self._check_until(until)
        key = overrides_key(account_base(self.limiter.prefix, account))
        field = override_field(limit, workspace)
        await self.storage.write_records(key, {field: encode(until, str(amount))}, self._ms())
        await publish_invalidation(self.storage, account)
        return Override(account, limit, amount, workspace, until)

    def not_counted_on(self, limit: str) -> list[str]:
        """Plans on which `limit` is unlimited or absent: nothing is counted, so an override
        has no effect for accounts on them."""
        return [
            plan.name
            for plan in self.policy.plans.values()
            if limit not in plan.limits or plan.limits[limit].amount is None
        ]

    async def overrides(self, account: str) -> list[Override]:
        key = overrides_key(account_base(self.limiter.prefix, account))
        found = overrides_from(account, await self.storage.read_records(key))
        return [o for o in found if o.until is None or o.until > self.now()]

    async def clear_override(
        self, account: str, limit: str | None = None, *, workspace: str | None = None
    ) -> int:
        """Clear the overrides of `limit` (None: every limit), the account's and every
        workspace's, or with `workspace` that workspace's only."""

        _check_workspace(workspace)
        if limit is not None:
            self._rule(limit)

        def wanted(o: Override) -> bool:  # no workspace named: the account's and every one's
            if limit is not None and o.limit != limit:
                return False
            return workspace is None or o.workspace == workspace

        current = await self.overrides(account)
        doomed = [override_field(o.limit, o.workspace) for o in current if wanted(o)]
        if doomed:
            key = overrides_key(account_base(self.limiter.prefix, account))
            await self.storage.write_records(key, dict.fromkeys(doomed), self._ms())
        await publish_invalidation(self.storage, account)
        return len(doomed)

    async def suspend(
        self,
        account: str,
        workspace: str | None = None,
        *,
        until: float | None = None,
        reason: str = "",
    ) -> SuspensionRecord:
        """Refuse the workspace (None: every workspace of the account) until lifted or `until`."""
        _check_workspace(workspace)
        _check_matchable(account, workspace)
        self._check_until(until)
        key = suspensions_key(account_base(self.limiter.prefix, account))
        field = suspension_field(workspace)
        await self.storage.write_records(key, {field: encode(until, reason)}, self._ms())
        await publish_invalidation(self.storage, account)
        return SuspensionRecord(account, workspace, until, reason)

    async def unsuspend(self, account: str, workspace: str | None = None) -> bool:
        """Lift the suspension of the workspace (None: the account-wide one); True if one was."""
        _check_workspace(workspace)
        key = suspensions_key(account_base(self.limiter.prefix, account))
        field = suspension_field(workspace)
        held = field in await self.storage.read_records(key)
        await self.storage.write_records(key, {field: None}, self._ms())
        await publish_invalidation(self.storage, account)
        return held

    async def suspensions(self, account: str) -> list[SuspensionRecord]:
        key = suspensions_key(account_base(self.limiter.prefix, account))
        found = suspensions_from(account, await self.storage.read_records(key))
        return [s for s in found if s.until is None or s.until > self.now()]

    async def reset(
        self, account: str, workspace: str | None = None, *, limit: str | None = None
    ) -> int:
        """Delete counters (and denial counts): the account's, or one workspace's; returns how
        many keys went. Chat session markers stay, so live chats do not count again."""
        rule = None if limit is None else self._rule(limit)
        _check_workspace(workspace)
        base = account_base(self.limiter.prefix, account)
        name = "*" if rule is None else stored_name(rule.name, rule.kind)
        if workspace is None:
            patterns = [f"{base}:l:{name}", f"{base}:l:{name}:*"]
            patterns += [f"{base}:d:*"] if limit is None else []
        else:  # limit by limit: a "*" for the name would also span ":s:" into another
            ws = escape(workspace)  # workspace's chat named like this workspace
            patterns = []
            for each in (rule,) if rule is not None else self.policy.rules.values():
                stored = stored_name(each.name, each.kind)
                patterns += [f"{base}:l:{stored}:w:{ws}", f"{base}:l:{stored}:s:{ws}:*"]
            patterns += [f"{base}:d:{ws}"] if limit is None else []
        deleted = 0
        for pattern in patterns:
            deleted += await self.storage.delete_matching(pattern)
        await publish_invalidation(self.storage, account)
        return deleted

    def _rule(self, limit: str) -> Rule:
        rule = self.policy.rules.get(limit)
        if rule is None:
            known = ", ".join(self.policy.rules) or "none"
            raise FairUseError(f"unknown limit {limit!r}; limits: {known}")
        return rule

    def _ms(self) -> int:
        return round(self.now() * 1000)

    def _check_until(self, until: float | None) -> None:
        if until is not None and until <= self.now():
            raise FairUseError("the end date is in the past")
        if until is not None and until > self.now() + MAX_SECONDS:  # also nan
            raise FairUseError("the end date is more than 100 years away")


def _check_workspace(workspace: str | None) -> None:
    """An admin record for an empty workspace id could never be matched by a request, nor
    told apart from the account's own."""
    if workspace is not None and not workspace.strip():
        raise FairUseError("the workspace id is empty")


def _check_matchable(account: str, workspace: str | None) -> None:
    """A record no request could match is refused, not written: a request whose ids are, say,
    invisible or not in NFC is refused before it is decided (identifiers.id_problem). Records
    can still be cleared whatever their ids, so that older ones can go."""
    for what, value in (("account", account), ("workspace", workspace)):
        problem = None if value is None else id_problem(value)
        if problem is not None:
            raise FairUseError(f"the {what} id {value!a} {problem}, so no request could match it")


def _in(workspace: str | None, identity: Identity) -> bool:
    return workspace is None or workspace == identity.workspace
