"""benchmarks.trace_episodes: the slowest requests of an openloop trace, grouped by stall."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.trace_episodes import Request, episodes, read_trace, summary

from .conftest import ROOT


def steady_with_stall(tmp_path: Path) -> Path:
    """1,000 requests 1 ms apart answered in 0.2 ms, but for a 5 ms stall from the 500th
    (each request due during it waits for its end) and 5 lone slow ones far apart."""
    lines = ["due_us latency_us service_us"]
    for n in range(1000):
        due, latency = n * 1000, 200
        if 500_000 <= due < 505_000:
            latency = 505_000 - due + 200
        elif n in (100, 250, 700, 850, 950):
            latency = 900
        lines.append(f"{due} {latency} {min(latency, 300)}")
    path = tmp_path / "trace.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stall_is_one_episode_and_lone_slow_requests_are_their_own(tmp_path: Path):
    found = episodes(read_trace(steady_with_stall(tmp_path)), share=0.01)
    sizes = sorted(len(e.requests) for e in found)
    assert sizes == [1, 1, 1, 1, 1, 5]
    stall = max(found, key=lambda e: len(e.requests))
    assert stall.start_ms == 500.0
    assert stall.worst_ms == 5.2


def test_requests_closer_than_the_gap_join_one_episode():
    requests = [
        Request(due, 1000 if due in (0, 3000, 9000) else 10, 10) for due in range(0, 10_000, 1000)
    ]
    assert [len(e.requests) for e in episodes(requests, share=0.3, gap_us=4000)] == [2, 1]
    assert [len(e.requests) for e in episodes(requests, share=0.3, gap_us=7000)] == [3]


def test_a_file_that_is_not_a_trace_is_refused_with_its_name_and_line(tmp_path: Path):
    path = tmp_path / "t.txt"
    path.write_text("due_us latency_us service_us\n1 2 3\n4 five 6\n")
    with pytest.raises(ValueError, match=r"t\.txt, line 3"):
        read_trace(path)
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="not an openloop trace"):
        read_trace(path)


def test_the_command_prints_each_trace_and_refuses_a_bad_one(tmp_path: Path):
    good = steady_with_stall(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.trace_episodes", str(good)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10 requests in 6 episodes" in done.stdout
    assert "at     500.0 ms     5 requests  worst   5.20 ms" in done.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("nope\n")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.trace_episodes", str(bad)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "bad.txt: not an openloop trace" in done.stderr


def test_a_trace_with_no_requests_has_no_episodes(tmp_path: Path):
    path = tmp_path / "empty.txt"
    path.write_text("due_us latency_us service_us\n")
    assert summary("empty", read_trace(path), 0.01, 5000) == (
        "empty: 0 requests, slowest 1.0% from 0.00 ms: 0 requests in 0 episodes, 0 in the largest 0"
    )
