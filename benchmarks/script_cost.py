"""Redis's own cost per decision: how long decide.lua runs and the CPU its server spends.

    .venv/bin/python -m benchmarks.script_cost [--decisions 20000] [--repeat 3]

Every app process shares the Redis it decides in, so the script's time per decision caps the
decisions a whole deployment makes per second, and while Redis runs a pipelined batch of them
the requests of that batch wait. This runs the Limiter's real decisions for plans.toml
(`concurrent` at a time, auto-pipelined like the middleware's) against a private redis-server
and prints, from Redis's own counters: microseconds per EVALSHA (`cmdstat_evalsha`, the script
and the commands it runs), commands it runs per decision, and the server's main-thread CPU per
decision (that time plus reading and answering the connection). Best of --repeat; nothing is
asserted but that each path is answered as expected.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

import redis

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from tests.redis_servers import RedisProcess

PLANS = Path(__file__).resolve().parent.parent / "plans.toml"
CONCURRENT = 16
Request = tuple[Identity, str]  # who, and the chat id


def live_session(n: int) -> Request:  # 2,000 chats of 100 Unlimited accounts, cycled
    account = f"sa{n % 100}"
    return Identity(account, account, "unlimited"), f"c{n % 2000}"


def new_chat(n: int) -> Request:  # a new chat each time: the session starts, two quotas count
    account = f"na{n % 2000}"
    return Identity(account, account, "unlimited"), f"n{n}"


def spent_new_chat(n: int) -> Request:  # a spent Sandbox workspace, a never-seen chat id
    return Identity("spent", "full-workspace", "sandbox"), f"fresh{n}"


PATHS: list[tuple[str, Callable[[int], Request], bool]] = [  # label, requests, allowed
    ("allow: message in a live session", live_session, True),
    ("allow: new chat", new_chat, True),
    ("deny: spent quota, new chat id", spent_new_chat, False),
]


async def _decide(limiter: Limiter, make: Callable[[int], Request], first: int, count: int,
                  allowed: bool) -> None:  # fmt: skip
    for at in range(first, first + count, CONCURRENT):
        requests = [make(n) for n in range(at, min(at + CONCURRENT, first + count))]
        decisions = await asyncio.gather(
            *(limiter.check(who, "chat_message", session=chat) for who, chat in requests)
        )
        if any(d.allowed is not allowed for d in decisions):
            raise RuntimeError(f"expected allowed={allowed}, got {[d.allowed for d in decisions]}")


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


async def measure(url: str, client: redis.Redis, decisions: int) -> list[tuple[float, ...]]:
    limiter = Limiter(load_policy(PLANS), url)
    try:
        for n in range(101):  # spend the Sandbox workspace's 100 monthly sessions
            await limiter.check(Identity("spent", "full-workspace", "sandbox"), "chat_message",
                                session=f"fill-{n}")  # fmt: skip
        rows: list[tuple[float, ...]] = []
        for offset, (_label, make, allowed) in enumerate(PATHS):
            first = (offset + 1) * 10_000_000
            await _decide(limiter, make, first, 2000, allowed)  # warm: sessions live, script cached
            client.config_resetstat()
            cpu = _cpu(client)
            await _decide(limiter, make, first + 2000, decisions, allowed)
            cpu = _cpu(client) - cpu
            stats = client.info("commandstats")
            script = stats["cmdstat_evalsha"]
            inner = sum(
                int(v["calls"]) for k, v in stats.items() if k != "cmdstat_evalsha"
                and not k.startswith("cmdstat_config")
            )  # fmt: skip
            calls = int(script["calls"])
            rows.append((float(script["usec_per_call"]), inner / calls, cpu / calls * 1e6))
        return rows
    finally:
        await limiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = RedisProcess().start()
    try:
        client = redis.Redis(port=server.port)
        runs = []
        for _ in range(args.repeat):
            client.flushall()
            runs.append(asyncio.run(measure(server.url, client, args.decisions)))
        print(f"{'path':34} {'script us':>9} {'commands':>8} {'Redis CPU us':>12}")
        for i, (label, _make, _allowed) in enumerate(PATHS):
            script, inner, cpu = min(run[i] for run in runs)
            print(f"{label:34} {script:9.1f} {inner:8.1f} {cpu:12.1f}")
        print(f"per decision, best of {args.repeat} x {args.decisions}, {CONCURRENT} at a time")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
