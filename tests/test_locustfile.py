"""benchmarks/locustfile.py run by Locust itself against the demo: each user class measures the
path it names, with many users at once and across `--processes`."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.demo import create_app

from .conftest import ROOT
from .servers import serve_in_thread

pytestmark = pytest.mark.benchmark
LOCUST = Path(sys.executable).with_name("locust")


class Answers:
    """Pure ASGI: notes each chat request's id, workspace, status and refusing limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/chats/"):
            return await self.app(scope, receive, send)
        chat = scope["path"].split("/")[3]
        workspace = dict(scope["headers"]).get(b"x-workspace-id", b"").decode()
        status, body = [0], bytearray()

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            else:
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    limit = json.loads(body).get("limit", "") if status[0] != 200 else ""
                    self.seen.append((chat, workspace, status[0], limit))
            await send(message)

        await self.app(scope, receive, noting)


@pytest.fixture
def answers() -> Iterator[tuple[str, Answers]]:
    app = Answers(create_app(ROOT / "plans.toml", "memory://"))
    with serve_in_thread(app) as url:
        yield url, app


def run_locust(url: str, tmp_path: Path, users: int, *classes: str, extra: tuple[str, ...] = ()):
    prefix = tmp_path / "stats"
    done = subprocess.run(
        [str(LOCUST), "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless",
         "-u", str(users), "-r", str(users), "-t", "4s", "--host", url, "--csv", str(prefix),
         "--only-summary", *extra, *classes],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    with (tmp_path / "stats_stats.csv").open() as rows:
        stats = {row["Name"]: row for row in csv.DictReader(rows)}
    return done, stats


@pytest.mark.skipif(shutil.which(str(LOCUST)) is None, reason="locust is not installed")
def test_many_deny_users_measure_refusals_only(answers: tuple[str, Answers], tmp_path: Path):
    """Sixty-four users at once: the set-up spends the quota with chats of each user's own (one
    shared chat would meet its flood guard first and be taken for a spent quota), and what is
    measured is the refusal the path names, never an allowed request."""
    url, app = answers
    done, stats = run_locust(url, tmp_path, 64, "OverLimitRetries", "SuspendedWorkspace")
    assert int(stats["Aggregated"]["Failure Count"]) == 0, done.stderr[-3000:]
    retried = Counter((ws, s, limit) for chat, ws, s, limit in app.seen if chat[:6] == "retry-")
    assert set(retried) == {
        ("full-workspace", 429, "sessions_per_month"),
        ("second-workspace", 403, ""),  # suspended: the refusal names no limit
    }, retried
    spent_by = Counter(limit for chat, ws, s, limit in app.seen if s == 429)
    assert set(spent_by) == {"sessions_per_month"}, spent_by  # never the flood guard
    assert int(stats["over limit"]["Request Count"]) > 0
    assert int(stats["suspended"]["Request Count"]) > 0


@pytest.mark.skipif(shutil.which(str(LOCUST)) is None, reason="locust is not installed")
def test_new_chats_are_new_in_every_process(answers: tuple[str, Answers], tmp_path: Path):
    url, app = answers
    done, stats = run_locust(url, tmp_path, 4, "NewChats", extra=("--processes", "2"))
    assert int(stats["Aggregated"]["Failure Count"]) == 0, done.stderr[-3000:]
    chats = Counter(chat for chat, _, _, _ in app.seen)
    assert len(chats) > 100, done.stderr[-3000:]
    assert max(chats.values()) == 1, chats.most_common(3)
