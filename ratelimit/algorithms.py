"""The decision algorithm in Python, step for step the same as lua/decide.lua.

The memory backend runs this; the behaviour suite checks that it and the Lua script agree
decision for decision. Arguments are the script's KEYS and ARGV; see the header of decide.lua.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import lifecycle
from .ops import UNCAPPED_AMOUNT

OP_WIDTH = 9
FIXED_WINDOW, SLIDING_WINDOW, TOKEN_BUCKET, DISTINCT = 1, 2, 3, 4


class Keyspace:
    """Keys with millisecond expiry, judged by the decision's own clock."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.expires: dict[str, int] = {}

    def get(self, key: str, now: int) -> Any:
        expires = self.expires.get(key)
        if expires is not None and expires <= now:
            self.delete(key)
        return self.values.get(key)

    def put(self, key: str, value: Any, now: int, ttl_ms: int) -> None:
        self.values[key] = value
        self.expires[key] = now + ttl_ms

    def expire(self, key: str, now: int, ttl_ms: int) -> None:
        if key in self.values:
            self.expires[key] = now + ttl_ms

    def pttl(self, key: str, now: int) -> int:
        """Redis PTTL: -2 for a missing key, -1 for one that never expires."""
        if self.get(key, now) is None:
            return -2
        expires = self.expires.get(key)
        return -1 if expires is None else expires - now

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
        self.expires.pop(key, None)

    def sweep(self, now: int) -> None:
        for key in [k for k, at in self.expires.items() if at <= now]:
            self.delete(key)


@dataclass
class _Op:
    key: str
    kind: int
    limit: int
    cost: int
    notify: int
    args: Sequence[str]
    ok: bool = True
    used: int = 0
    before: int = 0
    reset: int = 0
    retry: int = 0
    notice: int = 0
    first: int = 0
    ttl: int = 0
    in_force: int | None = None  # an override's amount, where one is in force
    ws: str = ""
    seen: str | None = None
    stale: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def decide(space: Keyspace, keys: Sequence[str], argv: Sequence[str], clock_ms: int) -> list[int]:
    """Evaluate one request's limits; consume all or none. Mirrors decide.lua."""
    now = int(argv[0]) if argv[0] != "" else clock_ms
    consume = argv[1] == "1"
    timeout = int(argv[2])
    nops = int(argv[3])
    first_key = 0
    new_session = 0
    if timeout > 0:
        first_key = 1
        idle_until = space.get(keys[0], now)
        if idle_until is None or idle_until <= now:
            new_session = 1
    life = lifecycle.parse(keys, argv, first_key + nops, nops)
    if life is not None:
        lifecycle.check_suspended(space, life, now)
        if life.held > 0 and consume:
            return [-2, 0, now, life.held, life.held_until]

    ops: list[_Op] = []
    allowed = True
    for i in range(nops):
        a = 4 + i * OP_WIDTH
        op = _Op(
            key=keys[first_key + i],
            kind=int(argv[a]),
            limit=int(argv[a + 2]),
            cost=int(argv[a + 3]),
            notify=int(argv[a + 8]),
            args=argv[a + 4 : a + 8],
        )
        gated = argv[a + 1] == "1" and new_session == 0
        if gated:
            op.cost = 0
        overridden = None if life is None else lifecycle.override(life, i, now)
        if overridden is not None:
            op.in_force, op.notify = overridden
            if op.limit != UNCAPPED_AMOUNT:  # uncapped (record_bytes): counts past any amount
                op.limit = op.in_force
            if op.kind == TOKEN_BUCKET:  # a bucket refills: no notice
                op.notify = 0
        if op.kind == FIXED_WINDOW:
            if not _check_fixed(space, op, now):
                return [-1, 0, now]
        elif op.kind == SLIDING_WINDOW:
            _check_sliding(space, op, now)
        elif op.kind == TOKEN_BUCKET:
            _check_bucket(space, op, now)
        else:
            _check_distinct(space, op, now)
        if consume and (gated or (op.kind == DISTINCT and op.extra["is"])):  # as decide.lua
            op.ok, op.retry = True, 0  # adds nothing by its nature: never refused by this limit
        allowed = allowed and op.ok
        ops.append(op)

    out = [1 if allowed else 0, new_session, now]
    for op in ops:
        cost = op.cost
        if allowed and consume and cost > 0:
            _apply(space, op, now)
        elif allowed and consume and op.kind == DISTINCT and op.extra["is"]:
            space.expire(op.key, now, op.ttl)
        if allowed:
            op.used += cost
            if op.notify > 0 and cost > 0 and op.before < op.notify <= op.before + cost:
                op.notice = 1
                if op.kind == SLIDING_WINDOW:
                    state = space.get(op.key, now)
                    # once per window: the estimate decays into the next, and would cross again
                    if op.extra["nw"] in (op.ws, str(int(op.ws) - 1)):
                        op.notice = 0
                    elif consume:
                        state["nw"] = op.ws
        elif not op.ok and consume:
            _mark_denial(space, op, now)
        remaining = op.limit - op.used
        if op.kind == TOKEN_BUCKET:
            level = op.extra["level"] - (op.extra["need"] if allowed else 0)
            remaining = math.floor(level / op.extra["per"])
            op.used = op.extra["burst"] - remaining
            op.reset = now + math.ceil((op.extra["cap"] - level) / op.limit)
        out += [1 if op.ok else 0, op.used, max(0, remaining), op.reset, op.retry]
        out += [op.notice, op.first]
    if allowed and consume and timeout > 0:
        space.put(keys[0], now + timeout, now, timeout + 60000)
    if life is None:
        return out
    tripped = 0
    if not allowed and consume and life.threshold > 0:
        tripped = lifecycle.count_denial(space, life, now)
    if consume and timeout > 0 and new_session == 1:
        refused_until = max(
            (
                now + op.retry
                for i, op in enumerate(ops)
                if not op.ok and argv[4 + i * OP_WIDTH + 1] == "1"  # counts sessions
            ),
            default=0,
        )
        if lifecycle.refused_chats(space, life, now, allowed, refused_until):
            out[1] = 2  # no process caches denials of this store: nothing to publish
    in_force = (op.limit if op.in_force is None else op.in_force for op in ops)
    return [*out, life.held, life.held_until, tripped, *in_force]


