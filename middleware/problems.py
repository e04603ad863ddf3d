"""RFC 9457 problem+json answers: one small function per refusal, sent as raw ASGI messages."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from starlette.types import Send

from ratelimit import Decision, Limit, LimitStatus, Plan, Upgrade
from ratelimit.decision import Suspension
from ratelimit.plans import Kind

from .headers import ratelimit_headers
from .messages import (
    iso,
    limit_detail,
    not_on_plan_detail,
    quota_detail,
    suspended_detail,
    too_costly_detail,
    too_large_detail,
)

TYPE_BASE = "urn:fairuse:problem:"
CLOSE = (b"connection", b"close")  # refused mid-upload: the rest of the body is never read


class Problem:
    """A refusal ready to send: status, extra headers and a JSON body (encoded once)."""

    __slots__ = ("_encoded", "body", "headers", "status")

    def __init__(
        self, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        self._encoded: tuple[bytes, list[tuple[bytes, bytes]]] | None = None

    async def send(self, send: Send) -> None:
        if self._encoded is None:
            payload = json.dumps(self.body, ensure_ascii=False).encode()
            headers = [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
                *self.headers,
            ]
            self._encoded = (payload, headers)
        payload, headers = self._encoded
        start = {"type": "http.response.start", "status": self.status, "headers": list(headers)}
        await send(start)
        await send({"type": "http.response.body", "body": payload})


def _problem(kind: str, title: str, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}


def limit_reached(decision: Decision, legacy_headers: bool = False) -> Problem:
    """429 for a counter, with Retry-After; 403 for a cap that waiting never lifts."""
    binding = decision.binding
    assert binding is not None
    limit = binding.limit
    body = _problem(
        "plan-limit" if binding.is_cap else "limit-reached",
        "Not allowed on this plan" if binding.is_cap else "Limit reached",
        403 if binding.is_cap else 429,
        limit_detail(decision, binding),
        plan=decision.plan.name,
        limit=limit.name,
        limit_value=limit.quota,  # a bucket's burst, as RateLimit-Policy's q: what `used` fills
        used=binding.used,
        resets_at=iso(binding.reset_at),
        retry_after=None if binding.is_cap else decision.retry_after,
        **{"violated-policies": [s.name for s in decision.statuses if not s.allowed]},
    )
    if decision.upgrade is not None:
        upgrade = decision.upgrade
        body["upgrade"] = {"plan": upgrade.plan, "url": upgrade.url, "limit_value": upgrade.amount}
    else:
        body["contact"] = decision.contact
    headers = ratelimit_headers(decision, legacy_headers)
    if not binding.is_cap:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    return Problem(body["status"], body, headers)


def too_costly(
    decision: Decision, binding: LimitStatus, cost: int, upgrade: Upgrade | None, contact: str
) -> Problem:
    """413 for a request that counts more than `binding` ever holds: retrying never helps.
    `upgrade`: the plan that lifts that limit, if any."""
    limit = binding.limit
    if upgrade is not None and upgrade.amount is not None and upgrade.amount < cost:
        upgrade = None  # a plan that would refuse it too is no way out
    body = _problem(
        "request-too-large",
        "Request too large for this plan",
        413,
        too_costly_detail(decision.plan, binding, cost, upgrade, contact),
        plan=decision.plan.name,
        limit=limit.name,
        limit_value=limit.amount,
        cost=cost,
    )
    _way_out(body, upgrade, contact)
    return Problem(413, body, [])


def suspended(decision: Decision, contact: str) -> Problem:
    """403 for a suspended workspace or account: until when, and whom to contact. Also for
    the denial that suspends it: a 429 would invite a retry that can only meet the 403."""
    suspension = decision.suspended or decision.suspends
    if suspension is None:
        raise ValueError("the decision holds no suspension")
    return _suspended(decision.plan.name, suspension, contact)


@lru_cache(maxsize=1024)
def _suspended(plan: str, suspension: Suspension, contact: str) -> Problem:
    """Nothing in it depends on the time of the request: built once, sent many times."""
    body = _problem(
        "suspended",
        "Suspended",
        403,
        suspended_detail(suspension, contact),
        plan=plan,
        scope=suspension.scope.value,
        suspended_until=iso(suspension.until),
        contact=contact,
    )
    return Problem(403, body)


def bad_request(detail: str, **extra: Any) -> Problem:
    return Problem(400, _problem("bad-request", "Bad request", 400, detail, **extra))


def unknown_plan(plan: str, plans: tuple[str, ...]) -> Problem:
    detail = f"The plan {plan!r} is not one of this service's plans: {', '.join(plans)}."
    return bad_request(detail, plan=plan, valid_plans=list(plans))


def not_on_plan(plan: Plan, route: str, allowed_on: list[Plan]) -> Problem:
    body = _problem(
        "not-on-plan",
        "Not allowed on this plan",
        403,
        not_on_plan_detail(plan, route, allowed_on),
        plan=plan.name,
    )
    if allowed_on:
        body["upgrade"] = {"plan": allowed_on[0].name, "url": allowed_on[0].url}
    return Problem(403, body)


def storage_unavailable(retry_after: int) -> Problem:
    detail = "Usage limits cannot be checked right now. Please try again shortly."
    body = _problem("unavailable", "Service unavailable", 503, detail, retry_after=retry_after)
    return Problem(503, body, [(b"retry-after", str(retry_after).encode())])


def payload_too_large(
    plan: Plan,
    limit: Limit,
    upgrade: Upgrade | None,
    contact: str | None,
    *,
    field: str | None = None,
    filename: str | None = None,
) -> Problem:
    """413 for a file (or, for a body_size limit, the whole body) over its cap."""
    amount = limit.amount or 0
    body = limit.rule.kind is Kind.BODY_SIZE
    detail = too_large_detail(plan, amount, upgrade, contact, body=body, filename=filename)
    problem = _problem(
        "payload-too-large",
        "Content too large",
        413,
        detail,
        plan=plan.name,
        limit=limit.name,
        limit_value=amount,
        max_bytes=amount,
        field=field,
        filename=filename,
        **{"violated-policies": [limit.name]},
    )
    _way_out(problem, upgrade, contact)
    return Problem(413, problem, [CLOSE])


def upload_quota_reached(
    decision: Decision,
    status: LimitStatus,
    upgrade: Upgrade | None,
    contact: str | None,
    *,
    field: str | None = None,
    filename: str | None = None,
    before: int = 0,
) -> Problem:
    """429 for a file that would pass what remains of a byte quota; Retry-After is the reset.
    `before`: the bytes of the request's files before this one; `max_bytes` is what they left."""
    limit = status.limit
    reset = status.reset_at or decision.now
    retry_after = max(1, math.ceil(reset - decision.now))
    left = max(0, (status.remaining or 0) - before)
    detail = quota_detail(decision.plan, status, filename, upgrade, contact, decision.now, before)
    problem = _problem(
        "limit-reached",
        "Limit reached",
        429,
        detail,
        plan=decision.plan.name,
        limit=limit.name,
        limit_value=limit.amount,
        used=status.used,
        max_bytes=left,
        field=field,
        filename=filename,
        resets_at=iso(status.reset_at),
        retry_after=retry_after,
        **{"violated-policies": [limit.name]},
    )
    _way_out(problem, upgrade, contact)
    return Problem(429, problem, [(b"retry-after", str(retry_after).encode()), CLOSE])


def bad_upload(detail: str) -> Problem:
    return Problem(400, _problem("bad-request", "Bad request", 400, detail), [CLOSE])


def upload_timeout(seconds: float) -> Problem:
    detail = f"The upload stalled: no data arrived for {seconds:g} seconds."
    return Problem(408, _problem("request-timeout", "Request timeout", 408, detail), [CLOSE])


def _way_out(body: dict[str, Any], upgrade: Upgrade | None, contact: str | None) -> None:
    if upgrade is not None:
        body["upgrade"] = {"plan": upgrade.plan, "url": upgrade.url, "limit_value": upgrade.amount}
    else:
        body["contact"] = contact
