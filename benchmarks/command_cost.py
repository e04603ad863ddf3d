"""CPU per decision to build its Redis command: KEYS and ARGV lists packed, or a template filled.

    .venv/bin/python -m benchmarks.command_cost [--calls 20000] [--repeat 5]

The two ways a single Redis can be sent a decision (ratelimit/commands.py): the limiter's lists
(Limiter._arguments) packed by the pipelined connection (PipelinedConnection.evalsha_command), as
every decision was before templates, and the command filled in from its template
(DecideCommands.build). Both get the same requests of plans.toml, ids cycling like
benchmarks/inprocess.py's; nothing is sent, so no server is needed. Prints microseconds per call,
best of --repeat; nothing is asserted but that both ways make the same bytes.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ratelimit import Identity, Limiter
from ratelimit.ops import CompiledOps
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

PLANS = Path(__file__).resolve().parent.parent / "plans.toml"
NOW_MS = 1_795_000_000_000
CASES = [  # label, plan, route (None: a peek), whether it carries a chat id
    ("chat message in a session", "pro", "chat_message", True),
    ("ticket", "ltd", "ticket", False),
    ("peek of a plan", "pro", None, True),
]


@dataclass(frozen=True, slots=True)
class Request:
    compiled: CompiledOps
    present: int
    consume: bool
    identity: Identity
    session: str | None


def requests(limiter: Limiter, plan: str, route: str | None, chat: bool, n: int) -> list[Request]:
    compiled = limiter._routes[(plan, route)] if route else limiter._peeks[plan]
    return [
        Request(
            compiled,
            4 if chat else 0,
            route is not None,
            Identity(f"sa{i % 100}", f"sa{i % 100}", plan),
            f"c{i % 10000}" if chat else None,
        )
        for i in range(n)
    ]


def best(build: Callable[[Request], object], batch: list[Request], repeat: int) -> float:
    """Microseconds per request, the fastest of `repeat` passes over the batch."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for request in batch:
            build(request)
        times.append(time.perf_counter() - start)
    return min(times) / len(batch) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    storage = RedisStorage("redis://127.0.0.1:1/0")  # never connected
    limiter = Limiter(load_policy(PLANS), storage)
    commands, connection = limiter._commands, storage._fast
    assert commands is not None
    assert connection is not None

    def lists(r: Request) -> bytes:
        ops = r.compiled.by_present[r.present]
        keys, argv = limiter._arguments(
            r.compiled, ops, r.identity, r.session, r.consume, 1, 0, NOW_MS, ""
        )
        return connection.evalsha_command(keys, argv)

    def template(r: Request) -> bytes | None:
        return commands.build(
            r.compiled, r.present, r.consume, r.identity, r.session, 1, 0, NOW_MS, ""
        )

    print(f"{'request':28} {'lists, packed':>13} {'template':>9} {'ratio':>6}   us per call")
    for label, plan, route, chat in CASES:
        batch = requests(limiter, plan, route, chat, args.calls)
        assert all(lists(r) == template(r) for r in batch[:100])
        old, new = best(lists, batch, args.repeat), best(template, batch, args.repeat)
        print(f"{label:28} {old:13.2f} {new:9.2f} {new / old:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
