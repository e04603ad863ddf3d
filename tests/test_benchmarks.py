"""Smoke run of benchmarks/compare: the scripts must keep working; their figures are not judged."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.benchmark, pytest.mark.redis]
ROW = r"-?[\d.]+"


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
        line = next((row for row in out.splitlines() if row.startswith(path)), None)
        assert line is not None, out
        figures = re.findall(ROW, line[len(path) :])
        assert len(figures) >= 10, line  # req/s, ratio, latencies, refused, Redis per request
    denied = next(row for row in out.splitlines() if row.startswith("deny:"))
    assert "100%" in denied or "n/a" in denied  # wrk counts the 429s; Locust does not say
    assert f"reaches Redis over {'its unix socket' if redis == 'unix' else 'loopback TCP'}" in out
    if "wrk," in out:  # the same offered load to both apps: wrk's pacing
        paced = out.split("Same offered load", 1)[1].splitlines()
        for path in ("allow: messages in live sessions", "deny: spent quota, retried chats"):
            line = next((row for row in paced if row.startswith(path)), None)
            assert line is not None, out
            assert len(re.findall(ROW, line[len(path) :])) >= 9, line


def test_script_cost_prints_redis_time_per_decision():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.script_cost", "--decisions", "300", "--repeat", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {}
    for path in ("allow: message in a live session", "allow: new chat", "deny: spent quota"):
        line = next((row for row in done.stdout.splitlines() if row.startswith(path)), None)
        assert line is not None, done.stdout
        script_us, commands, cpu_us = (float(x) for x in re.findall(ROW, line)[-3:])
        assert script_us > 0, line
        assert cpu_us > 0, line
        rows[path] = commands
    # a new chat counts two quotas and starts its session: more work inside the script
    assert rows["allow: new chat"] > rows["allow: message in a live session"] > 0
