"""Bare app against the same app behind fairuse on Redis, same load, one run; prints the ratios.

Run it as `benchmarks/compare` (see benchmarks/README.md). It starts its own redis-server on a
free port, the bare demo and the protected one (uvicorn, 1 worker, uvloop, httptools) pinned to
one core, and drives them from the other core with wrk (else Locust), alternating bare and
protected runs so that drift on a shared machine hits both sides alike. Then both apps, and a
floor (benchmarks/floor.py: the bare app behind one Redis round trip that does nothing), receive
the same arrivals, a fixed rate from benchmarks/openloop.c, for latency at equal load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .loadgen import Result, build_openloop, find_wrk, run_locust, run_openloop, run_wrk
from .machine import idle_halting, memory_sampling, stolen_seconds
from .processes import (
    Cores,
    Running,
    build_root,
    cpu_seconds,
    redis_counters,
    redis_socket,
    start_app,
    start_redis,
)
from .scenarios import (
    SCENARIOS,
    SMOKE,
    SPENT,
    SUSPENDED,
    Scenario,
    spend_sandbox_sessions,
    suspend_second_workspace,
)


@dataclass
class Measured:
    bare: list[Result]
    protected: list[Result]
    redis: list[dict[str, float]]
    cpu: dict[str, list[float]]  # app CPU microseconds per request, per side
    busy: dict[str, list[float]]  # the share of its core each app used, per side
    steal: list[float] = field(default_factory=list)  # seconds the host took, each run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/compare", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="bare/protected pairs per path")
    parser.add_argument(
        "--connections",
        type=int,
        default=128,
        help="enough to keep both apps' core busy: each protected request also waits on Redis",
    )
    parser.add_argument("--tool", choices=["auto", "wrk", "locust"], default="auto")
    parser.add_argument("--smoke", action="store_true", help="a few seconds: checks it runs")
    parser.add_argument("--only", default="", help="run the paths whose name contains this")
    parser.add_argument(
        "--build",
        choices=["compiled", "python"],
        default="compiled",
        help="fairuse as compiled by scripts/compile (where a C compiler exists), or pure Python",
    )
    parser.add_argument(
        "--loads",
        type=fractions,
        default=(0.1, 0.25),
        help="the arrival rates offered to both apps, as shares of the protected app's full "
        "speed on the path (comma-separated)",
    )
    parser.add_argument(
        "--load-rounds",
        type=int,
        default=3,
        help="bare/protected pairs per path and rate at the same arrivals",
    )
    parser.add_argument(
        "--redis",
        choices=["tcp", "unix"],
        default="tcp",
        help="how the protected app reaches Redis: loopback TCP, or Redis's unix socket",
    )
    parser.add_argument(
        "--reply-ms",
        type=float,
        default=0.0,
        help="both apps wait this long before each chat reply, as for a model call "
        "(FAIRUSE_DEMO_REPLY_MS); 0, the default, answers at once: the hardest case for a ratio",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.reply_ms <= 60_000:
        parser.error("--reply-ms must be from 0 to 60000")
    scenarios = tuple(s for s in SCENARIOS if args.only in s.label)
    if not scenarios:
        parser.error(f"no path matches {args.only!r}")
    if args.smoke:  # one allow and one deny path, briefly: proves the machinery still works
        args.seconds, args.rounds, args.load_rounds, scenarios = 1.0, 1, 1, SMOKE
        args.loads = args.loads[:1]
    wrk = None if args.tool == "locust" else find_wrk(install=not args.smoke)
    if args.tool == "wrk" and wrk is None:
        parser.error("wrk is not installed")
    root, build = build_root(args.build)
    cores = Cores.detect()
    running = Running()
    try:
        redis_port = start_redis(running, cores)
        storage = f"redis://127.0.0.1:{redis_port}/0"
        if args.redis == "unix":
            storage = f"redis+unix://{redis_socket(running)}?db=0"
        both = {"FAIRUSE_DEMO_REPLY_MS": f"{args.reply_ms:g}"}
        protected = {**both, "FAIRUSE_STORAGE": storage}
        apps = {
            "bare": start_app(running, cores, "bare", {**both, "FAIRUSE_BARE": "1"}),
            "protected": start_app(running, cores, "protected", protected, root),
        }
        spend_sandbox_sessions(apps["protected"], SPENT)
        suspend_second_workspace(apps["protected"], SUSPENDED)
        tool = f"wrk, {args.connections} connections" if wrk else "Locust (wrk not found)"
        pinning = f"app on CPU {cores.app}, load and Redis on CPU {cores.load}"
        print(f"fairuse benchmark: {tool}; {pinning if cores.app else 'no CPU pinning'}")
        transport = "its unix socket" if args.redis == "unix" else "loopback TCP"
        print(f"fairuse build: {build}; the protected app reaches Redis over {transport}")
        if args.reply_ms:
            print(f"each chat reply waits {args.reply_ms:g} ms in both apps (--reply-ms)")
        for note in (memory_sampling(), idle_halting()):
            if note:
                print(note)
        print(f"{args.rounds} round(s) of {args.seconds:g} s per side and path; medians shown\n")
        rows = []
        for scenario in scenarios:
            measured = Measured(
                [], [], [], {"bare": [], "protected": []}, {"bare": [], "protected": []}
            )
            for round_ in range(args.rounds):
                for side, url in in_turn(apps, round_):
                    load = Load(wrk, cores, url, scenario, args.connections, f"{side}{round_}")
                    if not args.smoke:  # warm-up: sessions exist, caches are filled
                        load.run(min(args.seconds, 3.0))
                    pid = running.pids[side]
                    cpu, stolen = cpu_seconds(pid), stolen_seconds()
                    before = redis_counters(redis_port)
                    result = load.run(args.seconds)
                    after = redis_counters(redis_port)
                    measured.steal.append(stolen_seconds() - stolen)
                    measured.cpu[side].append(per_request_us(pid, cpu, result))
                    measured.busy[side].append((cpu_seconds(pid) - cpu) / args.seconds)
                    getattr(measured, side).append(result)
                    if side == "protected":  # the bare app sends Redis nothing
                        measured.redis.append(per_request(before, after, result.sent))
            rows.append((scenario, measured))
        print_table(rows)
        openloop = build_openloop()
        if openloop is None:
            print("\nno C compiler here: the comparison at the same arrival rate is skipped")
            return 0
        if not args.smoke:  # a smoke run's few seconds leave nothing to expire in bulk
            wait_for_expiry(redis_port)
        floor = start_app(running, cores, "floor", protected, root, "benchmarks.floor:app_from_env")
        at_rates = {"bare": apps["bare"], "floor": floor, "protected": apps["protected"]}
        at_rate = AtRate(openloop, cores, at_rates, running.pids, redis_port)
        print_same_load(same_load(rows, at_rate, args.loads, args.seconds, args.load_rounds))
    finally:
        running.stop()
    return 0


def in_turn(apps: dict[str, str], round_: int) -> list[tuple[str, str]]:
    """Every side, each round starting one side further on (bare then protected, protected
    then bare), so that drift on a shared machine hits all alike."""
    sides = list(apps.items())
    turn = round_ % len(sides)
    return sides[turn:] + sides[:turn]


RUNS = itertools.count()
SIDES = ("bare", "protected")
AT_RATE_SIDES = ("bare", "floor", "protected")


@dataclass(frozen=True)
class Load:
    """One side of one path: the same requests whichever app receives them."""

    wrk: str | None
    cores: Cores
    url: str
    scenario: Scenario
    connections: int
    run_id: str

    def run(self, seconds: float) -> Result:
        if self.wrk is not None:
            env = chats_env(self.scenario, self.run_id)
            script = "chats.lua"
            return run_wrk(self.wrk, self.cores, self.url, script, seconds, self.connections, env)
        users = min(self.connections, 16)
        env = fresh_run(self.scenario, self.run_id)
        return run_locust(self.cores, self.url, self.scenario.locust_user, seconds, users, env)


def fresh_run(scenario: Scenario, run_id: str) -> dict[str, str]:
    """A run id new in every run (so that new chat ids are new), and the refused tenant."""
    return {"RUN_ID": f"{run_id}-{next(RUNS)}", "ACCOUNT": scenario.account}


def chats_env(scenario: Scenario, run_id: str) -> dict[str, str]:
    """The path's requests for benchmarks/wrk/chats.lua and benchmarks/openloop.c."""
    return {**dict(scenario.wrk_env), **fresh_run(scenario, run_id)}


