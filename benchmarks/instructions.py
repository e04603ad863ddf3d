"""Instructions per request, counted by valgrind: a figure of the app's own work that does not
move with the machine's load or speed.

Throughput and CPU time on a shared VM move by several percent from one run to the next, and
more when the host changes pace; the number of instructions the same code runs on the same
inputs barely moves, so a change of a few hundred instructions per request shows. Each path
runs in process (benchmarks/inprocess: no sockets between client and app, 32 requests in
flight) under `valgrind --tool=cachegrind`, twice: N requests, then 2N, after the same
start-up, warm-up and prepared requests, so that the difference over N is what one request
costs. Redis runs outside valgrind (benchmarks/script_cost measures it) and the kernel is not
counted: this is the Python side only, where fairuse's own cost is.

Run: `.venv/bin/python -m benchmarks.instructions [--requests N] [--build compiled]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


@dataclass(frozen=True)
class Row:
    label: str
    protected: bool
    primed: bool  # every prepared request sent once before counting: its chat is live
    want: int


PATHS = {
    "bare": Row("bare app", False, False, 200),
    "live": Row("allow: messages in live sessions", True, True, 200),
    "new": Row("allow: new chats", True, False, 200),
    "spent": Row("deny: spent quota, retried chats", True, False, 429),
}


def _maker(name: str) -> Callable[[int], dict[str, Any]]:
    from benchmarks import inprocess

    makers = {
        "bare": inprocess._sessions,
        "live": inprocess._sessions,
        "new": inprocess._new_chats,
        "spent": inprocess._spent,
    }
    return makers[name]


async def _child(name: str, prepared: int, counted: int, redis_url: str) -> None:
    """What valgrind runs: identical for both counts but for the requests sent at the end."""
    from benchmarks.inprocess import CONCURRENT, _one, _spend
    from middleware.demo import create_app, create_bare_app, tune_gc

    path = PATHS[name]
    app = create_app("plans.toml", redis_url) if path.protected else create_bare_app()
    make = _maker(name)
    if name == "spent":
        await _spend(app)
    for n in range(200):
        await _one(app, make(n))
    scopes = [make(n) for n in range(prepared)]
    if path.primed:
        for at in range(0, prepared, CONCURRENT):
            await asyncio.gather(*(_one(app, s) for s in scopes[at : at + CONCURRENT]))
    tune_gc()
    for at in range(0, counted, CONCURRENT):
        batch = scopes[at : at + CONCURRENT]
        statuses = await asyncio.gather(*(_one(app, s) for s in batch))
        if any(status != path.want for status in statuses):
            raise RuntimeError(f"{path.label}: answered {set(statuses)}, expected {path.want}")


def _count(root: Path, name: str, prepared: int, counted: int, redis_url: str) -> int:
    """Instructions valgrind counted for one whole run of the child."""
    import redis

    redis.Redis.from_url(redis_url).flushall()  # both runs of a path start from the same state
    argv = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.instructions", "--child", name,
        "--prepared", str(prepared), "--counted", str(counted), "--redis", redis_url,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(root)}
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    found = REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{name}: valgrind run failed:\n{done.stderr[-3000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="N: the counted difference")
    parser.add_argument("--build", choices=["python", "compiled"], default="python")
    parser.add_argument("--only", default="", help="the paths whose name contains this, and bare")
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--prepared", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--counted", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, args.prepared, args.counted, args.redis))
        return
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    from benchmarks.processes import build_root

    root, build = build_root(args.build)
    from tests.redis_servers import RedisProcess

    n = args.requests
    servers = [RedisProcess().start() for _ in range(2)]  # a path's two runs, side by side
    try:
        counts: dict[str, int] = {}
        for name, row in PATHS.items():
            if args.only not in row.label and name != "bare":
                continue
            with ThreadPoolExecutor(2) as pool:
                runs = [
                    pool.submit(_count, root, name, 2 * n, counted, server.url)
                    for counted, server in zip((n, 2 * n), servers, strict=True)
                ]
                few, many = (run.result() for run in runs)
            counts[name] = (many - few) // n
    finally:
        for server in servers:
            server.remove()
    print(f"fairuse build: {build}; instructions per request, the difference of {n} requests")
    bare = counts["bare"]
    for name, per_request in counts.items():
        ratio = f"{per_request / bare:5.2f}x bare" if name != "bare" else ""
        print(f"{PATHS[name].label:36} {per_request:9,d} {ratio}")


if __name__ == "__main__":
    main()
