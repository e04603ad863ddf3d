"""Denials known locally, so that a refused tenant's retries cost no Redis command.

Two kinds of block, both learned from the script's own answers and both exact:

- a suspended workspace (or account): every request it makes is refused until the end of the
  suspension, whatever its route or plan, and those refusals are not counted anywhere;
- a request shape (plan, route, account, workspace, chat, user, ticket, cost) refused because
  every limit that denied it is spent until a known time: a fixed window until its reset, a
  token bucket until it refills. A chat id refused for a session quota is new and cannot start
  while the quota is spent, so its retries stay refused, unless it starts another way (a route
  without that quota, another plan): the script then publishes the account, as an admin action
  does (decide.lua, "Refused new chats"). Only for plans without a suspension rule: there each
  denial must reach Redis to be counted.

A denial is remembered when it is retried: its first refusal only notes the shape's hash (an
int, which the garbage collector never walks), and the second is learned. A tenant that sends a
new chat id every time so leaves no cached objects to churn through the collector's oldest
generation, whose full collections (tens of milliseconds) would otherwise stall every request.

A replayed denial repeats the statuses Redis gave for it, with retry times moved on; counters of
limits that did not deny may have moved since. Entries are dropped at their end, on any message
on `fairuse:invalidate` for the account (admin actions publish there: see admin.py), and all at
once whenever the subscription is not known to be listening (messages may have been missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .decision import Decision, LimitStatus, Suspension
from .plans import Scope

INVALIDATE_CHANNEL = "fairuse:invalidate"
# Bounds: every cached denial is objects the garbage collector walks, so a tenant that sends
# a new chat id each time must not fill the process with them (the retried ones are what pays).
MAX_SHAPES = 10_000  # per process: past this, start again from empty
MAX_SHAPES_PER_ACCOUNT = 200  # past this, the account's oldest half goes
MAX_REFUSED_ONCE = 10_000  # hashes of shapes refused once, not yet retried; then start again
FIXED_WINDOW, TOKEN_BUCKET = "1", "3"


@dataclass(slots=True)
class _Replay:
    until_ms: int
    decision: Decision
    learned_ms: int
    binding: int  # index of the binding status


@dataclass(slots=True)
class _Account:
    # By workspace id; the whole account's under None, which no workspace id can equal.
    suspended: dict[str | None, tuple[int | None, Suspension]] = field(default_factory=dict)
    shapes: dict[tuple[Any, ...], _Replay] = field(default_factory=dict)


class BlockCache:
    """One per Limiter; used only while its invalidation subscription is listening."""

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.listening = False
        self.epoch = 0  # moves on every invalidation: answers sent before it are not learned
        self._shapes = 0
        self._refused_once: set[int] = set()

    def known(self, account: str, workspace: str, shape: tuple[Any, ...], now_ms: int) -> (
        Decision | tuple[Suspension, int | None] | None
    ):  # fmt: skip
        """A suspension, or the denial to replay, for a request of `account`; None: ask."""
        entry = self.accounts.get(account)
        if entry is None:
            return None
        if entry.suspended:
            held = None  # both known: the one that ends later, as the script answers
            for which in (workspace, None):
                found = entry.suspended.get(which)
                if found is not None:
                    if found[0] is not None and now_ms >= found[0]:
                        del entry.suspended[which]
                    elif held is None or _ends_later(found[0], held[0]):
                        held = found
            if held is not None:
                return held[1], held[0]
        replay = entry.shapes.get(shape)
        if replay is None:
            return None
        if now_ms >= replay.until_ms:
            del entry.shapes[shape]
            self._shapes -= 1
            return None
        return _moved_on(replay, now_ms)

    def learn_suspension(
        self, account: str, workspace: str, suspension: Suspension, epoch: int
    ) -> None:
        if not self.listening or epoch != self.epoch:
            return
        which = None if suspension.scope is Scope.ACCOUNT else workspace
        until = None if suspension.until is None else round(suspension.until * 1000)
        self._entry(account).suspended[which] = (until, suspension)

    def learn_denial(
        self,
        account: str,
        shape: tuple[Any, ...],
        decision: Decision,
        ops: list[tuple[str, list[int]]],
        epoch: int,
    ) -> None:
        """`ops`: each stored op's kind code and its seven result values."""
        if not self.listening or epoch != self.epoch or decision.binding is None:
            return
        retried = hash((account, shape))
        if retried not in self._refused_once:  # its first refusal: learned if it comes back
            if len(self._refused_once) >= MAX_REFUSED_ONCE:
                self._refused_once.clear()
            self._refused_once.add(retried)
            return
        self._refused_once.discard(retried)
        now_ms = round(decision.now * 1000)
        until: int | None = None
        for code, (ok, _used, remaining, reset, retry, _notice, _first) in ops:
            if ok:
                continue
            if remaining != 0 or code not in (FIXED_WINDOW, TOKEN_BUCKET):
                return  # not spent, or its end is not known exactly: ask Redis next time
            end = reset if code == FIXED_WINDOW else now_ms + retry
            until = end if until is None else min(until, end)
        if until is None or until <= now_ms:
            return
        if self._shapes >= MAX_SHAPES:
            self.clear()
        shapes = self._entry(account).shapes
        if len(shapes) >= MAX_SHAPES_PER_ACCOUNT:
            for old in list(shapes)[: MAX_SHAPES_PER_ACCOUNT // 2]:  # dicts keep insertion order
                del shapes[old]
            self._shapes -= MAX_SHAPES_PER_ACCOUNT // 2
        binding = next(i for i, s in enumerate(decision.statuses) if s is decision.binding)
        if shape not in shapes:
            self._shapes += 1
        shapes[shape] = _Replay(until, decision, now_ms, binding)

    def invalidate(self, message: str) -> None:
        """A `fairuse:invalidate` message: an escaped account id, or "*" for every account."""
        self.epoch += 1
        if message == "*":
            self.clear()
            return
        entry = self.accounts.pop(unquote(message), None)
        if entry is not None:
            self._shapes -= len(entry.shapes)

    def set_listening(self, listening: bool) -> None:
        self.listening = listening
        self.epoch += 1
        self.clear()

    def clear(self) -> None:
        self.accounts.clear()
        self._shapes = 0
        self._refused_once.clear()

    @property
    def size(self) -> int:
        """Denials remembered, over every account (suspensions aside)."""
        return self._shapes

    def _entry(self, account: str) -> _Account:
        entry = self.accounts.get(account)
        if entry is None:
            entry = self.accounts[account] = _Account()
        return entry


def _moved_on(replay: _Replay, now_ms: int) -> Decision:
    """The cached denial as Redis would give it now: retry times shortened by the time passed."""
    passed = (now_ms - replay.learned_ms) / 1000
    statuses = tuple(
        s
        if s.allowed
        else LimitStatus(
            s.limit, s.used, s.remaining, s.reset_at, max(0.0, s.retry_after - passed), False
        )
        for s in replay.decision.statuses
    )
    d = replay.decision
    return Decision(
        allowed=False,
        plan=d.plan,
        statuses=statuses,
        binding=statuses[replay.binding],
        new_session=d.new_session,
        upgrade=d.upgrade,
        contact=d.contact,
        now=now_ms / 1000,
    )


def _ends_later(until: int | None, other: int | None) -> bool:
    """None: no end."""
    return other is not None and (until is None or until > other)
