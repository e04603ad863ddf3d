"""The upload guard: file and body caps enforced while the body streams, and byte quotas.

Per request it wraps `receive` and `send` (Starlette's GZipResponder pattern). Each chunk is
measured before the app sees it; the moment a file passes a cap the client gets the refusal
and the app gets `http.disconnect`, so it never mistakes a cut file for a whole one. Anything
the app sends after that is dropped. Accepted bytes are added to the byte quotas once the body
is complete, in one more storage call; see README.md, "Uploads", for how exact that is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratelimit import Decision, FairUseError, Limit, LimitStatus, Policy, StorageError, Upgrade
from ratelimit.plans import COUNTER_KINDS, Counts, Kind

from . import problems
from .upload_parts import (
    BodyMeter,
    BodyTooLarge,
    Caps,
    FileTooLarge,
    Malformed,
    QuotaExceeded,
    UploadError,
    meter_for,
)

if TYPE_CHECKING:
    from .fairuse import FairUseContext

logger = logging.getLogger("fairuse")
DISCONNECT: Message = {"type": "http.disconnect"}


@dataclass(frozen=True, slots=True)
class UploadOptions:
    """Guards against malformed or abusive bodies, whatever the plan (FairUseMiddleware option)."""

    max_parts: int = 1000  # parts in one multipart body, files and fields together
    max_part_header_bytes: int = 8192  # header names and values of one part
    idle_timeout: float = 30.0  # seconds without a byte of body before the upload is dropped

    def __post_init__(self) -> None:
        if self.max_parts < 1 or self.max_part_header_bytes < 1 or not self.idle_timeout > 0:
            raise ValueError("UploadOptions: every limit must be positive")


@dataclass(frozen=True, slots=True)
class Capped:
    """A size limit with its way out, found once at start-up."""

    limit: Limit
    upgrade: Upgrade | None
    contact: str | None


@dataclass(frozen=True, slots=True)
class UploadRules:
    """What one plan's uploads on one route are held to."""

    upload: bool  # an upload route: multipart files (or a raw body) are measured
    file: Capped | None  # the tightest file_size limit
    body: Capped | None  # the tightest body_size limit
    quotas: tuple[Capped, ...]  # byte quotas the storage counts (counts = "bytes")


def compile_upload_rules(policy: Policy) -> dict[tuple[str, str], UploadRules]:
    """(plan, route) -> rules, for upload routes and routes with a body_size amount."""
    rules = {}
    for (plan, route_name), limits in policy.route_limits.items():
        route = policy.route_named(route_name)

        def capped(limit: Limit, plan: str = plan) -> Capped:
            upgrade = policy.upgrade_for(plan, limit.name)
            return Capped(limit, upgrade, None if upgrade else policy.contact)

        sized = [limit for limit in limits if limit.amount is not None]
        files = [capped(x) for x in sized if x.rule.kind is Kind.FILE_SIZE and route.upload]
        bodies = [capped(x) for x in sized if x.rule.kind is Kind.BODY_SIZE]
        quotas = tuple(
            capped(x)
            for x in sized
            if x.rule.kind in COUNTER_KINDS and x.rule.counts is Counts.BYTES and route.upload
        )
        if route.upload or bodies:
            rules[(plan, route_name)] = UploadRules(
                route.upload,
                min(files, key=lambda c: c.limit.amount or 0, default=None),
                min(bodies, key=lambda c: c.limit.amount or 0, default=None),
                quotas,
            )
    return rules