def per_request_us(pid: int, before: float, result: Result) -> float:
    return (cpu_seconds(pid) - before) / max(1, result.requests) * 1e6


def per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """Redis work per request; the INFO command of the first snapshot is taken off."""
    count = max(requests, 1)
    return {
        "commands": (after["commands"] - before["commands"] - 1) / count,
        "evalsha": (after["evalsha"] - before["evalsha"]) / count,
        "round_trips": max(0, after["reads"] - before["reads"] - 2) / count,
        "redis_cpu_us": (after["cpu"] - before["cpu"]) / count * 1e6,
    }


def print_table(rows: list[tuple[Scenario, Measured]]) -> None:
    head = (
        f"{'path':<32} {'bare req/s':>10} {'fairuse req/s':>13} {'ratio':>6}  "
        f"{'p50 ms bare/fu':>14} {'p99 ms bare/fu':>14} {'refused':>7}  "
        f"{'redis cmds':>10} {'EVALSHA':>7} {'trips':>6} {'Redis CPU us':>12} "
        f"{'app CPU us bare/fu':>18} "
        f"{'CPU ratio':>9} {'app busy bare/fu':>16} {'steal ms':>8}"
    )
    print(head)
    summary = []
    for scenario, m in rows:
        bare = median_result(m.bare)
        prot = median_result(m.protected)
        ratio = statistics.median(p.rps / b.rps for b, p in zip(m.bare, m.protected, strict=True))
        redis = {k: statistics.median(r[k] for r in m.redis) for k in m.redis[0]}
        cpu_bare = statistics.median(m.cpu["bare"])
        cpu_prot = statistics.median(m.cpu["protected"]) or float("nan")
        busy_bare, busy_prot = (statistics.median(m.busy[side]) for side in ("bare", "protected"))
        total = max(1, sum(r.requests for r in m.protected))
        refused = (
            f"{sum(r.refused for r in m.protected) / total:.0%}" if prot.refused >= 0 else "n/a"
        )
        label = scenario.label
        print(
            f"{label:<32} {bare.rps:>10.0f} {prot.rps:>13.0f} {ratio:>6.2f}  "
            f"{f'{bare.p50_ms:.2f}/{prot.p50_ms:.2f}':>14} "
            f"{f'{bare.p99_ms:.2f}/{prot.p99_ms:.2f}':>14} {refused:>7}  "
            f"{redis['commands']:>10.2f} {redis['evalsha']:>7.2f} {redis['round_trips']:>6.2f} "
            f"{redis['redis_cpu_us']:>12.1f} "
            f"{f'{cpu_bare:.0f}/{cpu_prot:.0f}':>18} {cpu_bare / cpu_prot:>9.2f} "
            f"{f'{busy_bare:.0%}/{busy_prot:.0%}':>16} {sum(m.steal) * 1000:>8.0f}"
        )
        summary.append(
            {"path": label, "ratio": round(ratio, 3), "cpu_ratio": round(cpu_bare / cpu_prot, 3)}
            | redis
            | {"steal_ms": round(sum(m.steal) * 1000)}
        )
    for scenario, m in rows:  # an allow path that ran out of quota measured refusals instead
        share = sum(r.refused for r in m.protected) / max(1, sum(r.requests for r in m.protected))
        if scenario.path == "allow" and share > 0.01:  # Locust reports -1: never warned
            print(f"WARNING: {scenario.label} refused {share:.0%}: its figures are not allow")
    print(
        "Redis commands, EVALSHA calls, round trips, Redis CPU (its main thread, user + system)\n"
        "and app CPU are per request; CPU ratio is\n"
        "bare CPU / protected CPU per request, the throughput ratio once the app's core is the\n"
        "only bottleneck; app busy is the share of its core each app used (near 100%: the load\n"
        "was enough to measure its throughput); steal: the CPU time the host took from this VM\n"
        "during the path's measured runs (/proc/stat), which can show in their p99."
    )
    print("\n" + json.dumps(summary))


