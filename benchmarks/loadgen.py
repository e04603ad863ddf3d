"""Load generators: wrk (C, light on its core) when present, else Locust headless, for full
speed; benchmarks/openloop.c, compiled here, for a fixed arrival rate."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .processes import ROOT, Cores

WRK_SCRIPTS = ROOT / "benchmarks" / "wrk"
OPENLOOP_SOURCE = ROOT / "benchmarks" / "openloop.c"
OPENLOOP_CONNECTIONS = 64  # idle ones cost nothing; a stall of the app must not exhaust them
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class Result:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    refused: int  # responses other than 2xx/3xx (wrk only)
    sent: int = 0  # every request of the run, set-up included: the Redis figures' divisor
    p999_ms: float = float("nan")  # open loop only


def find_wrk(install: bool) -> str | None:
    """wrk on PATH; else, when allowed and root, `apt-get install -y wrk` once."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    print("wrk not found: installing it with apt-get (or pass --tool locust)", file=sys.stderr)
    install_wrk = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install_wrk, check=False, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(install_wrk, check=False, capture_output=True)
    return shutil.which("wrk")


def run_wrk(
    wrk: str, cores: Cores, url: str, script: str, seconds: float, connections: int,
    env: dict[str, str],
) -> Result:  # fmt: skip
    argv = [
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
        "-s", str(WRK_SCRIPTS / script), url,
    ]  # fmt: skip
    return parse_wrk(on_load_core(cores, argv, env, seconds))


def on_load_core(cores: Cores, argv: list[str], env: dict[str, str], seconds: float) -> str:
    """A load generator's run on the load core; its output, or an error with what it said."""
    done = subprocess.run(
        cores.pin(cores.load, argv), capture_output=True, text=True, check=False,
        env={**os.environ, **env}, timeout=seconds + 60,
    )  # fmt: skip
    if done.returncode != 0:
        name = Path(argv[0]).name
        raise RuntimeError(f"{name} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def parse_wrk(text: str) -> Result:
    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        return float(found.group(1)) * UNITS[found.group(2)] if found else float("nan")

    total = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    refused = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if total is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    return Result(
        sent=int(total.group(1)),
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=latency("50%"),
        p99_ms=latency("99%"),
        refused=int(refused.group(1)) if refused else 0,
    )


def run_locust(
    cores: Cores, url: str, user_class: str, seconds: float, users: int, env: dict[str, str]
) -> Result:
    with tempfile.TemporaryDirectory(prefix="fairuse-locust-") as folder:
        return _locust(cores, url, user_class, max(2.0, seconds), users, env, Path(folder) / "run")


def _locust(
    cores: Cores, url: str, user_class: str, seconds: float, users: int, env: dict[str, str],
    prefix: Path,
) -> Result:  # fmt: skip
    argv = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"),
        "--headless", "--only-summary", "--host", url, "-u", str(users), "-r", str(users * 100),
        "-t", f"{max(1, round(seconds))}s", "--csv", str(prefix), "--loglevel", "ERROR",
        user_class,
    ]  # fmt: skip
    subprocess.run(
        cores.pin(cores.load, argv), capture_output=True, check=False, cwd=ROOT,
        env={**os.environ, **env}, timeout=seconds + 60,
    )  # fmt: skip
    stats = prefix.with_name("run_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"Locust wrote no statistics for {user_class}")
    with stats.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    measured = [row for name, row in rows.items() if name not in ("Aggregated", "fill")]
    if not measured or int(measured[0]["Request Count"]) == 0:
        raise RuntimeError(f"Locust made no requests for {user_class}")
    row = measured[0]
    return Result(
        sent=int(rows["Aggregated"]["Request Count"]),
        requests=int(row["Request Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=float(row["50%"]),
        p99_ms=float(row["99%"]),
        refused=-1,
    )


def build_openloop() -> Path | None:
    """benchmarks/openloop.c compiled once per version of its source (build/openloop-HASH);
    None where this machine has no C compiler."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None or not sys.platform.startswith("linux"):  # epoll and timerfd
        return None
    digest = hashlib.sha1(OPENLOOP_SOURCE.read_bytes()).hexdigest()[:12]
    binary = ROOT / "build" / f"openloop-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        argv = [compiler, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(partial)]
        done = subprocess.run([*argv, str(OPENLOOP_SOURCE)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {OPENLOOP_SOURCE} failed:\n{done.stderr}")
        partial.replace(binary)
    return binary


def run_openloop(
    binary: Path, cores: Cores, url: str, rate: float, seconds: float, env: dict[str, str]
) -> Result:
    """`rate` requests a second for `seconds`, each latency counted from when it was due."""
    host, _, port = url.removeprefix("http://").partition(":")
    argv = [str(binary), host, port, f"{rate:.3f}", f"{seconds:g}", str(OPENLOOP_CONNECTIONS)]
    return parse_openloop(on_load_core(cores, argv, env, seconds))


def parse_openloop(text: str) -> Result:
    figures = json.loads(text)
    if figures["unanswered"]:
        raise RuntimeError(f"openloop: requests went unanswered: {text.strip()}")
    return Result(
        sent=figures["sent"],
        requests=figures["completed"],
        rps=figures["rate"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        p999_ms=figures["p999_ms"],
        refused=figures["non2xx"],
    )
