"""Where an openloop run's slowest requests came from: alone, or in bursts around one stall.

    .venv/bin/python -m benchmarks.trace_episodes TRACE [TRACE ...] [--share 0.01] [--gap-ms 5]

Reads the files `OPENLOOP_TRACE` writes (a header, then `due_us latency_us service_us` per
request) and groups the slowest `share` of requests (those at or above the p99 by default)
into episodes: runs of slow requests due within `gap-ms` of each other. A stall of S ms at R
requests a second makes one episode of about R x S / 1000 requests, and the episodes' count
and sizes tell a machine's stalls from a tail spread over many requests.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Request:
    due_us: int
    latency_us: int
    service_us: int


@dataclass(frozen=True, slots=True)
class Episode:
    requests: tuple[Request, ...]

    @property
    def start_ms(self) -> float:
        return self.requests[0].due_us / 1000

    @property
    def worst_ms(self) -> float:
        return max(r.latency_us for r in self.requests) / 1000


def read_trace(path: Path) -> list[Request]:
    """The requests of one trace, in the order they were due."""
    lines = path.read_text().splitlines()
    if not lines or lines[0].split() != ["due_us", "latency_us", "service_us"]:
        raise ValueError(f"{path}: not an openloop trace (its first line names the columns)")
    requests = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise ValueError(f"{path}, line {number}: expected three whole numbers, got {line!r}")
        requests.append(Request(int(fields[0]), int(fields[1]), int(fields[2])))
    return sorted(requests, key=lambda r: r.due_us)


def threshold_us(requests: list[Request], share: float) -> int:
    """The latency at or above which the slowest `share` of the requests lie."""
    latencies = sorted(r.latency_us for r in requests)
    return latencies[min(len(latencies) - 1, int(len(latencies) * (1 - share)))]


def episodes(requests: list[Request], share: float = 0.01, gap_us: int = 5000) -> list[Episode]:
    """The slowest `share` of `requests`, grouped by how close together they fell due."""
    if not requests:
        return []
    slowest = threshold_us(requests, share)
    groups: list[list[Request]] = []
    for request in requests:  # in the order they were due
        if request.latency_us < slowest:
            continue
        if groups and request.due_us - groups[-1][-1].due_us < gap_us:
            groups[-1].append(request)
        else:
            groups.append([request])
    return [Episode(tuple(group)) for group in groups]


def summary(name: str, requests: list[Request], share: float, gap_us: int, shown: int = 10) -> str:
    found = episodes(requests, share, gap_us)
    slow = sum(len(e.requests) for e in found)
    fastest_slow = min((r.latency_us for e in found for r in e.requests), default=0)  # threshold
    largest = sorted(found, key=lambda e: len(e.requests), reverse=True)[:shown]
    in_largest = sum(len(e.requests) for e in largest)
    head = (
        f"{name}: {len(requests)} requests, slowest {share:.1%} from "
        f"{fastest_slow / 1000:.2f} ms: {slow} requests in {len(found)} "
        f"episodes, {in_largest} in the largest {len(largest)}"
    )
    rows = [
        f"  at {e.start_ms:9.1f} ms  {len(e.requests):4d} requests  worst {e.worst_ms:6.2f} ms"
        for e in largest
    ]
    return "\n".join([head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("traces", nargs="+", type=Path)
    parser.add_argument("--share", type=float, default=0.01, help="the slowest share (0.01: p99)")
    parser.add_argument("--gap-ms", type=float, default=5.0, help="closer than this: one episode")
    args = parser.parse_args()
    if not 0 < args.share < 1:
        parser.error("--share must lie between 0 and 1")
    for path in args.traces:
        try:
            requests = read_trace(path)
        except (OSError, ValueError) as error:
            parser.error(str(error))
        print(summary(str(path), requests, args.share, round(args.gap_ms * 1000)))


if __name__ == "__main__":
    main()
