"""The machine notes benchmarks/compare prints beside its figures."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from benchmarks.machine import idle_halting, memory_sampling, stolen_seconds


def kdamond(root: Path, name: str, state: str, sample_us: str) -> None:
    daemon = root / name
    intervals = daemon / "contexts" / "0" / "monitoring_attrs" / "intervals"
    intervals.mkdir(parents=True)
    (daemon / "state").write_text(f"{state}\n")
    (intervals / "sample_us").write_text(f"{sample_us}\n")


def test_a_running_damon_is_named_with_its_sample_interval(tmp_path: Path):
    kdamond(tmp_path, "0", "on", "500000")
    kdamond(tmp_path, "1", "off", "5000")
    note = memory_sampling(tmp_path)
    assert note is not None
    assert "(every 0.5 s)" in note


def test_no_note_without_a_running_damon(tmp_path: Path):
    assert memory_sampling(tmp_path / "absent") is None
    kdamond(tmp_path, "0", "off", "500000")
    assert memory_sampling(tmp_path) is None


def test_an_unreadable_interval_is_skipped_not_fatal(tmp_path: Path):
    kdamond(tmp_path, "0", "on", "soon")
    assert memory_sampling(tmp_path) is None


def idle_driver(root: Path, driver: str, poll_ns: str | None) -> tuple[Path, Path]:
    (root / "cpuidle").mkdir()
    (root / "cpuidle" / "current_driver").write_text(f"{driver}\n")
    (root / "haltpoll").mkdir()
    if poll_ns is not None:
        (root / "haltpoll" / "guest_halt_poll_ns").write_text(f"{poll_ns}\n")
    return root / "cpuidle", root / "haltpoll"


def test_halting_at_once_is_named(tmp_path: Path):
    note = idle_halting(*idle_driver(tmp_path, "haltpoll", "0"))
    assert note is not None
    assert "guest_halt_poll_ns=0" in note


@pytest.mark.parametrize(
    ("driver", "poll_ns"),
    [("haltpoll", "200000"), ("intel_idle", "0"), ("haltpoll", None), ("haltpoll", "soon")],
)
def test_no_halting_note_where_idle_cores_poll_or_say_nothing(
    tmp_path: Path, driver: str, poll_ns: str | None
):
    assert idle_halting(*idle_driver(tmp_path, driver, poll_ns)) is None


def test_no_halting_note_without_a_cpuidle_driver(tmp_path: Path):
    assert idle_halting(tmp_path / "absent", tmp_path / "absent") is None


def test_steal_is_read_from_the_cpu_line_in_seconds(tmp_path: Path):
    stat = tmp_path / "stat"
    ticks = os.sysconf("SC_CLK_TCK")
    stat.write_text(f"cpu  84662 0 18835 142447 599 0 8420 {3 * ticks} 0 0\ncpu0 1 2 3\n")
    assert stolen_seconds(stat) == 3.0


def test_steal_is_zero_where_the_kernel_does_not_say(tmp_path: Path):
    assert stolen_seconds(tmp_path / "absent") == 0.0
    short = tmp_path / "stat"
    short.write_text("cpu  84662 0 18835\n")  # an old kernel's shorter line
    assert stolen_seconds(short) == 0.0


def test_steal_agrees_with_psutil_on_this_machine():
    if not hasattr(psutil.cpu_times(), "steal"):
        pytest.skip("this kernel reports no steal time")
    assert stolen_seconds() == pytest.approx(psutil.cpu_times().steal, abs=0.05)