class UploadGuard:
    """One request's upload, as an ASGI app in front of the real one."""

    def __init__(
        self,
        app: ASGIApp,
        rules: UploadRules,
        context: FairUseContext,
        options: UploadOptions,
        session: str | None = None,
        on_recorded: Callable[[Decision], None] | None = None,
    ) -> None:
        self.app = app
        self.rules = rules
        self.context = context
        self.options = options
        self.session = session
        self.on_recorded = on_recorded  # sees each recording's decision (its 80% notices)
        self.quota = self._tightest_quota()
        self.started = self.answered = self.refused = self.complete = self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inner_receive, self.inner_send = receive, send
        caps = Caps(
            file=_amount(self.rules.file),
            body=_amount(self.rules.body),
            quota=None if self.quota is None else self.quota[1].remaining,
        )
        try:
            self.meter: BodyMeter = meter_for(
                caps,
                scope["headers"],
                upload=self.rules.upload,
                max_parts=self.options.max_parts,
                max_header_bytes=self.options.max_part_header_bytes,
            )
        except UploadError as error:
            await self._refuse(self._problem(error))
            return
        try:
            await self.app(scope, self._receive, self._send)
        except Exception:
            if not (self.refused or self.disconnected):
                raise
            # The app was told http.disconnect; failing on it (Starlette's ClientDisconnect)
            # is expected and no one is left to answer.
            logger.debug("fairuse: the app failed after its upload was cut off", exc_info=True)

    async def _receive(self) -> Message:
        if self.refused:
            return DISCONNECT
        if self.complete:
            return await self.inner_receive()
        try:
            async with asyncio.timeout(self.options.idle_timeout):
                message = await self.inner_receive()
        except TimeoutError:
            await self._refuse(problems.upload_timeout(self.options.idle_timeout))
            return DISCONNECT
        if message["type"] != "http.request":
            self.disconnected = message["type"] == "http.disconnect"
            return message
        # Two of the app's tasks may wait at once (Starlette's disconnect listener beside a
        # streaming body): uvicorn then hands both a last message; only the first counts.
        if self.refused:
            return DISCONNECT
        if self.complete:
            return message
        more = bool(message.get("more_body", False))
        try:
            self.meter.feed(message.get("body", b""), more)
        except UploadError as error:
            await self._refuse(self._problem(error))
            return DISCONNECT
        if not more:
            self.complete = True
            await self._record(self.meter.accepted)
        return message

    async def _send(self, message: Message) -> None:
        if self.answered:
            return  # the guard has answered this request; the app's answer is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self.inner_send(message)

    async def _refuse(self, problem: problems.Problem) -> None:
        """Answer unless the app already has; either way the app reads no further."""
        self.refused = True
        if self.started:
            return
        self.answered = True
        await problem.send(self.inner_send)

    async def _record(self, size: int) -> None:
        if not size or not self.rules.quotas:
            return
        context = self.context
        try:
            recorded = await context.limiter.record_bytes(
                context.identity, context.route.name, size, session=self.session
            )
        except StorageError:  # the upload went through; the breaker logs the outage, once
            return
        except FairUseError as error:
            logger.warning("fairuse: could not record %d uploaded bytes: %s", size, error)
            return
        if recorded is not None and self.on_recorded is not None:
            self.on_recorded(recorded)

    def _tightest_quota(self) -> tuple[Capped, LimitStatus] | None:
        """The byte quota with the least left, from the request's own decision (no extra call)."""
        found = None
        statuses = {s.name: s for s in self.context.decision.statuses}
        for quota in self.rules.quotas:
            status = statuses.get(quota.limit.name)
            if status is None or status.remaining is None:
                continue  # storage unavailable, or not counted for this request: fail open
            if found is None or status.remaining < (found[1].remaining or 0):
                found = (quota, status)
        return found

    def _problem(self, error: UploadError) -> problems.Problem:
        plan = self.context.decision.plan
        names = {"field": error.field, "filename": error.filename}
        if isinstance(error, Malformed):
            return problems.bad_upload(error.detail)
        if isinstance(error, QuotaExceeded) and self.quota is not None:
            quota, status = self.quota
            decision = self.context.decision
            return problems.upload_quota_reached(
                decision, status, quota.upgrade, quota.contact, before=error.before, **names
            )
        capped = self.rules.body if isinstance(error, BodyTooLarge) else self.rules.file
        if not isinstance(error, BodyTooLarge | FileTooLarge) or capped is None:
            raise RuntimeError(f"no limit for {error!r}")  # meters raise only for set caps
        return problems.payload_too_large(
            plan, capped.limit, capped.upgrade, capped.contact, **names
        )


def _amount(capped: Capped | None) -> int | None:
    return None if capped is None else capped.limit.amount
