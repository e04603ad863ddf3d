"""The lifecycle part of decide.lua in Python: suspensions, overrides and denial counting.

algorithms.decide calls these at the same points the script runs the same steps; the parity
test holds both to the same results. Admin records are "UNTIL|PAYLOAD" strings (UNTIL in ms,
empty for no end) in two hashes per account; see the header of decide.lua.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .algorithms import Keyspace

AUTO = "auto"  # payload of a suspension the script started
ACCOUNT_FIELD = "*"  # the suspension field that holds every workspace of the account
_UNTIL = re.compile(r"([0-9]*)\|")
_AMOUNT = re.compile(r"\|([0-9]+)\Z")


def until_of(value: str | None, now: int) -> int | None:
    """When an admin record ends: 0 for never, None when absent, malformed or over."""
    if value is None:
        return None
    found = _UNTIL.match(value)
    if found is None:
        return None
    if found[1] == "":
        return 0
    until = int(found[1])
    return until if until > now else None


@dataclass
class Lifecycle:
    """The script's lifecycle arguments for one decision, and what it found."""

    overrides_key: str
    suspensions_key: str
    denials_key: str
    workspace: str
    threshold: int
    within: int
    hold: int
    names: Sequence[str]
    ppms: Sequence[int]
    held: int = 0
    held_until: int = 0
    overrides: list[str | None] | None = None


def parse(keys: Sequence[str], argv: Sequence[str], lk: int, nops: int) -> Lifecycle | None:
    """The lifecycle section after the ops, or None when the caller sent none."""
    tail = 4 + nops * 9
    if len(argv) <= tail:
        return None
    extra = argv[tail + 4 :]
    return Lifecycle(
        overrides_key=keys[lk],
        suspensions_key=keys[lk + 1],
        denials_key=keys[lk + 2],
        workspace=argv[tail],
        threshold=int(argv[tail + 1]),
        within=int(argv[tail + 2]),
        hold=int(argv[tail + 3]),
        names=extra[0::2],
        ppms=[int(x) for x in extra[1::2]],
    )


def check_suspended(space: Keyspace, life: Lifecycle, now: int) -> None:
    """Which record holds the request (1 workspace, 2 account) and until when; reads overrides.
    Both held: the one that ends later (0: never), so that the retry time is honest."""
    records = space.get(life.suspensions_key, now) or {}
    for which, field in ((1, life.workspace), (2, ACCOUNT_FIELD)):
        until = until_of(records.get(field), now)
        if until is not None and (life.held == 0 or outlasts(until, life.held_until)):
            life.held, life.held_until = which, until
    if life.names:
        found = space.get(life.overrides_key, now) or {}
        life.overrides = []
        for name in life.names:
            life.overrides += [found.get(f"{name}:w:{life.workspace}"), found.get(name)]


def outlasts(until: int, other: int) -> bool:
    """Ends `until` later than `other`? 0 is no end."""
    return other != 0 and (until == 0 or until > other)


def override(life: Lifecycle, i: int, now: int) -> tuple[int, int] | None:
    """The (amount, notify count) an admin set for op i (0-based), or None."""
    if life.overrides is None:
        return None
    for value in life.overrides[2 * i : 2 * i + 2]:
        if value is not None and until_of(value, now) is not None:
            found = _AMOUNT.search(value)
            if found is not None:
                amount = int(found[1])
                return amount, notify_count(amount, life.ppms[i])
    return None


def notify_count(amount: int, ppm: int) -> int:
    """ceil(amount × ppm / 10^6), and 0 when that reaches the amount itself."""
    if ppm <= 0:
        return 0
    count = -(-amount * ppm // 1_000_000)
    return count if count < amount else 0


def count_denial(space: Keyspace, life: Lifecycle, now: int) -> int:
    """Count one denied request of the workspace; 1 when it is the one that suspends it."""
    state = space.get(life.denials_key, now) or {}
    start, n = state.get("s"), int(state.get("n", 0))
    if start is None or now >= start + life.within:
        start, n = now, 0
    n += 1
    if n < life.threshold:
        keep = start + life.within - now
        mark = state.get("c")
        if mark is not None:
            keep = max(keep, mark - now)
        space.put(life.denials_key, {**state, "s": start, "n": n}, now, keep + 60000)
        return 0
    ttl = space.pttl(life.suspensions_key, now)
    records = space.get(life.suspensions_key, now)
    if records is None:
        records = {}
        space.values[life.suspensions_key] = records
    records[life.workspace] = f"{now + life.hold}|{AUTO}"
    if ttl == -2 or 0 <= ttl < life.hold + 60000:
        space.expire(life.suspensions_key, now, life.hold + 60000)
    if "c" in state:  # the count starts again; a refused chats mark stays
        state.pop("s", None)
        state.pop("n", None)
    else:
        space.delete(life.denials_key)
    return 1


def refused_chats(
    space: Keyspace, life: Lifecycle, now: int, allowed: bool, refused_until: int
) -> bool:
    """decide.lua's "Refused new chats", for a request that would start a session: mark the
    workspace when a sessions limit refused it (`refused_until`: when that refusal may end),
    or, allowed, take the mark off; True when a mark stood (cached denials are void)."""
    state = space.get(life.denials_key, now)
    mark = None if state is None else state.get("c")
    if allowed:
        if mark is None or mark <= now:
            return False
        del state["c"]
        if not state:  # as Redis drops a hash with no field left
            space.delete(life.denials_key)
        return True
    if refused_until > now and (mark is None or mark < refused_until):
        if state is None:
            state = {}
        state["c"] = refused_until
        keep = max(refused_until - now + 60000, space.pttl(life.denials_key, now))
        space.put(life.denials_key, state, now, keep)
    return False
