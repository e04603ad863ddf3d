"""Refusing a 1 GB upload whose first file is 6 MB: bytes the server read, and its RSS growth.

    .venv/bin/python benchmarks/upload_memory.py

Starts the demo (shipped plans.toml: 5 MB per file, memory storage) under uvicorn in a
subprocess, streams the upload from a generator (the client never holds more than one chunk),
and prints how many body bytes the server handed to the app stack before it answered 413, and
how much the server's resident memory grew (from /proc/PID/status). Once with a declared
Content-Length of 1 GB, once chunked.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = "bench-boundary"
CHUNK = 64 * 1024
TOTAL = 1_000_000_000
FIRST = 6_000_000
CAP = 5_000_000


def serve(port: int) -> None:
    """The server side: the demo behind fairuse, wrapped in a counter of body bytes read."""
    import uvicorn
    from starlette.types import Message, Receive, Scope, Send

    from middleware.demo import create_app

    demo = create_app(ROOT / "plans.toml")
    stats = {"read": 0, "largest_chunk": 0, "status": 0}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_bench/stats":
            body = json.dumps(stats).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"] == "/v1/files":
            stats.update(read=0, largest_chunk=0, status=0)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                size = len(message.get("body", b""))
                stats["read"] += size
                stats["largest_chunk"] = max(stats["largest_chunk"], size)
            return message

        async def status_send(message: Message) -> None:
            if message["type"] == "http.response.start" and scope["path"] == "/v1/files":
                stats["status"] = message["status"]
            await send(message)

        await demo(scope, counting_receive, status_send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def upload_body(sent: list[int], total: int = TOTAL, first: int = FIRST) -> Iterator[bytes]:
    """A multipart body of `total` bytes: a `first`-byte file, then one file for the rest."""
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=file;"
        ' filename="first.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    second = (
        f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=rest;"
        ' filename="rest.bin"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    rest = total - len(head) - first - len(second) - len(tail)
    block = b"a" * CHUNK
    pieces = chain([head], _blocks(block, first), [second], _blocks(block, rest), [tail])
    for piece in pieces:
        sent[0] += len(piece)
        yield piece


def _blocks(block: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, size, len(block)):
        yield block[: min(len(block), size - start)]


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM (Linux >= 4.0), so the peak afterwards is this upload's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure(client: httpx.Client, pid: int, declared: bool) -> None:
    headers = {
        "X-Workspace-ID": "bench",
        "X-Plan": "pro",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    if declared:
        headers["Content-Length"] = str(TOTAL)
    small = b"".join(upload_body([0], total=10_000, first=1000))
    warm = client.post("/v1/files", content=small, headers={**headers, "Content-Length": "10000"})
    if warm.status_code != 201:
        raise SystemExit(f"the warm-up upload failed: {warm.status_code} {warm.text}")
    exact = reset_peak(pid)
    before = status_kb(pid, "VmRSS")
    sent = [0]
    started = time.perf_counter()
    response = client.post("/v1/files", content=upload_body(sent), headers=headers)
    elapsed = time.perf_counter() - started
    peak = status_kb(pid, "VmHWM" if exact else "VmRSS")
    after = status_kb(pid, "VmRSS")
    stats = client.get("/_bench/stats").json()
    framing = "Content-Length: 1,000,000,000" if declared else "chunked, no Content-Length"
    print(f"1 GB multipart upload, first file {FIRST:,} bytes ({framing})")
    print(f"  answer: {response.status_code} {response.json().get('limit')} in {elapsed:.2f} s")
    print(f"  client generated: {sent[0]:,} bytes (the rest was never produced)")
    print(
        f"  server read before refusing: {stats['read']:,} bytes = cap {CAP:,}"
        f" + {stats['read'] - CAP:,} (largest chunk {stats['largest_chunk']:,})"
    )
    print(
        f"  server RSS: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB after,"
        f" growth {(peak - before) / 1024:.1f} MiB at {'peak (VmHWM)' if exact else 'the end'}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the demo server did not start") from None
                    time.sleep(0.1)
            print(
                f"server pid {server.pid}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
            )
            measure(client, server.pid, declared=True)
            measure(client, server.pid, declared=False)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
