"""The contract end users and load tests rely on, tried over real HTTP as a new user would."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from middleware.demo import create_app
from middleware.fairuse import FairUseMiddleware
from ratelimit import Decision, Identity, Limiter, ManualClock
from ratelimit.storage.redis import RedisStorage

from ..conftest import ROOT
from ..servers import serve_in_thread
from .conftest import NOW, headers
from .uploading import server_errors

pytestmark = pytest.mark.e2e
MONTH_END = datetime(2026, 12, 1, tzinfo=UTC)


def chat(client: httpx.Client, chat_id: str, who: Any) -> httpx.Response:
    return client.post(f"/v1/chats/{chat_id}/messages", json={"text": "hello"}, headers=who)


def middleware_of(client: httpx.Client) -> FairUseMiddleware:
    stack = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(stack, FairUseMiddleware):
        stack = stack.app
    return stack


async def spend_tickets(served: Limiter, count: int) -> Decision:
    """Spend tickets through the served limiter's storage from this test's own event loop."""
    storage = served.storage
    if isinstance(storage, RedisStorage):
        storage = RedisStorage(storage.url)
    limiter = Limiter(served.policy, storage, clock=served.clock)
    try:
        return await limiter.check(Identity("lifetime", "only", "ltd"), "ticket", cost=count)
    finally:
        if storage is not served.storage:
            await storage.close()


def test_sandbox_101st_session_is_refused_with_an_upgrade_hint(demo: httpx.Client):
    who = headers("sandbox-ws", "sandbox")
    for n in range(100):
        response = chat(demo, f"chat-{n}", who)
        assert response.status_code == 200, response.text
        assert response.json() == {"chat_id": f"chat-{n}", "reply": "You said: hello"}
    for _ in range(3):  # more messages in a live session never count as new sessions
        assert chat(demo, "chat-7", who).status_code == 200

    refused = chat(demo, "chat-100", who)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["cache-control"] == "no-store"
    assert int(refused.headers["retry-after"]) == int((MONTH_END - NOW).total_seconds())
    body = refused.json()
    assert body == {
        "type": "urn:fairuse:problem:limit-reached",
        "title": "Limit reached",
        "status": 429,
        "detail": (
            "This workspace has used all 100 chat sessions included in the Sandbox plan this "
            "month. Chat sessions reset on 1 December 2026 at 00:00 UTC. Upgrade to Pro for "
            "10,000 chat sessions a month."
        ),
        "plan": "sandbox",
        "limit": "sessions_per_month",
        "limit_value": 100,
        "used": 100,
        "resets_at": "2026-12-01T00:00:00Z",
        "retry_after": int((MONTH_END - NOW).total_seconds()),
        "violated-policies": ["sessions_per_month", "account_sessions_per_month"],
        "upgrade": {
            "plan": "pro",
            "url": "https://jikoo.example/pricing#pro",
            "limit_value": 10000,
        },
    }
    assert refused.headers["ratelimit"].startswith('"sessions_per_month";r=0;t=')
    assert '"sessions_per_month";q=100;w=2592000' in refused.headers["ratelimit-policy"]

    usage = demo.get("/v1/usage", headers=who).json()
    sessions = next(item for item in usage["limits"] if item["name"] == "sessions_per_month")
    assert (sessions["used"], sessions["remaining"], sessions["limit"]) == (100, 0, 100)


def one_past(
    demo: httpx.Client, chats: int, plan: str, account: str, workspaces: int
) -> httpx.Response:
    """`chats` new chats of `account`, spread over its first `workspaces` workspaces, all
    allowed; then the refusal of one more, from a workspace it has not used."""
    for n in range(chats):
        who = headers(f"ws-{n % workspaces}", plan, account=account)
        assert chat(demo, f"chat-{n}", who).status_code == 200
    refused = chat(demo, "one-more", headers(f"ws-{workspaces}", plan, account=account))
    assert refused.status_code == 429
    return refused


def test_a_sandbox_account_has_100_sessions_a_month_across_its_workspaces(demo: httpx.Client):
    """ "For Sandbox plans, the account will only support 100 chats per month": a second
    workspace is no way around it."""
    refused = one_past(demo, 100, "sandbox", "free-rider", workspaces=2)
    body = refused.json()
    assert (body["limit"], body["used"], body["violated-policies"]) == (
        "account_sessions_per_month",
        100,
        ["account_sessions_per_month"],
    )
    assert body["detail"].startswith(
        "This account has used all 100 chat sessions included in the Sandbox plan this month."
    )
    other = chat(demo, "c", headers("ws-0", "sandbox", account="someone-else"))
    assert other.status_code == 200


def test_the_2001st_new_chat_in_an_hour_names_the_hourly_limit(demo: httpx.Client):
    refused = one_past(demo, 2000, "pro", "busy", workspaces=4)
    body = refused.json()
    assert body["limit"] == "chats_per_hour"
    assert body["limit_value"] == 2000
    assert "contact" in body
    assert "upgrade" not in body
    assert body["detail"].startswith("This account has used all 2,000 chats included in the Pro")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    # NOW is 10:30. A sliding window: 1 ms into 11:00 the last hour's 2,000 weigh 1,999.9994,
    # so the estimate is 1,999 and one more chat passes.
    assert int(refused.headers["retry-after"]) == 30 * 60 + 1
    # and RateLimit's t names the same moment (the draft), not the window's whole drain
    assert refused.headers["ratelimit"].startswith('"chats_per_hour";r=0;t=1801,')


def test_ltd_second_workspace_is_forbidden_and_tickets_cap_at_10000(demo: httpx.Client):
    first = headers("only", "ltd", account="lifetime")
    assert demo.post("/v1/tickets", headers=first).status_code == 201
    second = demo.post("/v1/tickets", headers=headers("another", "ltd", account="lifetime"))
    assert second.status_code == 403
    assert "retry-after" not in second.headers
    body = second.json()
    assert (body["limit"], body["limit_value"], body["contact"]) == (
        "workspaces",
        1,
        "bizdev@jikoo.example",
    )
    assert body["detail"] == (
        "This account already has 1 workspace, the most the LTD plan allows. "
        "To go beyond this limit, contact bizdev@jikoo.example."
    )

    spent = asyncio.run(spend_tickets(middleware_of(demo).limiter, 9_998))  # tickets 2..9,999
    assert spent.allowed
    assert demo.post("/v1/tickets", headers=first).status_code == 201  # the 10,000th
    refused = demo.post("/v1/tickets", headers=first)
    assert refused.status_code == 429
    body = refused.json()
    assert (body["limit"], body["used"], body["contact"]) == (
        "tickets_per_month",
        10_000,
        "bizdev@jikoo.example",
    )


@pytest.mark.parametrize(
    ("sent", "detail"),
    [
        (
            {"X-Workspace-ID": "w", "X-Plan": "gold"},
            "The plan 'gold' is not one of this service's plans: sandbox, pro, unlimited, ltd.",
        ),
        ({"X-Plan": "pro"}, "The workspace is missing."),
        ({"X-Workspace-ID": "", "X-Plan": "pro"}, "The workspace is empty."),
        (
            {"X-Workspace-ID": "w" * 129, "X-Plan": "pro"},
            "The workspace is longer than 128 characters.",
        ),
        (
            {"X-Workspace-ID": "w\tx", "X-Plan": "pro"},
            "The workspace contains a control or invisible character.",
        ),
        ({"X-Workspace-ID": "w"}, "The plan is missing."),
        ({"X-Workspace-ID": b"Caf\xe9", "X-Plan": b"pro"}, "The workspace is not valid UTF-8."),
        (
            [("X-Workspace-ID", "a"), ("X-Plan", "pro"), ("X-Workspace-ID", "b")],
            "The workspace header is sent more than once.",
        ),
    ],
)
def test_bad_identity_gets_400_problem_json(demo: httpx.Client, sent: Any, detail: str):
    response = chat(demo, "c", sent)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == detail


def test_ids_are_utf8_text(demo: httpx.Client):
    """Non-ASCII ids as clients send them (UTF-8) are taken as the same text, not mojibake."""
    who = {b"X-Workspace-ID": "Ärzte 中文".encode(), b"X-Plan": b"pro"}
    assert chat(demo, "straße", who).json()["chat_id"] == "straße"
    usage = demo.get("/v1/usage", headers=who).json()
    assert (usage["workspace"], usage["account"]) == ("Ärzte 中文", "Ärzte 中文")
    sessions = next(x for x in usage["limits"] if x["name"] == "sessions_per_month")
    assert sessions["used"] == 1


def test_unruled_routes_pass_untouched(demo: httpx.Client):
    response = demo.get("/healthz")
    assert response.status_code == 200
    assert "ratelimit" not in response.headers
    assert demo.get("/nowhere").status_code == 404


def test_allowed_responses_carry_ratelimit_fields(demo: httpx.Client):
    response = chat(demo, "c1", headers("w", "pro"))
    assert response.headers["ratelimit-policy"] == (
        '"messages_per_session";q=20;w=40, "chats_per_hour";q=2000;w=3600, '
        '"sessions_per_month";q=10000;w=2592000'
    )
    assert response.headers["ratelimit"] == (
        '"messages_per_session";r=19;t=2, "chats_per_hour";r=1999;t=5400, '
        f'"sessions_per_month";r=9999;t={int((MONTH_END - NOW).total_seconds())}'
    )


def test_clock_moves_and_the_month_resets(demo: httpx.Client, clock: ManualClock):
    who = headers("resetting", "sandbox")
    for n in range(100):
        chat(demo, f"c{n}", who)
    assert chat(demo, "late", who).status_code == 429
    clock.set(MONTH_END)
    assert chat(demo, "late", who).status_code == 200


def test_the_fullest_limit_comes_first_a_bucket_measured_by_its_burst():
    """A chat's bucket (30 a minute, burst 20) 19 of 20 full is less full than 35 of 100
    sessions; an LTD account's one workspace (a cap for life) never comes first."""
    app = create_app(ROOT / "plans.toml", "memory://", clock=ManualClock(NOW), legacy_headers=True)

    async def run() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            for n in range(35):
                sandbox = await client.post(
                    f"/v1/chats/c{n}/messages", headers=headers("s", "sandbox")
                )
            for _ in range(18):
                ltd = await client.post("/v1/chats/one/messages", headers=headers("l", "ltd"))
        return sandbox, ltd

    sandbox, ltd = asyncio.run(run())
    assert sandbox.headers["ratelimit"].startswith('"sessions_per_month";r=65;')
    assert ltd.headers["ratelimit"].startswith('"messages_per_session";r=2;')
    legacy = (ltd.headers["x-ratelimit-limit"], ltd.headers["x-ratelimit-remaining"])
    assert legacy == ("20", "2")  # the burst, as RateLimit-Policy's q=20