def _check_fixed(space: Keyspace, op: _Op, now: int) -> bool:
    bounds = [int(x) for x in op.args]
    j = -1
    for k in range(3):
        if bounds[k] <= now < bounds[k + 1]:
            j = k
    if j < 0:
        return False
    op.ws, op.reset = op.args[j], bounds[j + 1]
    state = space.get(op.key, now) or {}
    op.stale = state.get("w") != op.ws
    n = 0 if op.stale else int(state.get("n", 0))
    op.before, op.seen, op.used = n, state.get("x"), n
    op.ok = n + op.cost <= op.limit
    if not op.ok:
        op.retry = op.reset - now
    op.ttl = op.reset - now + 60000
    return True


def _check_sliding(space: Keyspace, op: _Op, now: int) -> None:
    length = int(op.args[0])
    w = math.floor(now / length)
    state = space.get(op.key, now) or {}
    sw = state.get("w")
    c, p = int(state.get("c", 0)), int(state.get("p", 0))
    if sw == str(w - 1):
        p, c = c, 0
    elif sw != str(w):
        p, c = 0, 0
    elapsed = now - w * length
    est = c + math.floor(p * (length - elapsed) / length)
    op.ws, op.seen = str(w), state.get("x")
    op.extra = {"c": c, "p": p, "nw": state.get("nw"), "length": length}
    op.before = op.used = est
    op.ok = est + op.cost <= op.limit
    if c > 0:
        op.reset = (w + 2) * length
    elif p > 0:
        op.reset = (w + 1) * length
    else:
        op.reset = now
    if not op.ok:
        if c + op.cost <= op.limit:
            room = op.limit - c - op.cost
            e = math.floor(length - (room + 1) * length / p) + 1
            op.retry = max(1, e - elapsed)
        else:
            room = op.limit - op.cost
            e = length
            if room >= 0:
                e = max(0, math.floor(length - (room + 1) * length / c) + 1)
            op.retry = (length - elapsed) + e
    op.ttl = 2 * length + 1000


def _check_bucket(space: Keyspace, op: _Op, now: int) -> None:
    burst, per = int(op.args[0]), int(op.args[1])
    cap = burst * per
    state = space.get(op.key, now)
    level = cap
    if state is not None and "t" in state:
        level = min(cap, int(state["t"]) + max(0, now - int(state["ts"])) * op.limit)
    need = op.cost * per
    op.seen = None if state is None or level >= cap else state.get("x")
    op.extra = {"level": level, "need": need, "cap": cap, "per": per, "burst": burst}
    op.ok = level >= need
    op.used = burst - math.floor(level / per)
    if not op.ok:
        op.retry = math.ceil((min(need, cap) - level) / op.limit)


def _check_distinct(space: Keyspace, op: _Op, now: int) -> None:
    member = op.args[0]
    op.ttl = int(op.args[1])
    members: set[str] = space.get(op.key, now) or set()
    is_member = member in members
    if is_member or op.cost == 0:
        op.cost = 0
    op.extra = {"is": is_member, "member": member}
    op.before = op.used = len(members)
    op.ok = len(members) + op.cost <= op.limit
    op.reset = 0


def _apply(space: Keyspace, op: _Op, now: int) -> None:
    if op.kind == FIXED_WINDOW:
        state = space.get(op.key, now)
        if op.stale or state is None:
            state = {"w": op.ws, "n": op.cost}
        else:
            state["n"] = int(state.get("n", 0)) + op.cost
        space.put(op.key, state, now, op.ttl)
    elif op.kind == SLIDING_WINDOW:
        state = space.get(op.key, now) or {}
        state.update(w=op.ws, c=op.extra["c"] + op.cost, p=op.extra["p"])
        space.put(op.key, state, now, op.ttl)
        op.reset = (int(op.ws) + 2) * op.extra["length"]  # this request's count leaves then
    elif op.kind == TOKEN_BUCKET:
        after = op.extra["level"] - op.extra["need"]
        ttl = math.ceil((op.extra["cap"] - after) / op.limit) + 60000
        space.put(op.key, {"t": after, "ts": now, "x": "0"}, now, ttl)
    else:
        members = space.get(op.key, now) or set()
        members.add(op.extra["member"])
        space.put(op.key, members, now, op.ttl)


def _mark_denial(space: Keyspace, op: _Op, now: int) -> None:
    if op.kind in (FIXED_WINDOW, SLIDING_WINDOW):
        if op.seen != op.ws:
            op.first = 1
            state = space.get(op.key, now)
            if state is None or (op.kind == FIXED_WINDOW and op.stale):
                state = (
                    {"w": op.ws, "n": 0, "x": op.ws} if op.kind == FIXED_WINDOW else {"x": op.ws}
                )
            else:
                state["x"] = op.ws
            space.put(op.key, state, now, op.ttl)
    elif op.kind == TOKEN_BUCKET and op.seen != "1":
        op.first = 1
        state = space.get(op.key, now) or {}  # a missing bucket reads as full
        state["x"] = "1"
        ttl = math.ceil((op.extra["cap"] - op.extra["level"]) / op.limit) + 60000
        space.put(op.key, state, now, ttl)
