"""Real redis-server processes for the tests, on free loopback ports, started and killed here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode


def redis_binary() -> str:
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)),
        None,
    )
    if found is None:
        raise RuntimeError(
            "redis-server not found: scripts/test installs it (apt-get install redis-server)"
        )
    return found


def patient(url: str, timeout: float = 2.0, pool_timeout: float = 5.0) -> str:
    """`url` with timeouts for tests of behaviour, not of latency.

    The production read timeout (0.25 s) is shorter than the stalls a shared 2-core machine running
    the suite, three cluster nodes and a sentinel can have; tests of timeouts and outages start
    their own servers and keep the defaults.
    """
    base, _, query = url.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    params.update(timeout=str(timeout), pool_timeout=str(pool_timeout))
    return f"{base}?{urlencode(params)}"


def plain(url: str) -> str:
    """`url` without fairuse's own query parameters, for a bare redis-py client."""
    return url.partition("?")[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server on 127.0.0.1; `stop` and `start` again keep its port."""

    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix=f"fairuse-redis-{self.port}-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        args = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            "--protected-mode", "no", *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited")
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        """Stop for good and delete its directory (`stop` keeps it for a restart)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args: str) -> str:
        """Run one command with redis-cli-free plain RESP, for test set-up and inspection."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            return str(client.execute_command(*args))  # type: ignore[no-untyped-call]
        finally:
            client.close()
