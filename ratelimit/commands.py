"""decide.lua's whole EVALSHA in RESP, from templates: a request formats only its own values.

Of a decision's keys and script arguments (lua/decide.lua's header) only a few belong to the
request: the escaped account, workspace, chat, user and ticket ids, the injected clock's time and
the costs. Everything else (op kinds, gates, amounts, fixed tails, notify counts, the suspension
rule, limit names) is fixed per CompiledOps, the ids the request carries and whether it consumes,
and a fixed window's bounds change only when it rolls over. So a template, compiled once per
(CompiledOps, ids present, consume), holds the command's static text in chunks, and a function that
joins them with the request's values and their RESP length prefixes in one f-string, the fastest
way CPython assembles a string. The function's source is generated from identifiers and integers
only (the policy's text stays in the chunks, never in source); when a window rolls over, or the
window bounds are cleared, the same code is bound to freshly rendered chunks.

Escaped ids are ASCII (keys.py), so their lengths in characters are lengths in bytes. A template
whose static text is not ASCII (a limit name, the key prefix) is not built: the limiter sends that
route's KEYS and ARGV lists instead. tests/ratelimit/test_commands.py proves every command
byte-identical to `resp.pack` of the limiter's lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any, Protocol, cast

from .keys import escape
from .ops import DISTINCT_TTL, CompiledOps
from .plans import Counts, Scope
from .windows import Window, WindowBounds

if TYPE_CHECKING:
    from .limiter import Identity

# The request's own values: the generated function's parameters, in this order.
ACCOUNT, WORKSPACE, CHAT, USER, TICKET, NOW, COST, SIZE = (
    "account", "workspace", "chat", "user", "ticket", "now", "cost", "size"
)  # fmt: skip
PARAMETERS = (ACCOUNT, WORKSPACE, CHAT, USER, TICKET, NOW, COST, SIZE)
NUMBERS = (COST, SIZE)  # passed as int, formatted only by templates that send them
ALWAYS = (-(2**63), 2**63)  # the time range of a template without fixed windows

Fill = Callable[[str, str, str, str, str, str, int, int], bytes]
TemplateKey = tuple[int, int, bool]  # id of the CompiledOps, ids present (Limiter._decide), consume


class TakesCommands(Protocol):
    """A storage that can also run decide.lua from one whole EVALSHA command in RESP."""

    @property
    def command_sha(self) -> str | None:
        """decide.lua's SHA1 where `decide_command` may be used; None where it may not."""
        ...

    async def decide_command(self, command: bytes) -> list[int]: ...


@dataclass(frozen=True, slots=True)
class _Value:
    """A request's own value inside a bulk string: one of PARAMETERS."""

    name: str


@dataclass(frozen=True, slots=True)
class _Bound:
    """One of a fixed window's four boundaries: a whole bulk string, fixed until it rolls over."""

    window: Window
    index: int


_Part = str | _Value
_Bulk = tuple[_Part, ...] | _Bound


@dataclass(frozen=True, slots=True)
class _Ready:
    """A template's function over chunks rendered for the windows around one moment."""

    fill: Fill
    start: int  # it serves now_ms in [start, end) ...
    end: int
    generation: int  # ... while the window bounds are those of this generation


