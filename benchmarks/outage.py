"""What a Redis outage costs a request, and how soon decisions resume, with the default settings.

    .venv/bin/python -m benchmarks.outage [--seconds 2] [--concurrency 16]

On a redis-server of its own, 16 concurrent loops of decisions (shipped plans, new chats) run
while Redis is healthy, killed, then frozen (SIGSTOP: connections open, no replies). It prints
the latency of decisions in each phase (failed ones answer from the fail policy), then the time
from Redis answering PING again to the first decision it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ratelimit import Identity, Limiter, StorageError
from ratelimit.plans_file import load_policy
from ratelimit.storage.redis import RedisStorage

from .processes import ROOT, free_port, redis_command


class Server:
    """One redis-server that can be killed and started again on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="fairuse-outage-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait for PING; returns the monotonic time it first answered."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_command(self.port, "PING") == "PONG":
                    return time.monotonic()
            except OSError:
                time.sleep(0.002)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)


async def phase(limiter: Limiter, seconds: float, concurrency: int) -> tuple[list[float], int]:
    """Decisions for `seconds`; their latencies (s) and how many failed."""
    latencies: list[float] = []
    failed = 0
    chats = itertools.count()
    deadline = time.monotonic() + seconds

    async def loop(worker: int) -> None:
        nonlocal failed
        while time.monotonic() < deadline:
            who = Identity(f"account-{worker}", "main", "unlimited")
            start = time.perf_counter()
            try:
                await limiter.check(who, "chat_message", session=f"chat-{next(chats)}")
            except StorageError:
                failed += 1
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0)  # a failed-fast decision never suspends; a server would here

    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    return latencies, failed


def summary(name: str, latencies: list[float], failed: int) -> str:
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99)] * 1000
    worst = ordered[-1] * 1000
    return f"{name:<9} {len(ordered):>8} {failed:>7} {p50:>8.2f} {p99:>8.2f} {worst:>8.1f}"


async def run(seconds: float, concurrency: int) -> None:
    server = Server()
    server.start()
    process = server.process
    limiter = Limiter(
        load_policy(ROOT / "plans.toml"), RedisStorage(f"redis://127.0.0.1:{server.port}/0")
    )
    try:
        print(
            f"{'phase':<9} {'requests':>8} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        )
        print(summary("healthy", *await phase(limiter, seconds, concurrency)))
        server.kill()
        print(summary("killed", *await phase(limiter, seconds, concurrency)))
        up = server.start()
        process = server.process
        while True:
            try:
                await limiter.check(Identity("probe", "main", "unlimited"), "ticket")
                break
            except StorageError:
                await asyncio.sleep(0.001)
        print(
            f"decisions resumed {1000 * (time.monotonic() - up):.0f} ms after Redis answered PING"
        )
        assert process is not None
        os.kill(process.pid, signal.SIGSTOP)
        try:
            print(summary("frozen", *await phase(limiter, seconds, concurrency)))
        finally:
            os.kill(process.pid, signal.SIGCONT)
        up = time.monotonic()
        while True:
            try:
                await limiter.check(Identity("probe", "main", "unlimited"), "ticket")
                break
            except StorageError:
                await asyncio.sleep(0.001)
        print(f"decisions resumed {1000 * (time.monotonic() - up):.0f} ms after SIGCONT")
    finally:
        await limiter.close()
        server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
