"""The fairuse command as a user runs it: check a policy, serve the demo."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ..conftest import ROOT
from ..redis_servers import free_port

FAIRUSE = [sys.executable, "-m", "middleware.cli"]


def test_check_prints_the_four_plans():
    done = subprocess.run(
        [*FAIRUSE, "check", "plans.toml"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for plan in ("sandbox", "pro", "unlimited", "ltd"):
        assert plan in done.stdout
    assert "10,000" in done.stdout
    assert "50,000" in done.stdout


def test_check_names_file_table_and_key(tmp_path: Path):
    bad = tmp_path / "plans.toml"
    bad.write_text(
        (ROOT / "plans.toml")
        .read_text()
        .replace("sessions_per_month = 10_000", 'sessions_per_month = "ten"')
    )
    done = subprocess.run([*FAIRUSE, "check", str(bad)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{bad}: [plans.pro.limits.sessions_per_month] "
        'limit must be a positive integer or "unlimited", got "ten"'
    )


@pytest.mark.parametrize("command", [FAIRUSE, [sys.executable, "-m", "ratelimit"]])
def test_check_into_a_closed_pipe_exits_without_a_traceback(command: list[str]):
    """`fairuse check | head -1`: the reader is gone before the table is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*command, "check", "plans.toml"], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == b""


@pytest.mark.parametrize("broken", ["plans", "secret"])
def test_demo_with_a_bad_setup_stops_before_it_serves(tmp_path: Path, broken: str):
    """Starlette builds its middleware at the first event; the demo must not start first."""
    plans = tmp_path / "plans.toml"
    text = (ROOT / "plans.toml").read_text()
    if broken == "plans":
        text = text.replace("sessions_per_month = 10_000", 'sessions_per_month = "ten"')
        expected = "[plans.pro.limits.sessions_per_month]"
    else:
        text += '\n[events]\nwebhook = "http://127.0.0.1:9/hook"\n'
        text += 'webhook_secret_env = "FAIRUSE_TEST_UNSET_SECRET"\n'
        expected = "FAIRUSE_TEST_UNSET_SECRET"
    plans.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "FAIRUSE_TEST_UNSET_SECRET"}
    done = subprocess.run(
        [*FAIRUSE, "demo", "--plans", str(plans), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 1
    assert "ready" not in done.stdout
    assert expected in done.stderr


@contextmanager
def running_demo(*args: str) -> Iterator[tuple[int, str]]:
    """`fairuse demo` on a free port with `args`: its port and the first line it printed."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        [*FAIRUSE, "demo", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        yield port, demo.stdout.readline()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=10)
        if demo.stdout is not None:
            demo.stdout.close()


@pytest.mark.e2e
def test_demo_prints_its_url_when_ready_and_serves():
    with running_demo() as (port, line):
        assert line.startswith(f"fairuse demo ready at http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        who = {"X-Workspace-ID": "w", "X-Plan": "sandbox"}
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/chats/c/messages", json={"text": "hi"}, headers=who
        )
        assert reply.json() == {"chat_id": "c", "reply": "You said: hi"}


def test_an_installed_wheel_finds_the_shipped_policy_anywhere(tmp_path: Path):
    """Installed from a wheel there is no checkout: the default plans.toml must travel in it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("ratelimit", "middleware"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "plans.toml", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "FAIRUSE_COMPILE"}  # plain Python here
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(wheels), str(source)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    site = tmp_path / "site"
    (wheel,) = wheels.glob("fairuse-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    assert (site / "middleware" / "plans.toml").read_bytes() == (ROOT / "plans.toml").read_bytes()
    elsewhere = tmp_path / "elsewhere"  # no plans.toml here, and no checkout above
    elsewhere.mkdir()
    script = "import middleware.cli as c; print(c.__file__); raise SystemExit(c.main())"
    done = subprocess.run(
        [sys.executable, "-c", script, "check"],
        cwd=elsewhere, capture_output=True, text=True, env={**env, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(site / "middleware" / "cli.py")
    for plan in ("sandbox", "pro", "unlimited", "ltd"):
        assert plan in done.stdout


@pytest.mark.e2e
def test_the_ready_line_hides_the_storage_password():
    storage = f"redis://app:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens: never reached
    with running_demo("--storage", storage) as (port, line):
        assert line.startswith(f"fairuse demo ready at http://127.0.0.1:{port}")
        assert "s3cret" not in line
        assert "storage: redis://app:***@127.0.0.1:" in line
