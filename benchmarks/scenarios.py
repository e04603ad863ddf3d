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
    wrk_env: tuple[tuple[str, str], ...]  # what benchmarks/wrk/chats.lua sends (its header)
    locust_user: str
    account: str = ""  # the refused tenant (ACCOUNT for the load generators)

    @property
    def label(self) -> str:
        return f"{self.path}: {self.name}"


def _spread(prefix: str, accounts: int, chats: int) -> tuple[tuple[str, str], ...]:
    """Unlimited-plan chats over many tenants, each account its own workspace."""
    return (
        ("PLAN", "unlimited"),
        ("ACCOUNTS", str(accounts)),
        ("ACCOUNT_PREFIX", prefix),
        ("CHATS", str(chats)),
        ("CHAT_PREFIX", "c" if chats else "n"),
    )


# Messages in live chats: 100,000 chats over 100 accounts (1,000 chats each, half the hourly
# allowance). At 30,000 requests a second each chat still gets under one message in three
# seconds, so none empties its flood guard's bucket (30 a minute, bursts of 20).
LIVE_SESSIONS = _spread("sa", 100, 100_000)
# A new chat every request: the session starts and two quotas count. 2,000 accounts of 2,000
# chats an hour each leave room for a whole default run at any rate this box reaches.
NEW_CHATS = _spread("na", 2000, 0)
# The spent Sandbox workspace: the same 50 refused chat ids retried, or a never-seen one each
# time (only Redis knows whether that chat is live, so each costs one EVALSHA).
SPENT_RETRIED = (
    ("PLAN", "sandbox"),
    ("WORKSPACE", "full-workspace"),
    ("CHATS", "50"),
    ("CHAT_PREFIX", "retry-"),
)
SPENT_FRESH = (("PLAN", "sandbox"), ("WORKSPACE", "full-workspace"), ("CHAT_PREFIX", "fresh"))
# The suspended second workspace of an LTD account: every request is refused as suspended.
SUSPENDED_RETRIED = (
    ("PLAN", "ltd"),
    ("WORKSPACE", "second-workspace"),
    ("CHATS", "50"),
    ("CHAT_PREFIX", "retry-"),
)

SCENARIOS = (
    Scenario("messages in live sessions", "allow", LIVE_SESSIONS, "SessionMessages"),
    Scenario("new chats", "allow", NEW_CHATS, "NewChats"),
    Scenario("suspended workspace", "deny", SUSPENDED_RETRIED, "SuspendedWorkspace", SUSPENDED),
    Scenario("spent quota, retried chats", "deny", SPENT_RETRIED, "OverLimitRetries", SPENT),
    Scenario("spent quota, new chat ids", "deny", SPENT_FRESH, "OverLimitNewChats", SPENT),
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