class DecideCommands:
    """The commands of one limiter's decisions, for a storage that takes them whole."""

    def __init__(
        self,
        sha: str,
        prefix: str,
        timeout_ms: str,
        windows: WindowBounds,
        send: Callable[[bytes], Awaitable[list[int]]],
        *,
        server_clock: bool = False,
    ) -> None:
        self.send = send
        self._sha = sha
        self._prefix = prefix
        self._timeout_ms = timeout_ms
        self._server_clock = server_clock  # no injected clock: ARGV[1] is always ""
        self._windows = windows
        self._templates: dict[TemplateKey, _Template | None] = {}  # None: not ASCII
        self._ready: dict[TemplateKey, _Ready] = {}

    @classmethod
    def for_storage(
        cls,
        storage: object,
        prefix: str,
        timeout_ms: str,
        windows: WindowBounds,
        *,
        server_clock: bool = False,
    ) -> DecideCommands | None:
        """Commands for `storage` where it takes them; None where it takes only lists.
        `server_clock`: the limiter has no clock of its own, so its `now_arg` is always ""."""
        sha = getattr(storage, "command_sha", None)  # no isinstance: compiled, it cannot check
        if not isinstance(sha, str):
            return None
        send = cast(TakesCommands, storage).decide_command
        return cls(sha, prefix, timeout_ms, windows, send, server_clock=server_clock)

    def build(
        self,
        compiled: CompiledOps,
        present: int,
        consume: bool,
        identity: Identity,
        session: str | None,
        cost: int,
        uploaded_bytes: int,
        now_ms: int,
        now_arg: str,
    ) -> bytes | None:
        """The command Limiter._arguments's lists make; None if its template is not ASCII."""
        key = (id(compiled), present, consume)
        ready = self._ready.get(key)
        if (
            ready is None
            or not ready.start <= now_ms < ready.end
            or ready.generation != self._windows.generation
        ):
            ready = self._render(key, compiled, present, consume, now_ms)
            if ready is None:
                return None
        user, ticket = identity.user, identity.ticket
        return ready.fill(
            escape(identity.account),
            escape(identity.workspace),
            "" if session is None else escape(session),
            "" if user is None else escape(user),
            "" if ticket is None else escape(ticket),
            now_arg,
            cost,
            uploaded_bytes,
        )

    def _render(
        self, key: TemplateKey, compiled: CompiledOps, present: int, consume: bool, now_ms: int
    ) -> _Ready | None:
        if key in self._templates:
            template = self._templates[key]
        else:
            keys, argv = _bulks(
                compiled, present, consume, self._prefix, self._timeout_ms, self._server_clock
            )
            template = self._templates[key] = _Template.compile(compiled, self._sha, keys, argv)
        if template is None:
            return None
        ready = self._ready[key] = template.render(self._windows, now_ms)
        return ready


def _bulks(
    compiled: CompiledOps,
    present: int,
    consume: bool,
    prefix: str,
    timeout_ms: str,
    server_clock: bool = False,
) -> tuple[list[_Bulk], list[_Bulk]]:
    """KEYS and ARGV as Limiter._arguments makes them, with the request's values left open
    (but for the time, which is always "" where the server's clock decides)."""
    ops = compiled.by_present[present]
    account, workspace, chat = _Value(ACCOUNT), _Value(WORKSPACE), _Value(CHAT)
    owners = {Scope.USER: _Value(USER), Scope.TICKET: _Value(TICKET)}

    def key(*tail: _Part) -> _Bulk:  # keys.account_base, then the key's own tail
        return (f"{prefix}:{{", account, "}", *tail)

    keys: list[_Bulk] = []
    now: _Bulk = ("",) if server_clock else (_Value(NOW),)
    argv: list[_Bulk] = [now, ("1" if consume else "0",), ("0",), (str(len(ops)),)]
    if present & 4 and compiled.uses_session:
        keys.append(key(":s:", workspace, ":", chat))  # keys.session_key
        argv[2] = (timeout_ms,)
    costs = ((_Value(SIZE),), (_Value(COST),), ("1",)) if consume else (("0",),) * 3
    for op in ops:
        scope = op.scope
        if scope is Scope.ACCOUNT:
            keys.append(key(op.key_tail))
        elif scope is Scope.WORKSPACE:
            keys.append(key(op.key_tail, workspace))
        elif scope is Scope.SESSION:
            keys.append(key(op.key_tail, workspace, ":", chat))
        else:
            keys.append(key(op.key_tail, owners[scope]))
        argv += [(value,) for value in op.head]
        argv.append(costs[op.cost_from])
        if op.tail is not None:
            argv += [(value,) for value in op.tail]
        elif op.window is not None:
            argv += [_Bound(op.window, i) for i in range(4)]
            argv.append((op.notify,))
        else:  # a distinct cap: the member is the request's own
            member = _Value(USER) if op.counts is Counts.USERS else workspace
            argv += [(member,), (DISTINCT_TTL,), ("",), ("",), (op.notify,)]
    # lifecycle_args.extend: keys.overrides_key, suspensions_key, denials_key; then its values
    keys += [key(":o"), key(":x"), key(":d:", workspace)]
    argv.append((workspace,))
    argv += [(value,) for value in compiled.suspension]
    for name, ppm in (op.life for op in ops):
        argv += [(name,), (ppm,)]
    return keys, argv


