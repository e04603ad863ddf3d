"""The processes a comparison runs: its own redis-server and two uvicorn apps, pinned to cores."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cores:
    """The app on one CPU, load generator and Redis on another (no pinning without taskset)."""

    app: str | None
    load: str | None

    @classmethod
    def detect(cls) -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(str(cpus[0]), str(cpus[1]))

    def pin(self, core: str | None, argv: list[str]) -> list[str]:
        return ["taskset", "-c", core, *argv] if core is not None else argv


@dataclass
class Running:
    """Processes started here, stopped (by their own pid) in reverse order."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fairuse-bench-")))

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.processes.append(process)
        self.pids[name] = process.pid

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()


def start_redis(running: Running, cores: Cores) -> int:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    argv = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(running.logs), "--protected-mode", "no",
        "--unixsocket", str(redis_socket(running)), "--unixsocketperm", "700",
    ]  # fmt: skip
    running.start("redis", cores.pin(cores.load, argv))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis_command(port, "PING") == "PONG":
                return port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start; see {running.logs}/redis.log")


def redis_socket(running: Running) -> Path:
    """Where start_redis's server also listens: its unix socket, in the run's own directory."""
    return running.logs / "redis.sock"


def start_app(
    running: Running,
    cores: Cores,
    name: str,
    env: dict[str, str],
    root: Path = ROOT,
    factory: str = "middleware.demo:app_from_env",
) -> str:
    """uvicorn, 1 worker, uvloop and httptools, serving `factory` (the demo, or
    benchmarks.floor's) from `root` (the project, or the compiled build's copy of it:
    scripts/compile)."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", factory,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {**os.environ, **env, "PYTHONPATH": str(root)}  # its modules before the installed ones
    running.start(name, cores.pin(cores.app, argv), env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} app did not start; see {running.logs}/{name}.log")


def redis_command(port: int, *args: str) -> str:
    """One command over plain RESP; enough for PING and INFO without a client library."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload.encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(b"+") and data.endswith(b"\r\n"):
                return data[1:-2].decode()
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    return rest[: int(head[1:])].decode()
            if data.startswith(b"-"):
                raise RuntimeError(data.decode().strip())
    raise OSError("connection closed")


def redis_counters(port: int) -> dict[str, float]:
    """Totals to difference around a run: all commands (also those run by the script), EVALSHA
    and EVAL calls from clients, client read events (one per batch a client sends), keys
    Redis expired, and the CPU seconds its main thread used (user and system)."""
    counters = {"commands": 0.0, "evalsha": 0.0, "reads": 0.0, "expired": 0.0, "cpu": 0.0}
    for line in redis_command(port, "INFO", "all").splitlines():
        if line.startswith("total_commands_processed:"):
            counters["commands"] = int(line.split(":")[1])
        elif line.startswith("total_reads_processed:"):
            counters["reads"] = int(line.split(":")[1])
        elif line.startswith("expired_keys:"):
            counters["expired"] = int(line.split(":")[1])
        elif line.startswith(("used_cpu_user_main_thread:", "used_cpu_sys_main_thread:")):
            counters["cpu"] += float(line.split(":")[1])
        elif line.startswith(("cmdstat_evalsha:", "cmdstat_eval:")):
            counters["evalsha"] += int(line.split("calls=")[1].split(",")[0])
    return counters


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


COMPILED = ROOT / "build" / "compiled"


def build_root(build: str) -> tuple[Path, str]:
    """The copy of the project to run, and the build's name: the compiled one when `build`
    asks for it and this machine can compile it, else this checkout as pure Python."""
    if build == "compiled":
        compiled = compiled_build()
        if compiled is not None:
            return compiled, "compiled (mypyc)"
    return ROOT, "pure Python"


def compiled_build() -> Path | None:
    """The compiled build's copy of the project, built or brought up to date; None where this
    machine has no C compiler (scripts/compile says so)."""
    done = subprocess.run([str(ROOT / "scripts" / "compile")], cwd=ROOT, check=False)
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise RuntimeError("scripts/compile failed; see its output above")
    return COMPILED
