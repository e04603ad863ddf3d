"""The admin commands against a served app's Redis: suspension from the first denial to
`fairuse unsuspend`, an override in force on the next request, the events stream."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from middleware.cli import main
from ratelimit import ManualClock

from ..conftest import ROOT
from ..redis_servers import plain
from ..servers import serve_in_thread
from .test_events_http import POLICY, Collected, app

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
WHO = {"X-Account-ID": "acme", "X-Workspace-ID": "main", "X-Plan": "team"}


def fairuse(redis_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a `fairuse` admin command in this process; its output."""
    assert main([*args, "--storage", redis_url, "--plans", str(POLICY)]) == 0
    return capsys.readouterr().out


def served(redis_url: str, **options: Any) -> AbstractContextManager[str]:
    # The app's clock stands still at the real time, so the admin commands' own clock agrees.
    return serve_in_thread(app(redis_url, clock=ManualClock(time.time()), **options))


def test_suspension_from_the_first_denial_to_unsuspend(redis_url: str, capsys):
    collected = Collected()
    with served(redis_url, on_event=collected) as url, httpx.Client(base_url=url) as client:
        for _ in range(10):
            assert client.post("/calls", headers=WHO).status_code == 200
        assert [client.post("/calls", headers=WHO).status_code for _ in range(2)] == [429] * 2
        suspending = client.post("/calls", headers=WHO)  # the third denial suspends: says so
        assert suspending.status_code == 403
        refused = client.post("/calls", headers=WHO)
        assert refused.status_code == 403
        body = refused.json()
        assert body["type"] == "urn:fairuse:problem:suspended"
        assert body["contact"] == "help@example.test"
        assert client.get("/status", headers=WHO).status_code == 403
        assert collected.wait_for(3) == ["usage.threshold", "limit.exceeded", "workspace.suspended"]

        report = fairuse(redis_url, capsys, "usage", "acme", "main", "--plan", "team")
        # to the minute, rounded up as the 403's sentence says it
        until = datetime.fromisoformat(body["suspended_until"]).timestamp()
        minute = datetime.fromtimestamp(math.ceil(until / 60) * 60, UTC).strftime("%Y-%m-%d %H:%M")
        assert f"suspended until {minute} UTC" in report
        assert f"at {minute[11:]} UTC" in body["detail"]
        assert "suspension: acme/main until" in report
        assert "(auto)" in report

        done = subprocess.run(  # the installed entry point, as an operator runs it
            [sys.executable, "-m", "middleware.cli", "unsuspend", "acme", "main"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"FAIRUSE_STORAGE": redis_url, "PATH": ""},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "acme/main: suspension lifted\n"
        assert client.get("/status", headers=WHO).status_code == 200
        assert client.post("/calls", headers=WHO).status_code == 429  # the hour is still spent

        # the hour's counter, and the count of denials since the suspension was lifted
        assert fairuse(redis_url, capsys, "reset", "acme") == "acme: deleted 2 counter key(s)\n"
        assert client.post("/calls", headers=WHO).status_code == 200


def test_an_override_is_in_force_on_the_next_request(redis_url: str, capsys):
    with served(redis_url) as url, httpx.Client(base_url=url) as client:
        for _ in range(10):
            client.post("/calls", headers=WHO)
        assert client.post("/calls", headers=WHO).status_code == 429

        said = fairuse(redis_url, capsys, "override", "set", "acme", "calls_per_hour", "12")
        assert said == "acme: calls_per_hour = 12 until lifted\n"
        allowed = client.post("/calls", headers=WHO)
        assert allowed.status_code == 200
        assert '"calls_per_hour";q=12;' in allowed.headers["ratelimit-policy"]
        assert "calls_per_hour  (account)  12      no end" in fairuse(
            redis_url, capsys, "override", "list", "acme"
        )
        report = fairuse(redis_url, capsys, "usage", "acme", "main", "--plan", "team")
        assert "* calls_per_hour: override; the plan says 10" in report

        fairuse(redis_url, capsys, "override", "clear", "acme", "calls_per_hour")
        assert client.post("/calls", headers=WHO).status_code == 429


def test_events_tail_prints_the_stream_and_reads_once_per_group(redis_url: str, capsys):
    events = '\n[events]\nstream = "app:events"\n'
    with served(redis_url, extra_toml=events) as url, httpx.Client(base_url=url) as client:
        for _ in range(11):
            client.post("/calls", headers=WHO)
    tail = ("events", "tail", "--stream", "app:events")
    lines = fairuse(redis_url, capsys, *tail).splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["usage.threshold", "limit.exceeded"]
    grouped = fairuse(redis_url, capsys, *tail, "--group", "mailer").splitlines()
    assert grouped == lines
    assert fairuse(redis_url, capsys, *tail, "--group", "mailer") == ""  # already read


def test_events_tail_for_a_group_loses_nothing_into_a_closed_pipe(redis_url: str, capsys):
    """`fairuse events tail --group mailer | head -1`: what was not printed is read again."""
    events = '\n[events]\nstream = "app:events"\n'
    with served(redis_url, extra_toml=events) as url, httpx.Client(base_url=url) as client:
        for _ in range(11):
            client.post("/calls", headers=WHO)
    tail = ["events", "tail", "--stream", "app:events", "--group", "mailer"]
    options = ["--storage", redis_url, "--plans", str(POLICY)]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "middleware.cli", *tail, *options],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, b"")
    lines = fairuse(redis_url, capsys, *tail).splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["usage.threshold", "limit.exceeded"]


