"""FairUseMiddleware: identify the request, decide it in one storage call, forward or refuse."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import unquote_to_bytes

from mypy_extensions import mypyc_attr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratelimit import Decision, FairUseError, Identity, Limiter, LimitStatus, Policy, StorageError
from ratelimit.clock import Clock
from ratelimit.dispatch import (
    CallbackSink,
    EventCallback,
    EventDispatcher,
    EventSink,
    configured_sinks,
)
from ratelimit.events import events_for, has_events
from ratelimit.plans import Route, Source
from ratelimit.storage import Storage

from . import problems, refusals
from .active import ActivePolicy
from .headers import ratelimit_headers
from .identity import (
    HeaderIdentity,
    IdentityError,
    IdentityHook,
    check_identifier,
    only_header,
    resolve,
)
from .reload import PolicyWatcher, file_signature
from .routing import Router
from .uploads import UploadGuard, UploadOptions


class FairUseContext:
    """Put in `scope["state"]["fairuse"]` (Starlette: request.state.fairuse) for the app.

    Read-only. Made for every allowed request, so plain slots behind properties: a frozen
    dataclass's __init__ costs four object.__setattr__ calls (about 1% of the request)."""

    __slots__ = ("_decision", "_identity", "_limiter", "_route")

    def __init__(self, identity: Identity, decision: Decision, limiter: Limiter, route: Route):
        self._identity = identity
        self._decision = decision
        self._limiter = limiter
        self._route = route

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def decision(self) -> Decision:
        return self._decision

    @property
    def limiter(self) -> Limiter:
        """The limiter that decided, for the app's own peeks (a reload may replace it)."""
        return self._limiter

    @property
    def route(self) -> Route:
        return self._route

    def __repr__(self) -> str:
        return f"FairUseContext({self._identity!r}, {self._decision!r}, route={self._route.name!r})"


