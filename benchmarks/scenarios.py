"""The paths compared, and the state each needs: a spent Sandbox quota, with or without the
shipped suspension rule (50 denials suspend a workspace for a day)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ratelimit.plans_file import load_policy

SUSPENDED, SPENT = "suspended-account", "spent-account"  # one tenant per deny flavour


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str  # "allow" or "deny": what the protected app answers
    wrk_script: str
    locust_user: str
    app: str = "protected"  # or "unsuspended": plans.toml without its suspension rule
    account: str = ""  # the over-limit tenant (ACCOUNT for the scripts)

    @property
    def label(self) -> str:
        return f"{self.path}: {self.name}"


SCENARIOS = (
    Scenario("messages in live sessions", "allow", "sessions.lua", "SessionMessages"),
    Scenario("new chats", "allow", "new_chats.lua", "NewChats"),
    Scenario("suspended workspace", "deny", "over_limit.lua", "OverLimitRetries", "protected",
             SUSPENDED),
    Scenario("spent quota, retried chats", "deny", "over_limit.lua", "OverLimitRetries",
             "unsuspended", SPENT),
    Scenario("spent quota, new chat ids", "deny", "over_limit_fresh.lua", "OverLimitNewChats",
             "unsuspended", SPENT),
)  # fmt: skip
SMOKE = (SCENARIOS[0], SCENARIOS[3])


def plans_without_suspension(source: Path, folder: Path) -> Path:
    """A copy of plans.toml without `[policy.suspension]`, checked to suspend no plan."""
    kept, skipping = [], False
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip() == "[policy.suspension]":
            skipping = True
            continue
        if skipping and (line.startswith("[") or not line.strip()):
            skipping = False
        if not skipping:
            kept.append(line)
    target = folder / "plans-without-suspension.toml"
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    if any(plan.suspension is not None for plan in load_policy(target).plans.values()):
        raise RuntimeError(f"{target}: a plan still has a suspension rule")
    return target


def spend_sandbox_sessions(url: str, account: str) -> None:
    """Spend the tenant's 100 Sandbox chat sessions so that its new chats are refused."""
    headers = {
        "Content-Type": "application/json",
        "X-Account-ID": account,
        "X-Workspace-ID": "full-workspace",
        "X-Plan": "sandbox",
    }
    for n in range(101):
        request = urllib.request.Request(
            f"{url}/v1/chats/fill-{n}/messages", b'{"text": "hi"}', headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as error:
            if error.code == 429 and n == 100:
                return
            raise
    raise RuntimeError(f"{url} never refused the Sandbox workspace's 101st chat")
