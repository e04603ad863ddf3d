"""Smoke run of benchmarks/compare: the scripts must keep working; their figures are not judged."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from benchmarks.loadgen import build_openloop
from benchmarks.machine import idle_halting, memory_sampling

from .conftest import ROOT

pytestmark = [pytest.mark.benchmark, pytest.mark.redis]
ROW = r"-?[\d.]+"


def row_of(lines: list[str], path: str, shown: str) -> str:
    """The printed row that starts with `path`; `shown` is what the failure message shows."""
    line = next((row for row in lines if row.startswith(path)), None)
    assert line is not None, shown
    return line


@pytest.mark.parametrize(("build", "redis"), [("python", "unix"), ("compiled", "tcp")])
def test_compare_smoke_prints_the_table(build: str, redis: str):
    done = subprocess.run(
        [str(ROOT / "benchmarks" / "compare"), "--smoke", "--build", build, "--redis", redis],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "bare req/s" in out
    assert "Redis CPU us" in out
    if build == "python":
        assert "fairuse build: pure Python" in out
    elif "fairuse build: pure Python" in out:  # scripts/compile found no C compiler here
        assert "no C compiler" in done.stderr
    else:
        assert "fairuse build: compiled (mypyc)" in out
    for path in ("allow: messages in live sessions", "deny: spent quota, retried chats"):
        line = row_of(out.splitlines(), path, out)
        figures = re.findall(ROW, line[len(path) :])
        assert len(figures) >= 10, line  # req/s, ratio, latencies, refused, Redis per request
    denied = next(row for row in out.splitlines() if row.startswith("deny:"))
    assert "100%" in denied or "n/a" in denied  # wrk counts the 429s; Locust does not say
    assert f"reaches Redis over {'its unix socket' if redis == 'unix' else 'loopback TCP'}" in out
    note = memory_sampling()  # the machine's own stalls, named when present
    assert (note in out) if note else ("DAMON" not in out)
    halting = idle_halting()
    assert (halting in out) if halting else ("guest_halt_poll_ns" not in out)
    if build_openloop() is None:
        assert "no C compiler here" in out
        return
    same = out.split("Same arrivals, open loop", 1)[1].splitlines()  # benchmarks/openloop.c
    assert "fu/floor" in same[1], same[1]
    for path in ("allow: messages in live sessions", "deny: spent quota, retried chats"):
        line = row_of(same, path, out)
        assert len(re.findall(ROW, line[len(path) :])) >= 20, line
        # bare, floor (benchmarks/floor.py) and fairuse each measured: three p50s, p99s, p99.9s
        assert len(re.findall(rf"{ROW}/{ROW}/{ROW}\b", line)) >= 3, line


def test_script_cost_prints_redis_time_per_decision():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.script_cost", "--decisions", "300", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}
    for path in ("allow: message in a live session", "allow: new chat", "deny: spent quota"):
        line = row_of(done.stdout.splitlines(), path, done.stdout)
        script_us, commands, cpu_us = (float(x) for x in re.findall(ROW, line)[-3:])
        assert script_us > 0, line
        assert cpu_us > 0, line
        rows[path] = commands
    # a new chat counts two quotas and starts its session: more work inside the script
    assert rows["allow: new chat"] > rows["allow: message in a live session"] > 0


def test_inprocess_harness_prints_cpu_per_request():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.inprocess", "--requests", "64"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for path in ("bare", "allow: messages in live sessions", "allow: new chats", "deny:"):
        line = row_of(done.stdout.splitlines(), path, done.stdout)
        wall_us, cpu_us = (float(x) for x in re.findall(r"([\d.]+) us", line))
        assert wall_us > 0, line
        assert cpu_us > 0, line


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_counts_a_request_bare_and_protected():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions", "--requests", "32", "--only", "new"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = {}
    for path in ("bare app", "allow: new chats"):
        line = row_of(done.stdout.splitlines(), path, done.stdout)
        counts[path] = int(line[len(path) :].split()[0].replace(",", ""))
    assert "messages in live sessions" not in done.stdout  # --only left it out
    assert 0 < counts["bare app"] < counts["allow: new chats"]