def test_legacy_reset_of_a_refusal_names_the_moment_retry_after_does(
    storage_url: str, clock: ManualClock
):
    """X-RateLimit-Reset on a 429 is when a retry can pass, as Retry-After and RateLimit's t
    say; for the flood guard's bucket that is the next token, not the bucket full again."""
    app = create_app(ROOT / "plans.toml", storage_url, clock=clock, legacy_headers=True)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        who = headers("ws", "pro", account="flood")
        for _ in range(20):  # the burst
            assert chat(client, "c1", who).status_code == 200
        refused = chat(client, "c1", who)
    assert refused.status_code == 429
    retry = int(refused.headers["retry-after"])
    assert refused.headers["ratelimit"].startswith(f'"messages_per_session";r=0;t={retry},')
    assert refused.headers["x-ratelimit-limit"] == "20"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) == math.ceil(clock.now() + retry)
    body = refused.json()  # the burst, as q=20: limit_value - used is what is left
    assert (body["limit_value"], body["used"], body["retry_after"]) == (20, 20, retry)


def test_spaces_around_identity_values_are_not_part_of_them(demo: httpx.Client):
    """HTTP takes the spaces and tabs around a field value off (RFC 9110, 5.5); not every
    parser does (httptools keeps trailing ones), so fairuse does, or `tw ` would be a tenant
    of its own and `sandbox ` no plan."""
    host, port = demo.base_url.host, demo.base_url.port
    body = b'{"text": "hi"}'
    request = (
        b"POST /v1/chats/c1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n"
        b"X-Account-ID: \tspacey \t\r\nX-Workspace-ID: tw  \r\nX-Plan: sandbox \r\n\r\n%s"
    ) % (len(body), body)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    usage = demo.get("/v1/usage", headers=headers("tw", "sandbox", account="spacey")).json()
    sessions = {item["name"]: item["used"] for item in usage["limits"]}
    assert sessions["sessions_per_month"] == 1  # the same workspace as `tw`


