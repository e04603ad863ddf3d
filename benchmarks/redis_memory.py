"""Redis memory per active workspace on the shipped plans, measured on a redis-server of its own.

    .venv/bin/python -m benchmarks.redis_memory [--workspaces 2000] [--chats 1,10]

For each plan, N workspaces (each its own account) open C chats each with three messages, and an
LTD workspace also opens a ticket. Printed per workspace: keys, the sum of MEMORY USAGE over
its keys, and the growth of INFO used_memory (which adds Redis's own dictionaries). Every key
expires (tests/ratelimit/test_key_expiry.py), so this is the cost of a workspace active within
the longest window (a month), not a figure that grows with time.
"""

from __future__ import annotations

import argparse
import asyncio

import redis

from ratelimit import Identity, Limiter
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from .processes import ROOT, Cores, Running, start_redis

PLANS = ("sandbox", "pro", "ltd")


async def activity(url: str, plan: str, workspaces: int, chats: int) -> None:
    limiter = Limiter(load_policy(ROOT / "plans.toml"), RedisStorage(f"{url}?timeout=5"))
    try:
        for n in range(workspaces):
            who = Identity(f"account-{n:06d}", f"workspace-{n:06d}", plan)
            for chat in range(chats):
                for _ in range(3):
                    await limiter.check(who, "chat_message", session=f"chat-{chat:03d}")
            if plan == "ltd":
                await limiter.check(who, "ticket")
    finally:
        await limiter.close()


def measure(port: int, plan: str, workspaces: int, chats: int) -> tuple[float, float, float]:
    client = redis.Redis(port=port)
    try:
        client.flushall()
        before = int(client.info("memory")["used_memory"])
        asyncio.run(activity(f"redis://127.0.0.1:{port}/0", plan, workspaces, chats))
        after = int(client.info("memory")["used_memory"])
        keys = list(client.scan_iter(count=1000))
        usage = sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)
    finally:
        client.close()
    return len(keys) / workspaces, usage / workspaces, (after - before) / workspaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspaces", type=int, default=2000)
    parser.add_argument("--chats", default="1,10", help="live chats per workspace, comma-separated")
    args = parser.parse_args()
    running = Running()
    try:
        port = start_redis(running, Cores(None, None))
        print(f"{args.workspaces} workspaces per row, shipped plans.toml, redis-server of its own")
        print(f"{'plan':<8} {'chats':>5} {'keys':>6} {'MEMORY USAGE B':>15} {'used_memory B':>14}")
        for plan in PLANS:
            for chats in (int(c) for c in args.chats.split(",")):
                keys, usage, used = measure(port, plan, args.workspaces, chats)
                print(f"{plan:<8} {chats:>5} {keys:>6.1f} {usage:>15.0f} {used:>14.0f}")
    finally:
        running.stop()


if __name__ == "__main__":
    main()
