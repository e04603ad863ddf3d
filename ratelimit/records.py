"""Admin records: limit overrides and suspensions, as decide.lua reads them.

Each account has two hashes (keys.py: overrides_key, suspensions_key). A value is
"UNTIL|PAYLOAD": UNTIL is the end in epoch ms, or empty for no end; PAYLOAD is the override's
amount, or the suspension's reason ("auto" when repeated denials started it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from .keys import escape

ACCOUNT_FIELD = "*"
WORKSPACE_INFIX = ":w:"
_VALUE = re.compile(r"([0-9]*)\|(.*)", re.S)


@dataclass(frozen=True, slots=True)
class Override:
    """An amount in force for one limit of an account, or of one of its workspaces."""

    account: str
    limit: str
    amount: int
    workspace: str | None = None  # None: the whole account
    until: float | None = None  # epoch seconds; None: until cleared


@dataclass(frozen=True, slots=True)
class SuspensionRecord:
    account: str
    workspace: str | None  # None: every workspace of the account
    until: float | None  # epoch seconds; None: until lifted
    reason: str  # "auto" when repeated denials started it


def encode(until: float | None, payload: str) -> str:
    return f"{'' if until is None else round(until * 1000)}|{payload}"


def decode(value: str) -> tuple[float | None, str]:
    """(until in epoch seconds or None, payload); a malformed value reads as never ending."""
    found = _VALUE.fullmatch(value)
    if found is None:
        return None, value
    return (int(found[1]) / 1000 if found[1] else None), found[2]


def override_field(limit: str, workspace: str | None) -> str:
    return limit if workspace is None else f"{limit}{WORKSPACE_INFIX}{escape(workspace)}"


def suspension_field(workspace: str | None) -> str:
    return ACCOUNT_FIELD if workspace is None else escape(workspace)


def overrides_from(account: str, records: dict[str, str]) -> list[Override]:
    found = []
    for field, value in sorted(records.items()):
        limit, _, workspace = field.partition(WORKSPACE_INFIX)
        until, payload = decode(value)
        if payload.isdigit():
            ws = unquote(workspace) if workspace else None
            found.append(Override(account, limit, int(payload), ws, until))
    return found


def suspensions_from(account: str, records: dict[str, str]) -> list[SuspensionRecord]:
    found = []
    for field, value in sorted(records.items()):
        until, reason = decode(value)
        workspace = None if field == ACCOUNT_FIELD else unquote(field)
        found.append(SuspensionRecord(account, workspace, until, reason))
    return found