class _Template:
    """One command's static chunks, around the slots of a generated function's f-string."""

    def __init__(
        self,
        compiled: CompiledOps,
        code: CodeType,
        chunks: list[str | list[str | _Bound]],
        windows: tuple[Window, ...],
    ) -> None:
        self.compiled = compiled  # kept alive, so that no other CompiledOps takes its id
        self.code = code
        self.chunks = chunks  # a str, or parts of which some are window bounds
        self.windows = windows

    @classmethod
    def compile(
        cls, compiled: CompiledOps, sha: str, keys: list[_Bulk], argv: list[_Bulk]
    ) -> _Template | None:
        """The template of EVALSHA sha len(keys) keys... argv...; None if its text is not ASCII."""
        static = [part for bulk in (*keys, *argv) if isinstance(bulk, tuple) for part in bulk]
        if not all(part.isascii() for part in static if isinstance(part, str)):
            return None
        chunks: list[list[str | _Bound]] = [[]]
        slots: list[str] = []  # the expression between chunks[i] and chunks[i + 1]
        used: dict[str, None] = {}

        def slot(expression: str) -> None:
            slots.append(expression)
            chunks.append([])

        chunks[-1].append(f"*{3 + len(keys) + len(argv)}\r\n$7\r\nEVALSHA\r\n")
        chunks[-1] += [_bulk(sha), _bulk(str(len(keys)))]
        for bulk in (*keys, *argv):
            if isinstance(bulk, _Bound):
                chunks[-1].append(bulk)
                continue
            values = [part.name for part in bulk if isinstance(part, _Value)]
            if not values:
                chunks[-1].append(_bulk("".join(cast(tuple[str, ...], bulk))))
                continue
            used.update(dict.fromkeys(values))
            fixed = sum(len(part) for part in bulk if isinstance(part, str))
            chunks[-1].append("$")
            slot(" + ".join([f"n_{name}" for name in values] + ([str(fixed)] if fixed else [])))
            chunks[-1].append("\r\n")
            for part in bulk:
                if isinstance(part, str):
                    chunks[-1].append(part)
                else:
                    slot(part.name)
            chunks[-1].append("\r\n")
        code = _function(slots, used)
        joined: list[str | list[str | _Bound]] = [
            "".join(cast(list[str], c)) if all(isinstance(p, str) for p in c) else c for c in chunks
        ]
        windows = tuple(dict.fromkeys(b.window for b in argv if isinstance(b, _Bound)))
        return cls(compiled, code, joined, windows)

    def render(self, windows: WindowBounds, now_ms: int) -> _Ready:
        """The function over chunks holding the bounds of the windows around `now_ms`."""
        start, end = ALWAYS
        bounds = {}
        for window in self.windows:
            window_start, window_end, bounds[window] = windows.around(window, now_ms)
            start, end = max(start, window_start), min(end, window_end)
        namespace: dict[str, Any] = {"len": len, "str": str}
        for i, chunk in enumerate(self.chunks):
            if isinstance(chunk, list):
                chunk = "".join(
                    p if isinstance(p, str) else _bulk(bounds[p.window][p.index]) for p in chunk
                )
            namespace[f"_{i}"] = chunk
        fill = cast(Fill, FunctionType(self.code, namespace))
        return _Ready(fill, start, end, windows.generation)


def _function(slots: list[str], used: dict[str, None]) -> CodeType:
    """Code of fill(account, ..., size): chunk _0, slot 0, chunk _1, ... joined, as bytes.

    Its source holds only parameter names, `n_` lengths and integers: every text of the policy
    (names, amounts) is in the chunks, which each rendering binds as the function's globals.
    """
    lines = [f"def fill({', '.join(PARAMETERS)}):"]
    lines += [f"    {name} = str({name})" for name in NUMBERS if name in used]
    lines += [f"    n_{name} = len({name})" for name in used]
    joined = "".join(f"{{_{i}}}{{{expression}}}" for i, expression in enumerate(slots))
    lines.append(f'    return f"{joined}{{_{len(slots)}}}".encode("ascii")')
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<decide command>", "exec"), namespace)
    return cast(CodeType, namespace["fill"].__code__)


def _bulk(text: str) -> str:
    return f"${len(text)}\r\n{text}\r\n"