def test_moments_in_bodies_are_whole_seconds_rounded_up(demo: httpx.Client, clock: ManualClock):
    """As the README shows them; a bucket's next token comes at a fraction of a second."""
    clock.advance(0.25)
    who = headers("ws", "pro", account="flood")
    for _ in range(20):
        assert chat(demo, "c1", who).status_code == 200
    refused = chat(demo, "c1", who).json()
    assert refused["limit"] == "messages_per_session"
    at = datetime.fromisoformat(refused["resets_at"])
    assert at.microsecond == 0, refused["resets_at"]
    assert clock.now() < at.timestamp() <= clock.now() + 41


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/chats/left/messages", "application/json"),
        ("/v1/tickets", "application/json"),
        ("/v1/files", "application/octet-stream"),
        ("/v1/files", "multipart/form-data; boundary=b"),
    ],
)
def test_a_client_that_leaves_mid_body_leaves_no_traceback(path: str, content_type: str):
    """Clients hang up mid-upload all the time: the demo lets them go without logging a
    traceback (Starlette's ClientDisconnect, raised into the endpoint reading the body)."""
    app = create_app(ROOT / "plans.toml", "memory://", clock=ManualClock(NOW))
    who = b"".join(
        b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers("lw", "pro").items()
    )
    part = b'--b\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nab'
    with serve_in_thread(app) as url, server_errors() as errors:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            head = b"POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: %s\r\n" % (
                path.encode(),
                who,
                content_type.encode(),
            )
            sock.sendall(head + b"Content-Length: 100\r\n\r\n" + part)
            time.sleep(0.2)  # the endpoint is reading the body
        with httpx.Client(base_url=url) as client:  # and the server goes on serving
            assert client.get("/healthz").status_code == 200
        time.sleep(0.2)  # the endpoint has met the disconnect
    assert [record.getMessage() for record in errors] == []
