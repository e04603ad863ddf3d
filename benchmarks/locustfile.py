"""Locust users for each hot path of the demo chatbot API, bare or behind fairuse.

    locust -f benchmarks/locustfile.py --host http://127.0.0.1:8000

Each user class is one path; name classes on the command line to run only some. The same users
run against the bare app (FAIRUSE_BARE=1), where nothing is ever refused: a check takes a 200
without RateLimit fields for the bare app's answer, so one file measures both, while a protected
answer other than the path's own counts as a failure. See benchmarks/README.md.
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, ClassVar

from locust import FastHttpUser, task

BODY = '{"text": "hello"}'
JSON = {"Content-Type": "application/json"}
SESSIONS = int(os.environ.get("SESSIONS", "10000"))
ACCOUNT = os.environ.get("ACCOUNT", "")  # names the tenants, so that runs need not share them
SANDBOX_SESSIONS = 100  # plans.toml: Sandbox chat sessions per month
FILE_LIMIT = 5_000_000  # plans.toml: 5 MB per uploaded file
BOUNDARY = "fairuse-bench-boundary"
_ids = itertools.count()


def identity(account: str, plan: str, workspace: str | None = None) -> dict[str, str]:
    return {**JSON, "X-Account-ID": account, "X-Workspace-ID": workspace or account, "X-Plan": plan}


def multipart(size: int) -> str:
    """One file field of `size` bytes (ASCII), built once per class, not per request."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head + "x" * size + f"\r\n--{BOUNDARY}--\r\n"


def expect(response: Any, *statuses: int) -> None:
    if response.status_code in statuses:
        response.success()
    else:
        response.failure(f"status {response.status_code}, expected one of {statuses}")


def expect_refusal(response: Any, status: int, limits: tuple[str, ...] = ()) -> None:
    """The path's refusal (by one of `limits`, when given), or the bare app's 200; anything
    else means the path measured something else (a quota not spent, a flood guard)."""
    if response.status_code == 200 and "ratelimit" not in response.headers:
        response.success()  # the bare app, which refuses nothing
    elif response.status_code == status and (not limits or refused_by(response) in limits):
        response.success()
    else:
        why = refused_by(response) or "no refusal"
        response.failure(f"status {response.status_code} ({why}), expected {status} {limits}")


def refused_by(response: Any) -> str:
    """The limit a problem+json refusal names, or ""."""
    try:
        return str(response.json().get("limit", ""))
    except (ValueError, AttributeError):
        return ""


def unique() -> str:
    """A tag of its own for each user, in every process of `locust --processes`."""
    return uuid.uuid4().hex[:12]


class SessionMessages(FastHttpUser):
    """Allow path: messages in chats already started (Unlimited plan, 100 accounts)."""

    @task
    def message(self) -> None:
        n = next(_ids) % SESSIONS
        who = identity(f"{ACCOUNT or 'sa'}{n % 100}", "unlimited")
        with self.client.post(
            f"/v1/chats/c{n}/messages", data=BODY, headers=who, name="session message",
            catch_response=True,
        ) as response:  # fmt: skip
            expect(response, 200)


class NewChats(FastHttpUser):
    """Allow path: every request starts a chat, so two quotas count (1000 accounts)."""

    def on_start(self) -> None:
        self.prefix = unique()

    @task
    def new_chat(self) -> None:
        n = next(_ids)
        who = identity(f"{ACCOUNT or 'na'}{n % 1000}", "unlimited")
        with self.client.post(
            f"/v1/chats/n{self.prefix}-{n}/messages", data=BODY, headers=who, name="new chat",
            catch_response=True,
        ) as response:  # fmt: skip
            expect(response, 200)


class _OverLimit(FastHttpUser):
    abstract = True
    who: ClassVar[dict[str, str]] = identity(ACCOUNT or "full-account", "sandbox", "full-workspace")
    quotas = ("sessions_per_month", "account_sessions_per_month")

    def on_start(self) -> None:
        """Spend the Sandbox workspace's sessions, together with the other users: new chats of
        this user's own until a sessions quota refuses one (never, when bare)."""
        self.tag = unique()
        for n in range(SANDBOX_SESSIONS + 1):
            with self.client.post(
                f"/v1/chats/fill-{self.tag}-{n}/messages", data=BODY, headers=self.who,
                name="fill", catch_response=True,
            ) as response:  # fmt: skip
                if response.status_code == 200:
                    response.success()
                    continue
                expect_refusal(response, 429, self.quotas)
                return


class OverLimitRetries(_OverLimit):
    """Deny path: the over-quota workspace retries the same refused chats (a known block).

    Sandbox is never suspended: these stay 429s until the month ends.
    """

    @task
    def retry(self) -> None:
        n = next(_ids) % 50
        with self.client.post(
            f"/v1/chats/retry-{n}/messages", data=BODY, headers=self.who, name="over limit",
            catch_response=True,
        ) as response:  # fmt: skip
            expect_refusal(response, 429, self.quotas)


class OverLimitNewChats(_OverLimit):
    """Deny path, worst case: a never-seen chat id each time (only Redis knows if it is live)."""

    @task
    def fresh(self) -> None:
        n = next(_ids)
        with self.client.post(
            f"/v1/chats/fresh{self.tag}-{n}/messages", data=BODY, headers=self.who,
            name="over limit, new chat id", catch_response=True,
        ) as response:  # fmt: skip
            expect_refusal(response, 429, self.quotas)


class SuspendedWorkspace(FastHttpUser):
    """Deny path: an LTD account's second workspace (the plan allows one), suspended by its
    50th refusal; from then on each request is refused as suspended (403)."""

    account = ACCOUNT or "suspended-account"
    second: ClassVar[dict[str, str]] = identity(account, "ltd", "second-workspace")

    def on_start(self) -> None:
        tag = unique()  # each user's chats its own: one chat's flood guard takes 20 at once
        first = identity(self.account, "ltd", "first-workspace")
        with self.client.post(
            f"/v1/chats/first-{tag}/messages", data=BODY, headers=first, name="fill",
            catch_response=True,
        ) as response:  # fmt: skip
            expect(response, 200)  # every user's first request: this workspace came first
        for n in range(50):  # plans.toml: 50 refusals in an hour suspend the workspace
            with self.client.post(
                f"/v1/chats/s{tag}-{n}/messages", data=BODY, headers=self.second, name="fill",
                catch_response=True,
            ) as response:  # fmt: skip
                expect(response, 403, 200)

    @task
    def retry(self) -> None:
        n = next(_ids) % 50
        with self.client.post(
            f"/v1/chats/retry-{n}/messages", data=BODY, headers=self.second, name="suspended",
            catch_response=True,
        ) as response:  # fmt: skip
            expect_refusal(response, 403)


class Uploads(FastHttpUser):
    """Uploads under and over the 5 MB file limit.

    Over the limit the upload guard answers 413; an app without it stores the file (201), so
    both count as success and the figures still compare.
    """

    small = multipart(1_000_000)
    large = multipart(FILE_LIMIT + 1_000_000)
    headers: ClassVar[dict[str, str]] = {
        **identity("up", "pro"),
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }

    @task(4)
    def under_limit(self) -> None:
        with self.client.post(
            "/v1/files", data=self.small, headers=self.headers, name="upload 1 MB",
            catch_response=True,
        ) as response:  # fmt: skip
            expect(response, 201)

    @task(1)
    def over_limit(self) -> None:
        with self.client.post(
            "/v1/files", data=self.large, headers=self.headers, name="upload 6 MB",
            catch_response=True,
        ) as response:  # fmt: skip
            expect(response, 413, 201)
