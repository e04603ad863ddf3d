"""The Limiter: one storage call decides a request against every limit it touches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from mypy_extensions import mypyc_attr

from . import lifecycle_args as life
from .answer import AllowedAnswer, read_statuses
from .blocks import INVALIDATE_CHANNEL, BlockCache
from .clock import Clock
from .commands import DecideCommands
from .decision import Decision, LimitStatus, pick_binding
from .errors import FairUseError, UnknownPlanError
from .keys import account_base, escape
from .ops import (
    DISTINCT_TTL,
    STATUS_WIDTH,
    UNCAPPED_AMOUNT,
    CompiledOps,
    Op,
    compile_ops,
    uncapped,
)
from .periods import Period
from .plans import Counts, Kind, Limit, Policy, Scope
from .storage import Storage, storage_from_url
from .storage.pubsub import Subscription
from .windows import WindowBounds


class Identity:
    """Who a request is for. The account is the tenant: all its keys share one hash slot.

    Immutable, compared and hashed by its values, like a frozen dataclass. Not one: every request
    builds an Identity and reads it a dozen times, and compiled, a plain class does both without
    a Python-level __init__ or a lookup per attribute."""

    __slots__ = ("_account", "_plan", "_ticket", "_user", "_workspace")

    def __init__(
        self,
        account: str,
        workspace: str,
        plan: str,
        user: str | None = None,
        ticket: str | None = None,
    ) -> None:
        self._account = account
        self._workspace = workspace
        self._plan = plan
        self._user = user
        self._ticket = ticket

    @property
    def account(self) -> str:
        return self._account

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def plan(self) -> str:
        return self._plan

    @property
    def user(self) -> str | None:
        return self._user

    @property
    def ticket(self) -> str | None:
        return self._ticket

    def replace(self, *, user: str | None = None, ticket: str | None = None) -> Identity:
        """This identity with the user or ticket id a route reads from the request."""
        return Identity(
            self._account,
            self._workspace,
            self._plan,
            self._user if user is None else user,
            self._ticket if ticket is None else ticket,
        )

    def _values(self) -> tuple[str, str, str, str | None, str | None]:
        return (self._account, self._workspace, self._plan, self._user, self._ticket)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return (
            f"Identity(account={self._account!r}, workspace={self._workspace!r}, "
            f"plan={self._plan!r}, user={self._user!r}, ticket={self._ticket!r})"
        )


@mypyc_attr(allow_interpreted_subclasses=True)  # may be subclassed, compiled or not
class Limiter:
    """Decides requests for one policy. Build it once at start-up; `check` per request."""

    def __init__(
        self,
        policy: Policy,
        storage: Storage | str = "memory://",
        *,
        clock: Clock | None = None,
        prefix: str = "fu",
    ) -> None:
        self.policy = policy
        self.storage = storage_from_url(storage) if isinstance(storage, str) else storage
        self.clock = clock
        self.prefix = prefix
        self._timeout_ms = str(int(policy.session_timeout * 1000))
        self._offset_ms = 0  # storage clock minus ours, learned from each reply
        self._windows = WindowBounds()
        self._routes = {
            (plan.name, route.name): compile_ops(plan, policy.limits_for(plan.name, route.name))
            for plan in policy.plans.values()
            for route in policy.routes
        }
        # A route's own cost (`cost = 20`): what a request counts unless the caller says.
        self._costs = {route.name: route.cost for route in policy.routes}
        self._peeks = {
            plan.name: compile_ops(plan, tuple(plan.limits.values()))
            for plan in policy.plans.values()
        }
        self._byte_quotas = {  # no suspension rule: recording is never a denial
            key: CompiledOps(compiled.plan, ops, (), False, life.rule_args(None))
            for key, compiled in self._routes.items()
            if (ops := tuple(uncapped(op) for op in compiled.ops if op.counts is Counts.BYTES))
        }
        # Known denials (blocks.py), kept only where the storage can tell us when they end early.
        self._blocks: BlockCache | None = None
        self._subscription: Subscription | None = None
        if hasattr(self.storage, "subscribe"):
            self._blocks = BlockCache()
        # A single Redis takes each decision as one command built from a template (commands.py).
        self._commands = DecideCommands.for_storage(
            self.storage, prefix, self._timeout_ms, self._windows, server_clock=clock is None
        )

    @property
    def blocks(self) -> BlockCache | None:
        """Denials this process answers without Redis; None where they cannot be cached."""
        return self._blocks

    @property
    def plan_names(self) -> tuple[str, ...]:
        return tuple(self.policy.plans)

    def check(
        self,
        identity: Identity,
        route: str,
        *,
        session: str | None = None,
        cost: int | None = None,
        uploaded_bytes: int = 0,
    ) -> Coroutine[Any, Any, Decision]:
        """Consume every limit `route` touches for `identity`, or none if any is reached.
        `cost` defaults to the route's own (`cost = N` in plans.toml); a route that reads its
        cost from a header needs it passed.

        Awaited like a coroutine function (errors too surface when awaited); it hands over
        the decision's own coroutine, one frame fewer on the hot path."""
        compiled = self._routes.get((identity.plan, route))
        if compiled is None:
            return _raise(self._unknown(identity.plan, route))
        if compiled.uses_session and session is None:
            error = FairUseError(f"route {route!r} counts chat sessions: pass session=")
            return _raise(error)
        if cost is None:
            fixed = self._costs[route]
            if not isinstance(fixed, int):
                return _raise(
                    FairUseError(f"route {route!r} takes its cost from {fixed}: pass cost=")
                )
            cost = fixed
        return self._decide(compiled, identity, session, True, cost, uploaded_bytes)

    async def peek(self, identity: Identity, *, session: str | None = None) -> Decision:
        """Every limit of the identity's plan, read-only. Session limits need `session`."""
        compiled = self._peeks.get(identity.plan)
        if compiled is None:
            raise UnknownPlanError(identity.plan, self.plan_names)
        return await self._decide(compiled, identity, session, False, 0, 0)

    async def record_bytes(
        self, identity: Identity, route: str, size: int, *, session: str | None = None
    ) -> Decision | None:
        """Add accepted upload bytes to the route's byte quotas; None when it has none.

        `check` reports what remains before the body is read; the files are in the app by the
        time they are recorded, so windows count them even past the amount or an admin's
        override (token buckets only when they have the tokens). `remaining`, and the 80%
        notice, are against the amount in force: the plan's, or an admin's override.
        """
        compiled = self._byte_quotas.get((identity.plan, route))
        if compiled is None or size <= 0:
            return None
        decision = await self._decide(compiled, identity, session, True, 0, size)
        plan_limits = compiled.plan.limits
        statuses = tuple(
            s if s.limit.rule.kind is Kind.TOKEN_BUCKET else _in_force(s, plan_limits[s.name])
            for s in decision.statuses
        )
        fixed = {s.name: s for s in statuses}  # notices too: events report the amount in force
        return Decision(
            allowed=decision.allowed,
            plan=decision.plan,
            statuses=statuses,
            binding=pick_binding(statuses, decision.allowed),
            notices=tuple(fixed[s.name] for s in decision.notices),
            exceeded=tuple(fixed[s.name] for s in decision.exceeded),
            new_session=decision.new_session,
            upgrade=decision.upgrade,
            contact=decision.contact,
            now=decision.now,
            suspended=decision.suspended,
            suspends=decision.suspends,
        )

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.close()
        await self.storage.close()

    async def retire(self) -> None:
        """Replaced by a reload: drop the block cache and its subscription, keep the storage."""
        self._blocks = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()

    def _listen(self, blocks: BlockCache) -> None:
        """Subscribe to invalidations on this event loop (again, if the loop changed)."""
        if self._subscription is not None:
            self._subscription.detach()
            self._subscription = None
        subscribe = getattr(self.storage, "subscribe", None)
        if subscribe is not None:
            self._subscription = subscribe(
                INVALIDATE_CHANNEL, blocks.invalidate, blocks.set_listening
            )
        if self._subscription is None:
            self._blocks = None
        else:
            self._subscription.start()

    def _unknown(self, plan: str, route: str) -> FairUseError:
        if plan not in self.policy.plans:
            return UnknownPlanError(plan, self.plan_names)
        return FairUseError(f"unknown route {route!r}")

    async def _decide(
        self,
        compiled: CompiledOps,
        identity: Identity,
        session: str | None,
        consume: bool,
        cost: int,
        uploaded_bytes: int,
    ) -> Decision:
        present = (
            (4 if session is not None else 0)
            + (2 if identity.user is not None else 0)
            + (1 if identity.ticket is not None else 0)
        )
        ops = compiled.by_present[present]  # the ops whose scope ids the request carries
        amounts = compiled.amounts_by_present[present]
        blocks = self._blocks if consume else None
        shape: tuple[object, ...] = ()
        if blocks is not None:
            subscription = self._subscription
            if subscription is None or subscription.loop is not asyncio.get_running_loop():
                self._listen(blocks)
            if identity.account in blocks.accounts:
                shape = (id(compiled), identity.workspace, session, identity.user, cost)
                shape += (identity.ticket, uploaded_bytes)
                known = blocks.known(identity.account, identity.workspace, shape, self._now_ms())
                if isinstance(known, Decision):
                    return known
                if known is not None:
                    now = self._now_ms() / 1000
                    return Decision(False, compiled.plan, (), None, now=now, suspended=known[0])
        # Even with no counted limit the script runs: it checks the workspace's suspension.
        for _attempt in range(2):
            local_ms = self._local_ms()
            request = self._request(
                compiled, present, identity, session, consume, cost, uploaded_bytes, local_ms
            )
            epoch = blocks.epoch if blocks is not None else 0
            result = await request
            if self.clock is None:
                self._offset_ms = result[2] - local_ms
            suspended = life.refused(result)
            if suspended is not None:
                if blocks is not None:
                    blocks.learn_suspension(identity.account, identity.workspace, suspended, epoch)
                return Decision(
                    False, compiled.plan, (), None, now=result[2] / 1000, suspended=suspended
                )
            if result[0] != -1:
                decision = self._decision(compiled, ops, result, amounts)
                if result[1] == 2 and self._blocks is not None:  # decide.lua: "Refused new chats"
                    self._blocks.invalidate(escape(identity.account))  # before its message comes
                if blocks is not None and not decision.allowed:
                    if not shape:
                        shape = (id(compiled), identity.workspace, session, identity.user, cost)
                        shape += (identity.ticket, uploaded_bytes)
                    self._learn(blocks, compiled, ops, identity, shape, decision, result, epoch)
                return decision
            self._windows.clear()
        raise FairUseError("storage clock disagrees with every window computed for it")

    def _learn(
        self,
        blocks: BlockCache,
        compiled: CompiledOps,
        ops: tuple[Op, ...],
        identity: Identity,
        shape: tuple[object, ...],
        decision: Decision,
        result: list[int],
        epoch: int,
    ) -> None:
        """Remember a denial whose end is known, unless Redis must count it (suspension rule)
        or an admin override, which may end on its own, set a limit in force."""
        if decision.suspends is not None:
            blocks.learn_suspension(identity.account, identity.workspace, decision.suspends, epoch)
        if compiled.plan.suspension is not None:
            return
        if any(s.limit is not op.limit for s, op in zip(decision.statuses, ops, strict=False)):
            return
        width = STATUS_WIDTH
        outcome = [
            (op.code, result[3 + i * width : 3 + (i + 1) * width]) for i, op in enumerate(ops)
        ]
        blocks.learn_denial(identity.account, shape, decision, outcome, epoch)

    def _now_ms(self) -> int:
        """The storage clock, as well as this process knows it."""
        if self.clock is not None:
            return int(self.clock.now() * 1000)
        return int(time.time() * 1000) + self._offset_ms

    def _local_ms(self) -> int:
        """This server's clock; with the storage clock in charge it only estimates windows."""
        return int(time.time() * 1000)

    def _request(
        self,
        compiled: CompiledOps,
        present: int,
        identity: Identity,
        session: str | None,
        consume: bool,
        cost: int,
        uploaded_bytes: int,
        local_ms: int,
    ) -> Awaitable[list[int]]:
        """The script's call for one decision, started: one command built from a template where
        the storage takes it (commands.py), its KEYS and ARGV lists elsewhere."""
        if self.clock is not None:
            now_ms = int(self.clock.now() * 1000)
            now_arg = str(now_ms)
        else:
            now_ms, now_arg = local_ms + self._offset_ms, ""
        commands = self._commands
        if commands is not None:
            command = commands.build(
                compiled, present, consume, identity, session, cost, uploaded_bytes, now_ms, now_arg
            )
            if command is not None:
                return commands.send(command)
        ops = compiled.by_present[present]
        keys, argv = self._arguments(
            compiled, ops, identity, session, consume, cost, uploaded_bytes, now_ms, now_arg
        )
        return self.storage.decide(keys, argv)

    def _arguments(
        self,
        compiled: CompiledOps,
        ops: tuple[Op, ...],
        identity: Identity,
        session: str | None,
        consume: bool,
        cost: int,
        uploaded_bytes: int,
        now_ms: int,
        now_arg: str,
    ) -> tuple[list[str], list[str]]:
        base = account_base(self.prefix, identity.account)
        workspace = escape(identity.workspace)
        chat = escape(session) if session is not None else ""
        keys: list[str] = []
        argv = [now_arg, "1" if consume else "0", "0", str(len(ops))]
        if session is not None and compiled.uses_session:
            keys.append(f"{base}:s:{workspace}:{chat}")  # keys.session_key
            argv[2] = self._timeout_ms
        costs = (str(uploaded_bytes), str(cost), "1") if consume else ("0", "0", "0")
        for op in ops:
            scope = op.scope
            if scope is Scope.ACCOUNT:
                keys.append(base + op.key_tail)
            elif scope is Scope.WORKSPACE:
                keys.append(base + op.key_tail + workspace)
            elif scope is Scope.SESSION:
                keys.append(f"{base}{op.key_tail}{workspace}:{chat}")
            else:
                owner = identity.user if scope is Scope.USER else identity.ticket
                keys.append(base + op.key_tail + escape(owner or ""))
            argv += op.head
            argv.append(costs[op.cost_from])
            if op.tail is not None:
                argv += op.tail
            elif op.window is not None:
                argv += self._bounds(op.window, now_ms)
                argv.append(op.notify)
            else:  # a distinct cap: the member is the request's own
                by_user = op.counts is Counts.USERS
                member = (escape(identity.user or "") if by_user else workspace, DISTINCT_TTL)
                argv += (*member, "", "", op.notify)
        names = [op.life for op in ops]
        life.extend(keys, argv, base, identity.workspace, compiled.suspension, names)
        return keys, argv

    def _bounds(self, window: tuple[Period, ZoneInfo], now_ms: int) -> tuple[str, str, str, str]:
        return self._windows.around(window, now_ms)[2]

    def _decision(
        self, compiled: CompiledOps, ops: tuple[Op, ...], result: list[int], amounts: list[int]
    ) -> Decision:
        """`amounts`: the ops' plan amounts. Allowed with none overridden, the statuses wait
        until something reads them (answer.py)."""
        tail = 3 + STATUS_WIDTH * len(ops)
        if result[0] == 1 and result[tail] == 0 and result[tail + 3 :] == amounts:
            answer = AllowedAnswer(compiled, ops, result, amounts)
            return Decision.allowed_pending(compiled.plan, result[1] != 0, result[2] / 1000, answer)
        held, started, in_force = life.read_tail(result, len(ops), compiled.plan.suspension)
        found, notices, exceeded = read_statuses(ops, result, in_force)
        allowed = result[0] == 1
        statuses = (*found, *compiled.reported)
        upgrade = contact = None
        binding = pick_binding(statuses, allowed)
        if not allowed and binding is not None:
            upgrade = self.policy.upgrade_for(compiled.plan.name, binding.name)
            if upgrade and upgrade.amount is not None and binding.limit.amount is not None:
                upgrade = upgrade if upgrade.amount > binding.limit.amount else None
            contact = None if upgrade else self.policy.contact
        return Decision(
            allowed=allowed,
            plan=compiled.plan,
            statuses=statuses,
            binding=binding,
            notices=tuple(notices),
            exceeded=tuple(exceeded),
            new_session=result[1] != 0,
            upgrade=upgrade,
            contact=contact,
            now=result[2] / 1000,
            suspended=held,
            suspends=started,
        )


def _in_force(status: LimitStatus, plan_limit: Limit) -> LimitStatus:
    """A recorded byte quota's status against the amount in force: the script reports an
    override's amount, or the uncapped one (ops.UNCAPPED) where the plan's is in force."""
    limit = plan_limit if status.limit.amount == UNCAPPED_AMOUNT else status.limit
    return replace(status, limit=limit, remaining=max(0, (limit.amount or 0) - (status.used or 0)))


async def _raise(error: Exception) -> Decision:
    raise error