def test_unsuspend_of_an_account_names_its_suspended_workspaces(redis_url: str, capsys):
    fairuse(redis_url, capsys, "suspend", "solo", "solo", "--for", "1 hour")
    said = fairuse(redis_url, capsys, "unsuspend", "solo")
    assert said == (
        "solo: had no account-wide suspension; suspended workspaces: solo "
        "(fairuse unsuspend solo WORKSPACE)\n"
    )
    assert (
        fairuse(redis_url, capsys, "unsuspend", "solo", "solo") == "solo/solo: suspension lifted\n"
    )


def test_events_tail_tells_a_storage_failure_in_one_line(redis_url: str, capsys):
    nobody = "redis://127.0.0.1:1/0"
    assert main(["events", "tail", "--storage", nobody, "--plans", str(POLICY)]) == 1
    assert capsys.readouterr().err.startswith("fairuse: storage failed: ConnectionError")
    redis.Redis.from_url(plain(redis_url)).set("not-a-stream", "x")
    tail = ["events", "tail", "--stream", "not-a-stream", "--group", "g"]
    assert main([*tail, "--storage", redis_url, "--plans", str(POLICY)]) == 1
    assert capsys.readouterr().err.startswith("fairuse: storage failed: ResponseError: WRONGTYPE")


def test_bad_admin_input_is_refused_with_a_message(redis_url: str, capsys):
    assert main(["override", "set", "acme", "nope", "5", "--storage", redis_url]) == 1
    assert "unknown limit 'nope'" in capsys.readouterr().err
    assert main(["usage", "acme", "--plan", "team", "--storage", ""]) == 2
    assert "--storage URL is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["suspend", "acme", "--until", "next week", "--storage", redis_url])
    assert "expected an ISO date or time" in capsys.readouterr().err


def test_events_tail_follow_prints_new_events_as_they_come(redis_url: str):
    follow = subprocess.Popen(
        [sys.executable, "-m", "middleware.cli", "events", "tail", "--follow", "--count", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={"FAIRUSE_STORAGE": redis_url, "PATH": "", "PYTHONUNBUFFERED": "1"},
    )
    try:
        client = redis.Redis.from_url(plain(redis_url))
        event = {"id": "e1", "type": "usage.threshold"}
        assert follow.stdout is not None
        for _ in range(100):  # until the reader is waiting: its XREAD shows as a blocked client
            if int(client.info("clients")["blocked_clients"]) == 1:
                break
            time.sleep(0.05)
        client.xadd("fairuse:events", {"id": "e1", "type": "x", "event": json.dumps(event)})
        client.close()
        assert json.loads(follow.stdout.readline()) == event
    finally:
        follow.terminate()
        follow.communicate(timeout=10)  # reaps it and closes its pipe


@pytest.mark.parametrize(
    "command", [["suspend", "acme", "main"], ["usage", "acme", "main", "--plan", "team"]]
)
def test_memory_storage_is_refused_rather_than_acted_on(command: list[str], capsys):
    """An app's memory:// storage lives in its own process: a command on another would report
    success on a store thrown away at once."""
    assert main([*command, "--storage", "memory://", "--plans", str(POLICY)]) == 2
    err = capsys.readouterr().err
    assert "memory:// lives inside one app process" in err


def test_events_tail_refuses_a_count_for_a_group(redis_url: str, capsys):
    """A group reads every event it has not been given: a --count it would ignore is refused."""
    tail = ["events", "tail", "--stream", "app:events", "--group", "g", "--count", "3"]
    assert main([*tail, "--storage", redis_url, "--plans", str(POLICY)]) == 1
    assert "--count picks the newest events, but --group" in capsys.readouterr().err
