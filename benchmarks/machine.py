"""What the machine itself adds to a latency tail, named beside the figures it shapes."""

from __future__ import annotations

import os
from pathlib import Path

KDAMONDS = Path("/sys/kernel/mm/damon/admin/kdamonds")
CPUIDLE = Path("/sys/devices/system/cpu/cpuidle")
HALTPOLL = Path("/sys/module/haltpoll/parameters")


def memory_sampling(kdamonds: Path = KDAMONDS) -> str | None:
    """A note when the kernel's DAMON is sampling memory, else None.

    Virtual machines that hand cold memory back to their host run DAMON: a kernel thread
    (kdamond) wakes every sample interval and checks the accessed bits of thousands of memory
    regions. On this project's VM each wake took 2-4 ms of one core, every 0.5 s (ftrace's
    sched_switch events), stalling whichever app or Redis ran there: the same stalls for both
    apps, but a busier app takes longer to drain the queue they leave."""
    intervals = []
    for daemon in sorted(kdamonds.glob("[0-9]*")):
        try:
            if (daemon / "state").read_text().strip() != "on":
                continue
            for context in sorted((daemon / "contexts").glob("[0-9]*")):
                sample = context / "monitoring_attrs" / "intervals" / "sample_us"
                intervals.append(int(sample.read_text()) / 1e6)
        except (OSError, ValueError):  # unreadable, or a kernel with another layout
            continue
    if not intervals:
        return None
    every = ", ".join(f"{s:g} s" for s in intervals)
    return (
        f"note: the kernel's DAMON samples memory here (every {every}); each sample stalls the "
        "core it runs on for a few ms, both apps alike (benchmarks/README.md, 'Stalls')"
    )


def idle_halting(cpuidle: Path = CPUIDLE, haltpoll: Path = HALTPOLL) -> str | None:
    """A note when an idle core of this VM halts at once, else None.

    A guest's haltpoll idle driver polls for a while before halting, so that a wake soon after
    costs no trip through the hypervisor; with guest_halt_poll_ns at 0 it never polls. Then
    every wake from idle costs that trip: at light load, once per request for the bare app and
    twice for an app that waits on Redis. On this project's VM, polling for up to 200 µs cut
    the app CPU per request at a quarter of full speed by a third (fairuse) and a quarter
    (bare), and the bare app's p99 most (benchmarks/README.md, 'Stalls')."""
    try:
        if (cpuidle / "current_driver").read_text().strip() != "haltpoll":
            return None
        if int((haltpoll / "guest_halt_poll_ns").read_text()) > 0:
            return None
    except (OSError, ValueError):  # another driver, or none
        return None
    return (
        "note: idle cores halt at once here (haltpoll, guest_halt_poll_ns=0): each wake from "
        "idle goes through the hypervisor, which weighs on light-load latency "
        "(benchmarks/README.md, 'Stalls')"
    )


def stolen_seconds(stat: Path = Path("/proc/stat")) -> float:
    """CPU time the hypervisor ran something else while this VM's CPUs were ready to run
    (the `steal` column of /proc/stat's `cpu` line, all CPUs), in seconds; 0 where the kernel
    does not report it. On this project's VM a program spinning on both cores saw the host
    pause them for up to 100 ms at a time, which /proc/stat counted as steal: a round that
    lost some has a tail the host shaped, not the app."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if fields[0] == "cpu" else 0.0
    except (OSError, IndexError, ValueError):
        return 0.0