@mypyc_attr(allow_interpreted_subclasses=True)  # may be subclassed, compiled or not
class FairUseMiddleware:
    """Pure ASGI middleware. Everything that can be computed once is computed here."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        plans: str | os.PathLike[str] | Policy = "plans.toml",
        storage: str | Storage = "memory://",
        limiter: Limiter | None = None,
        identify: IdentityHook | None = None,
        legacy_headers: bool = False,
        clock: Clock | None = None,
        reload_interval: float | None = 1.0,
        upload_options: UploadOptions | None = None,
        events: Sequence[EventSink] = (),
        on_event: EventCallback | None = None,
    ) -> None:
        from ratelimit.plans_file import load_policy

        self.app = app
        self.watcher: PolicyWatcher | None = None
        if limiter is None:
            seen = None if isinstance(plans, Policy) else file_signature(plans)
            policy = plans if isinstance(plans, Policy) else load_policy(plans)
            limiter = Limiter(policy, storage, clock=clock)
            if seen is not None and reload_interval is not None:
                self.watcher = PolicyWatcher(
                    policy.path, self._swap, interval=reload_interval, seen=seen
                )
        self.active = ActivePolicy.from_limiter(limiter)
        sinks = [*configured_sinks(limiter.policy.events, limiter.storage), *events]
        if on_event is not None:
            sinks.append(CallbackSink(on_event))
        self.events = EventDispatcher(sinks)  # [events] is read once, at start-up
        self.identify: IdentityHook = identify or HeaderIdentity()
        self.legacy_headers = legacy_headers
        self.upload_options = upload_options or UploadOptions()

    @property
    def limiter(self) -> Limiter:
        return self.active.limiter

    @property
    def policy(self) -> Policy:
        return self.active.policy

    @property
    def router(self) -> Router:
        return self.active.router

    async def _swap(self, policy: Policy) -> None:
        old = self.active
        self.active = old.replaced(policy)  # one assignment: requests see old or new
        await old.limiter.retire()  # its requests in flight go on, without the block cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.watcher is not None:
            self.watcher.ensure_running()
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._closing_on_shutdown(send)
            await self.app(scope, receive, send)
            return
        active = self.active
        matched = active.router.match(scope["method"], route_path(scope))
        if matched is None:
            await self.app(scope, receive, send)
            return
        route, params = matched
        try:
            decision, identity, session = await self._decide(active, scope, route, params)
        except _Refusal as refusal:
            await refusal.problem.send(send)
            return
        if not decision.allowed:
            if decision.suspended is not None or decision.suspends is not None:
                await problems.suspended(decision, active.policy.contact).send(send)
            else:
                await refusals.limit_reached(decision, self.legacy_headers).send(send)
            return
        context = FairUseContext(identity, decision, active.limiter, route)
        scope.setdefault("state", {})["fairuse"] = context
        app = self.app
        upload_rules = active.uploads.get((identity.plan, route.name))
        if upload_rules is not None:  # file, body and byte limits, measured as the body streams
            emit = self._emitter(identity, active.policy.contact, session)
            app = UploadGuard(app, upload_rules, context, self.upload_options, session, emit)
        headers = ratelimit_headers(decision, self.legacy_headers)
        if not headers:
            await app(scope, receive, send)
            return

        def send_with_headers(message: Message) -> Awaitable[None]:  # no coroutine of its own
            if message["type"] == "http.response.start":  # a copy: the app may reuse its own
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            return send(message)

        await app(scope, receive, send_with_headers)

    def _closing_on_shutdown(self, send: Send) -> Send:
        """Close storage connections once the app has shut down (lifespan passes through)."""

        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                if self.watcher is not None:
                    self.watcher.stop()
                await self.events.aclose()
                await self.limiter.close()
            await send(message)

        return closing_send

    async def _decide(
        self, active: ActivePolicy, scope: Scope, route: Route, params: dict[str, str]
    ) -> tuple[Decision, Identity, str | None]:
        try:
            identify = self.identify
            if type(identify) is HeaderIdentity:  # sync, and checks what it reads: no resolve
                identity = identify(scope)
            else:
                identity = await resolve(identify, scope)
        except IdentityError as error:
            raise _Refusal(problems.bad_request(error.detail, field=error.field)) from None
        plan = active.policy.plans.get(identity.plan)
        if plan is None:
            raise _Refusal(problems.unknown_plan(identity.plan, active.plan_names))
        if route.plans is not None and plan.name not in route.plans:
            allowed = [p for p in active.policy.plans.values() if p.name in route.plans]
            raise _Refusal(problems.not_on_plan(plan, route.name.replace("_", " "), allowed))
        try:
            session = None
            if route.session is not None:
                session = check_identifier(
                    "chat id", _read("chat id", route.session, scope, params)
                )
            cost = route.cost
            if isinstance(cost, Source):
                cost = _positive_int("cost", _read("cost", cost, scope, params))
            for scope_name, source in route.ids.items():
                value = check_identifier(
                    scope_name.value, _read(scope_name.value, source, scope, params)
                )
                identity = _with_id(identity, scope_name.value, value)
        except IdentityError as error:
            raise _Refusal(problems.bad_request(error.detail, field=error.field)) from None
        try:
            decision = await active.limiter.check(identity, route.name, session=session, cost=cost)
        except StorageError:  # logged by the storage's breaker, once per outage
            fallback = active.fallback
            found = await fallback.decide(plan, identity, route.name, session=session, cost=cost)
            if found is None:
                raise _Refusal(problems.storage_unavailable(1)) from None
            decision = found
        except FairUseError as error:
            raise _Refusal(problems.bad_request(str(error))) from None
        if self.events and has_events(decision):  # queued; delivered by background tasks
            self.events.emit(events_for(decision, identity, active.policy.contact, session))
        if cost > 1 and not decision.allowed and not _suspends(decision):
            never = _never_fits(decision, cost)
            if never is not None:  # no Retry-After would help, whichever limit binds
                upgrade = active.policy.upgrade_for(plan.name, never.name)
                contact = active.policy.contact
                raise _Refusal(problems.too_costly(decision, never, cost, upgrade, contact))
        return decision, identity, session

    def _emitter(
        self, identity: Identity, contact: str, session: str | None
    ) -> Callable[[Decision], None] | None:
        """Queue the events of a later decision of this request (recorded upload bytes)."""
        if not self.events:
            return None
        events = self.events

        def emit(decision: Decision) -> None:
            if has_events(decision):
                events.emit(events_for(decision, identity, contact, session))

        return emit


def _suspends(decision: Decision) -> bool:
    """Held by a suspension, or this refusal started one: answered 403, whatever its cost."""
    return decision.suspended is not None or decision.suspends is not None


def _never_fits(decision: Decision, cost: int) -> LimitStatus | None:
    """A refusing limit that a request of this cost never passes (the binding one first): the
    binding limit may reset later than one the request can never fit in."""
    binding = decision.binding
    if binding is not None and not binding.allowed and not binding.takes(cost):
        return binding
    for status in decision.statuses:
        if not status.allowed and not status.takes(cost):
            return status
    return None


class _Refusal(Exception):
    def __init__(self, problem: problems.Problem) -> None:
        self.problem = problem


def route_path(scope: Scope) -> str:
    """The path the app routes on: without the `root_path` a server (uvicorn --root-path) or a
    Starlette Mount puts in front of it, as Starlette's own routing strips it.
    """
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        rest = path[len(root) :]
        if rest == "" or rest[0] == "/":
            return rest
    return path


def _read(field: str, source: Source, scope: Scope, params: dict[str, str]) -> str | None:
    if source.kind == "path":
        value = params.get(source.name)
        if value is not None and "\ufffd" in value and not _raw_path_is_utf8(scope):
            raise IdentityError(field, f"The {field} is not valid UTF-8.")
        return value
    return only_header(field, scope["headers"], source.name.encode("latin-1"))


def _raw_path_is_utf8(scope: Scope) -> bool:
    """Servers decode the path with U+FFFD in place of bytes that are not UTF-8, so `%FE` and
    `%FF` would both arrive as the same id: only the raw path tells them from a real U+FFFD."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):
        return True  # nothing to tell by: the decoded path is all there is
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


MAX_COST_DIGITS = 15  # far above any limit, far below Redis's and Lua's exact integers


def _positive_int(field: str, value: str | None) -> int:
    """ASCII digits only: str.isdigit() also takes '²', which int() refuses."""
    if value is None or not (value.isascii() and value.isdigit()):
        raise IdentityError(field, f"The {field} must be a positive whole number.")
    if len(value) > MAX_COST_DIGITS:  # before int(): Python refuses over 4,300 digits
        raise IdentityError(field, f"The {field} is longer than {MAX_COST_DIGITS} digits.")
    number = int(value)
    if number < 1:
        raise IdentityError(field, f"The {field} must be a positive whole number.")
    return number


def _with_id(identity: Identity, field: str, value: str) -> Identity:
    if field == "user":
        return identity.replace(user=value)
    if field == "ticket":
        return identity.replace(ticket=value)
    return identity