# plans.toml's flood guard: a chat's bucket key lives until its 20 messages would have refilled
# at 30 a minute, 40 s after its last message (plus a second of slack).
SHORT_LIVED_KEYS_TTL = 41.0
QUIET_EXPIRY = 1000  # keys expired per second below which Redis is taken to be settled


def fractions(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not shares or not all(0 < share <= 1 for share in shares):
        raise argparse.ArgumentTypeError(f"each share must lie in (0, 1]: {text!r}")
    return shares


def wait_for_expiry(redis_port: int, limit: float = 120.0) -> None:
    """Wait until Redis has expired the full-speed runs' short-lived keys. Made at full speed,
    they expire in bulk 41 s later, tens of thousands a second, and Redis then answers late:
    in the runs at a fixed rate that would show as fairuse's p99 and measure the runs before
    them."""
    print("\nwaiting for Redis to expire the short-lived keys of the full-speed runs", flush=True)
    time.sleep(SHORT_LIVED_KEYS_TTL)
    deadline = time.monotonic() + limit
    last = redis_counters(redis_port)["expired"]
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = redis_counters(redis_port)["expired"]
        if now - last < QUIET_EXPIRY:
            return
        last = now


@dataclass(frozen=True)
class AtRate:
    """Runs one side of one path at a fixed arrival rate, and what that cost the app."""

    openloop: Path
    cores: Cores
    apps: dict[str, str]
    pids: dict[str, int]
    redis_port: int

    def run(
        self, side: str, scenario: Scenario, rate: float, seconds: float, run_id: str
    ) -> tuple[Result, float, float]:
        """The result, the share of its core the app used, and the keys Redis expired a
        second meanwhile."""
        env = chats_env(scenario, run_id)
        pid = self.pids[side]
        cpu, expired = cpu_seconds(pid), redis_counters(self.redis_port)["expired"]
        result = run_openloop(self.openloop, self.cores, self.apps[side], rate, seconds, env)
        busy = (cpu_seconds(pid) - cpu) / seconds
        return result, busy, (redis_counters(self.redis_port)["expired"] - expired) / seconds


def same_load(
    rows: list[tuple[Scenario, Measured]], at_rate: AtRate, loads: Sequence[float],
    seconds: float, rounds: int,
) -> list[SameLoad]:  # fmt: skip
    """Both apps receive the same arrivals: requests due at a fixed rate, whatever either
    answers, each latency counted from when it was due (benchmarks/openloop.c). A closed loop
    offers a slower app less and hides its stalls; this compares p99s like with like. A p99
    rests on its slowest 1%, so it moves more from run to run than a rate: several rounds,
    alternating which side goes first, and the ratio shown is the median of theirs."""
    out = []
    for scenario, m in rows:
        full_speed = statistics.median(r.rps for r in m.protected)
        for share in loads:
            row = SameLoad(scenario, share, share * full_speed)
            for round_ in range(rounds):
                for side, _ in in_turn(at_rate.apps, round_):
                    stolen = stolen_seconds()
                    result, busy, expired = at_rate.run(
                        side, scenario, row.rate, seconds, f"open-{side}{round_}"
                    )
                    row.steal[side].append(stolen_seconds() - stolen)
                    row.results[side].append(result)
                    row.busy[side].append(busy)
                    if side == "protected":
                        row.expired.append(expired)
            out.append(row)
    return out


@dataclass
class SameLoad:
    """One path at one arrival rate: its rounds, per side (bare, floor, protected), in the
    order they ran."""

    scenario: Scenario
    share: float  # of the protected app's full speed on this path
    rate: float
    results: dict[str, list[Result]] = field(default_factory=lambda: _per_side(AT_RATE_SIDES))
    busy: dict[str, list[float]] = field(default_factory=lambda: _per_side(AT_RATE_SIDES))
    expired: list[float] = field(default_factory=list)  # keys expired/s, each protected round
    steal: dict[str, list[float]] = field(default_factory=lambda: _per_side(AT_RATE_SIDES))

    def p99_ratios(self, over: str, under: str) -> list[float]:
        """Each round's p99 of side `over` divided by that of side `under`."""
        pairs = zip(self.results[under], self.results[over], strict=True)
        return [o.p99_ms / u.p99_ms for u, o in pairs]


def _per_side(sides: Sequence[str]) -> dict[str, list[Any]]:
    return {side: [] for side in sides}


def print_same_load(rows: list[SameLoad]) -> None:
    rounds = len(rows[0].results["bare"]) if rows else 0
    print(f"\nSame arrivals, open loop (a fixed rate to each app; {rounds} rounds; medians):")
    print(f"{'path':<32} {'req/s':>6} {'share':>5} {'app busy b/fl/fu':>16} "
          f"{'p50 ms b/fl/fu':>16} {'p99 ms b/fl/fu':>16} {'p99.9 ms b/fl/fu':>17} "
          f"{'p99 +us':>7} {'p99 ratio':>9} {'floor':>5} {'fu/floor':>8}  per round")  # fmt: skip
    for row in rows:
        bare, floor, prot = (median_result(row.results[side]) for side in AT_RATE_SIDES)
        busy = "/".join(f"{statistics.median(row.busy[side]):.0%}" for side in AT_RATE_SIDES)
        added = (prot.p99_ms - bare.p99_ms) * 1000
        ratios = row.p99_ratios("protected", "bare")
        each = " ".join(f"{r:.2f}" for r in ratios)
        each += "  expired/s " + " ".join(f"{e:.0f}" for e in row.expired)
        stolen = zip(*(row.steal[side] for side in AT_RATE_SIDES), strict=True)
        each += "  steal ms " + " ".join("/".join(f"{s * 1000:.0f}" for s in r) for r in stolen)
        print(
            f"{row.scenario.label:<32} {row.rate:>6.0f} {row.share:>5.0%} {busy:>16} "
            f"{_three(bare.p50_ms, floor.p50_ms, prot.p50_ms):>16} "
            f"{_three(bare.p99_ms, floor.p99_ms, prot.p99_ms):>16} "
            f"{_three(bare.p999_ms, floor.p999_ms, prot.p999_ms):>17} {added:>7.0f} "
            f"{statistics.median(ratios):>9.2f} "
            f"{statistics.median(row.p99_ratios('floor', 'bare')):>5.2f} "
            f"{statistics.median(row.p99_ratios('protected', 'floor')):>8.2f}  {each}"
        )
    print(
        "b/fl/fu: the bare app, the floor (the bare app behind one Redis round trip and nothing\n"
        "else: benchmarks/floor.py), fairuse. share: the rate as a share of the protected app's\n"
        "full speed on the path above; app busy: the share of its core each app used; p99 +us:\n"
        "what fairuse added to the bare app's p99; p99 ratio: fairuse's p99 over the bare app's;\n"
        "floor: the floor's over the bare app's, what the machine charges any limiter that asks\n"
        "Redis before answering; fu/floor: fairuse's over the floor's, what fairuse adds to that\n"
        "(on deny paths the floor still answers 200); per round: each round's p99 ratio;\n"
        "steal: the CPU time the host took from this VM in each round, b/fl/fu."
    )


def _three(bare: float, floor: float, protected: float) -> str:
    return f"{bare:.2f}/{floor:.2f}/{protected:.2f}"


def median_result(results: list[Result]) -> Result:
    return Result(
        requests=int(statistics.median(r.requests for r in results)),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        p999_ms=statistics.median(r.p999_ms for r in results),
        refused=int(statistics.median(r.refused for r in results)),
    )


if __name__ == "__main__":
    sys.exit(main())
