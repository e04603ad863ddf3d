"""The paths compared, and the state each needs: a spent Sandbox quota (Sandbox is never
suspended), and an LTD account's second workspace that 50 refusals have suspended."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

SUSPENDED, SPENT = "suspended-account", "spent-account"  # one tenant per deny flavour
SUSPENSION_DENIALS = 50  # plans.toml [policy.suspension] denials


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str  # "allow" or "deny": what the protected app answers
    wrk_script: str
    locust_user: str
    account: str = ""  # the refused tenant (ACCOUNT for the scripts)

    @property
    def label(self) -> str:
        return f"{self.path}: {self.name}"


SCENARIOS = (
    Scenario("messages in live sessions", "allow", "sessions.lua", "SessionMessages"),
    Scenario("new chats", "allow", "new_chats.lua", "NewChats"),
    Scenario("suspended workspace", "deny", "suspended.lua", "SuspendedWorkspace", SUSPENDED),
    Scenario("spent quota, retried chats", "deny", "over_limit.lua", "OverLimitRetries", SPENT),
    Scenario(
        "spent quota, new chat ids", "deny", "over_limit_fresh.lua", "OverLimitNewChats", SPENT
    ),
)
SMOKE = (SCENARIOS[0], SCENARIOS[3])


def post(url: str, path: str, account: str, workspace: str, plan: str) -> tuple[int, str]:
    """One chat message; the status and the problem type (or "" for a success)."""
    headers = {
        "Content-Type": "application/json",
        "X-Account-ID": account,
        "X-Workspace-ID": workspace,
        "X-Plan": plan,
    }
    request = urllib.request.Request(f"{url}{path}", b'{"text": "hi"}', headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, str(json.loads(error.read()).get("type", ""))


def spend_sandbox_sessions(url: str, account: str) -> None:
    """Spend the tenant's 100 Sandbox chat sessions so that its new chats are refused."""
    for n in range(101):
        status, kind = post(
            url, f"/v1/chats/fill-{n}/messages", account, "full-workspace", "sandbox"
        )
        if status == 429 and n == 100:
            return
        if status != 200:
            raise RuntimeError(f"unexpected {status} {kind} while spending the Sandbox quota")
    raise RuntimeError(f"{url} never refused the Sandbox workspace's 101st chat")


def suspend_second_workspace(url: str, account: str) -> None:
    """An LTD account allows one workspace: the second one's 50th refusal suspends it."""
    if post(url, "/v1/chats/first/messages", account, "first-workspace", "ltd")[0] != 200:
        raise RuntimeError("the LTD account's first workspace was refused")
    for n in range(SUSPENSION_DENIALS):
        status, _ = post(url, f"/v1/chats/s{n}/messages", account, "second-workspace", "ltd")
        if status != 403:
            raise RuntimeError(f"the second LTD workspace got {status}, expected 403")
    status, kind = post(url, "/v1/chats/s/messages", account, "second-workspace", "ltd")
    if (status, kind) != (403, "urn:fairuse:problem:suspended"):
        raise RuntimeError(f"the second LTD workspace is not suspended: {status} {kind}")
