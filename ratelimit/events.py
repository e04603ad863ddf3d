"""Usage events, built from a decision: a notice at notify_at, a first denial, a suspension.

The decision script already decides each of these once per scope, limit and window across every
process (Decision.notices, .exceeded, .suspends), so one event here is one fact. Ids are random:
a sink that retries (the webhook) sends the same id again, for receivers to de-duplicate.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .decision import Decision, LimitStatus
from .limiter import Identity
from .plans import Scope

THRESHOLD = "usage.threshold"
EXCEEDED = "limit.exceeded"
SUSPENDED = "workspace.suspended"
TYPES = (THRESHOLD, EXCEEDED, SUSPENDED)


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    time: float  # epoch seconds, from the storage clock
    account: str
    workspace: str
    plan: str
    data: Mapping[str, Any] = field(default_factory=dict)  # "limit" or "suspension", and more
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "time": _iso(self.time),
            "account": self.account,
            "workspace": self.workspace,
            "plan": self.plan,
            **self.data,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def events_for(
    decision: Decision, identity: Identity, contact: str, session: str | None = None
) -> list[Event]:
    """Every event one decision carries; usually none, so check `has_events` first."""
    made = []
    base = (decision.now, identity.account, identity.workspace, decision.plan.name)
    for status in decision.notices:
        made.append(Event(THRESHOLD, *base, {"limit": _limit(status, identity, session)}))
    for status in decision.exceeded:
        data: dict[str, Any] = {"limit": _limit(status, identity, session)}
        data["limit"]["retry_after"] = round(status.retry_after, 3)
        if decision.binding is not None and decision.binding.name == status.name:
            if decision.upgrade is not None:
                upgrade = decision.upgrade
                data["upgrade"] = {
                    "plan": upgrade.plan,
                    "url": upgrade.url,
                    "limit_value": upgrade.amount,
                }
            elif decision.contact is not None:
                data["contact"] = decision.contact
        made.append(Event(EXCEEDED, *base, data))
    if decision.suspends is not None:
        rule = decision.plan.suspension
        suspension: dict[str, Any] = {
            "scope": decision.suspends.scope.value,
            "until": _iso(decision.suspends.until),
        }
        if rule is not None:
            suspension |= {"denials": rule.denials, "within": rule.within, "for": rule.hold}
        made.append(Event(SUSPENDED, *base, {"suspension": suspension, "contact": contact}))
    return made


def has_events(decision: Decision) -> bool:
    return decision.has_events


def _limit(status: LimitStatus, identity: Identity, session: str | None) -> dict[str, Any]:
    limit = status.limit
    rule = limit.rule
    found: dict[str, Any] = {
        "name": limit.name,
        "title": rule.title,
        "scope": rule.scope.value,
        "value": limit.amount,
        "used": status.used,
        "remaining": status.remaining,
        "notify_at": limit.notify_at,
        "resets_at": _iso(status.reset_at),
    }
    ids = {Scope.SESSION: session, Scope.USER: identity.user, Scope.TICKET: identity.ticket}
    if rule.scope in ids:
        found[rule.scope.value] = ids[rule.scope]
    return found


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
