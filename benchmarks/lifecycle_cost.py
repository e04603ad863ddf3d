"""What the lifecycle section costs each decision: Redis time per EVALSHA, with and without it.

    .venv/bin/python benchmarks/lifecycle_cost.py [--requests 20000] [--rounds 4]

Starts its own redis-server on a free loopback port and sends the same allowed decisions (three
limits: an account window, a workspace window, a per-chat token bucket; amounts too large to
refuse) four ways: without the lifecycle section (suspension check, overrides, denial count),
with it and no admin records, with an override in force for every limit, and with the account's
suspension hash holding 100 other workspaces. Prints Redis's own usec_per_call for EVALSHA
(INFO commandstats) and the client's mean round trip. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ratelimit import Identity, Limiter  # noqa: E402
from ratelimit.admin import Admin  # noqa: E402
from ratelimit.plans_file import parse_policy  # noqa: E402
from ratelimit.storage.redis import RedisStorage  # noqa: E402

POLICY = """
[policy]
name = "bench"
contact = "ops@example.test"
[policy.suspension]
denials = 50
within = "1 hour"
for = "1 day"
[routes.chat]
match = "POST /chats/{chat_id}"
session = "path:chat_id"
[limits.chats_per_hour]
kind = "fixed_window"
per = "hour"
limit = 1_000_000_000
[limits.sessions_per_month]
kind = "fixed_window"
per = "month"
scope = "workspace"
counts = "sessions"
limit = 1_000_000_000
[limits.messages]
kind = "token_bucket"
per = "second"
limit = 1_000_000
burst = 1_000_000
scope = "session"
[plans.only]
"""
NOPS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recording(RedisStorage):
    """Keeps each decision's KEYS and ARGV, so they can be replayed with the section cut off."""

    calls: list[tuple[list[str], list[str]]]

    @property
    def command_sha(self) -> str | None:
        return None  # decisions as lists, not whole commands, so that they can be cut

    async def decide(self, keys: Sequence[str], argv: Sequence[str]) -> list[int]:
        self.calls.append((list(keys), list(argv)))
        return await super().decide(keys, argv)


async def run(url: str, requests: int, rounds: int) -> list[tuple[str, float, float]]:
    """Record the limiter's decisions once, then replay them four ways on a flushed Redis."""
    storage = Recording(url)
    storage.calls = []
    limiter = Limiter(parse_policy(POLICY, "bench.toml"), storage)
    admin = Admin(limiter)
    client = redis.Redis.from_url(url)
    for n in range(requests):
        who = Identity(f"a{n % 100}", f"w{n % 7}", "only")
        await limiter.check(who, "chat", session=f"c{n % 50}")
    recorded = list(storage.calls)
    seen: dict[str, list[tuple[float, float]]] = {}

    async def replay(name: str, cut: bool) -> None:
        client.config_resetstat()
        start = time.perf_counter()
        for keys, argv in recorded:
            if cut:
                keys, argv = keys[:-3], argv[: 4 + NOPS * 9]
            await RedisStorage.decide(storage, keys, argv)
        took = (time.perf_counter() - start) / requests * 1e6
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
        seen.setdefault(name, []).append((float(stats.get("usec_per_call", 0.0)), took))

    async def overrides() -> None:
        for account in range(100):
            for limit in ("chats_per_hour", "sessions_per_month", "messages"):
                await admin.set_override(f"a{account}", limit, 2_000_000_000)

    async def suspensions() -> None:
        for account in range(100):
            for other in range(100):
                await admin.suspend(f"a{account}", f"other{other}")

    async def nothing() -> None:
        return None

    variants = [
        ("without the lifecycle section", True, nothing),
        ("with it, no admin records", False, nothing),
        ("with an override on every limit", False, overrides),
        ("with 100 other workspaces suspended", False, suspensions),
    ]
    for round_ in range(rounds):  # rotate the order, so no variant always runs first
        for name, cut, prepare in variants[round_ % 4 :] + variants[: round_ % 4]:
            client.flushall()
            await prepare()
            await replay(name, cut)
    rows = [
        (
            name,
            statistics.median(r for r, _ in seen[name]),
            statistics.median(t for _, t in seen[name]),
        )
        for name, _, _ in variants
    ]
    await limiter.close()
    client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tempfile.mkdtemp(prefix="fairuse-bench-")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        rows = asyncio.run(run(f"redis://127.0.0.1:{port}/0", args.requests, args.rounds))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"{args.requests:,} allowed decisions of 3 limits, one at a time; median of {args.rounds}"
    )
    print(f"{'variant':36}  {'Redis us/EVALSHA':>16}  {'round trip us':>13}")
    for name, redis_us, trip in rows:
        print(f"{name:36}  {redis_us:16.1f}  {trip:13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
