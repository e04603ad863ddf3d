"""The middleware with raw ASGI apps: lifespan, pass-through, streaming, header chat ids."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from middleware import FairUseMiddleware
from ratelimit.plans_file import parse_policy

from ..servers import serve_in_thread

pytestmark = pytest.mark.e2e

POLICY = """
[policy]
name = "raw"
contact = "help@example.test"

[routes.stream]
match = "GET /stream"

[routes.message]
match = "POST /messages"
session = "header:X-Chat-ID"

[limits.streams]
kind = "fixed_window"
per = "minute"
routes = ["stream"]
limit = 2

[limits.chats]
kind = "fixed_window"
per = "hour"
counts = "sessions"
routes = ["message"]
limit = 2

[routes.call]
match = "POST /calls"
cost = "header:X-Minutes"

[routes.report]
match = "POST /reports"
cost = 20

[limits.minutes]
kind = "fixed_window"
per = "day"
routes = ["call", "report"]
limit = 100
unit = "minute"

[plans.basic]
"""
WHO = {"X-Workspace-ID": "w", "X-Plan": "basic"}


class RawApp:
    """A bare ASGI app: lifespan events, a slow server-sent event stream, a JSON echo."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/stream":
            for n in range(3):
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"data: {n}\n\n".encode(),
                        "more_body": True,
                    }
                )
                await asyncio.sleep(0.3)
            await send({"type": "http.response.body", "body": b""})
        else:
            state = scope.get("state", {}).get("fairuse")
            body = {
                "path": scope["path"],
                "new_session": state.decision.new_session if state else None,
                "who": [state.identity.workspace, state.route.name] if state else None,
                "read_only": _read_only(state),
            }
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def _read_only(context: object) -> bool:
    try:
        context.decision = None  # type: ignore[attr-defined]
    except AttributeError:
        return True
    return False


def serve(app: RawApp, **options: object) -> FairUseMiddleware:
    return FairUseMiddleware(app, plans=parse_policy(POLICY, "raw.toml"), **options)  # type: ignore[arg-type]


def test_lifespan_passes_through_and_unruled_paths_are_untouched():
    app = RawApp()
    with serve_in_thread(serve(app)) as url:
        response = httpx.get(f"{url}/anything", headers={"X-Plan": "nonsense"})
        assert response.status_code == 200
        assert "ratelimit" not in response.headers
    assert app.lifespan == ["lifespan.startup", "lifespan.shutdown"]


def test_event_stream_flows_through_unbuffered():
    with serve_in_thread(serve(RawApp())) as url, httpx.Client() as client:
        started = time.monotonic()
        with client.stream("GET", f"{url}/stream", headers=WHO) as response:
            assert response.headers["ratelimit"].startswith('"streams";r=1;')
            chunks = response.iter_raw()
            first = next(chunks)
            first_at = time.monotonic() - started
            rest = b"".join(chunks)
        total = time.monotonic() - started
    assert first == b"data: 0\n\n"
    assert rest == b"data: 1\n\ndata: 2\n\n"
    # the first event arrived before the stream ended: nothing held it back
    assert first_at < total - 0.4


def test_chat_id_from_a_header_counts_sessions_once():
    with serve_in_thread(serve(RawApp())) as url, httpx.Client(base_url=url) as client:
        first = client.post("/messages", headers={**WHO, "X-Chat-ID": "a"}).json()
        again = client.post("/messages", headers={**WHO, "X-Chat-ID": "a"}).json()
        assert (first["new_session"], again["new_session"]) == (True, False)
        assert first["who"] == ["w", "message"]
        assert first["read_only"] is True  # the app reads the context, never changes it
        assert client.post("/messages", headers={**WHO, "X-Chat-ID": "b"}).status_code == 200
        refused = client.post("/messages", headers={**WHO, "X-Chat-ID": "c"})
        assert refused.status_code == 429
        missing = client.post("/messages", headers=WHO)
        assert missing.status_code == 400
        assert missing.json()["detail"] == "The chat id is missing."


def test_legacy_headers_behind_a_setting():
    with serve_in_thread(serve(RawApp(), legacy_headers=True)) as url:
        response = httpx.post(f"{url}/messages", headers={**WHO, "X-Chat-ID": "a"})
    assert response.headers["x-ratelimit-limit"] == "2"
    assert response.headers["x-ratelimit-remaining"] == "1"
    assert int(response.headers["x-ratelimit-reset"]) > time.time()
    with serve_in_thread(serve(RawApp())) as url:
        plain = httpx.post(f"{url}/messages", headers={**WHO, "X-Chat-ID": "a"})
    assert "x-ratelimit-limit" not in plain.headers


def test_usage_and_files_on_the_demo(demo: httpx.Client):
    who = {"X-Workspace-ID": "w", "X-Plan": "pro", "X-Account-ID": "acme"}
    demo.post("/v1/chats/c1/messages", json={"text": "hi"}, headers=who)
    usage = demo.get("/v1/usage", headers=who).json()
    assert (usage["account"], usage["workspace"], usage["plan"]) == ("acme", "w", "pro")
    by_name = {item["name"]: item for item in usage["limits"]}
    assert by_name["sessions_per_month"] == {
        "name": "sessions_per_month",
        "title": "chat sessions per month",
        "scope": "workspace",
        "per": "month",
        "limit": 10000,
        "unit": "chat session",
        "used": 1,
        "remaining": 9999,
        "resets_at": "2026-12-01T00:00:00Z",
    }
    assert by_name["tickets_per_month"]["limit"] == "unlimited"
    files = {"a": ("a.txt", b"x" * 10), "b": ("b.bin", b"y" * 2048)}
    uploaded = demo.post("/v1/files", files=files, headers=who)
    assert uploaded.status_code == 201
    assert uploaded.json() == {
        "files": [
            {"field": "a", "filename": "a.txt", "size": 10},
            {"field": "b", "filename": "b.bin", "size": 2048},
        ]
    }


def test_routes_are_matched_under_a_servers_root_path():
    """uvicorn --root-path puts the prefix in scope["path"]; the app routes without it."""
    with serve_in_thread(serve(RawApp()), root_path="/api") as url:
        ruled = httpx.post(f"{url}/messages", headers={**WHO, "X-Chat-ID": "a"})
        assert ruled.json()["who"] == ["w", "message"]
        assert ruled.headers["ratelimit"].startswith('"chats";r=1;')
        assert httpx.post(f"{url}/messages", headers={"X-Chat-ID": "a"}).status_code == 400


def test_routes_are_matched_under_a_starlette_mount():
    outer = Starlette(routes=[Mount("/api", app=serve(RawApp()))])
    with serve_in_thread(outer) as url:
        ruled = httpx.post(f"{url}/api/messages", headers={**WHO, "X-Chat-ID": "a"})
        assert ruled.json()["who"] == ["w", "message"]
        assert "ratelimit" in ruled.headers
        assert httpx.post(f"{url}/api/messages", headers={"X-Chat-ID": "a"}).status_code == 400
        assert "ratelimit" not in httpx.get(f"{url}/api/elsewhere").headers


@pytest.mark.parametrize(
    ("minutes", "detail"),
    [
        ("0", "The cost must be a positive whole number."),
        ("-3", "The cost must be a positive whole number."),
        ("²".encode(), "The cost must be a positive whole number."),  # str.isdigit() says yes
        (b"\xb2", "The cost is not valid UTF-8."),
        ("9" * 16, "The cost is longer than 15 digits."),
        ("9" * 5000, "The cost is longer than 15 digits."),  # int() refuses over 4,300 digits
        ([("X-Minutes", "1"), ("X-Minutes", "2")], "The cost header is sent more than once."),
    ],
)
def test_a_cost_from_a_header_is_checked(minutes: Any, detail: str):
    with serve_in_thread(serve(RawApp())) as url:
        sent = minutes if isinstance(minutes, list) else [("X-Minutes", minutes)]
        refused = httpx.post(f"{url}/calls", headers=[*WHO.items(), *sent])
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == detail
        counted = httpx.post(f"{url}/calls", headers={**WHO, "X-Minutes": "30"})
        assert counted.headers["ratelimit"].startswith('"minutes";r=70;')


def test_a_routes_own_cost_is_counted():
    """`cost = 20` on a route: each request counts 20, whatever its headers say."""
    with serve_in_thread(serve(RawApp())) as url:
        first = httpx.post(f"{url}/reports", headers={**WHO, "X-Minutes": "1"})
        assert first.headers["ratelimit"].startswith('"minutes";r=80;')
        for _ in range(4):
            httpx.post(f"{url}/reports", headers=WHO)
        refused = httpx.post(f"{url}/reports", headers=WHO)
        assert refused.status_code == 429
        assert refused.json()["limit"] == "minutes"


def test_an_app_that_reuses_its_response_start_gets_one_set_of_fields():
    """The fields are added to a copy: a module-level message must not collect every tenant's."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]}

    async def reusing(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b"ok"})

    app = FairUseMiddleware(reusing, plans=parse_policy(POLICY, "raw.toml"))
    with serve_in_thread(app) as url:
        for workspace in ("a", "b", "c"):
            response = httpx.post(
                f"{url}/messages",
                headers={"X-Workspace-ID": workspace, "X-Plan": "basic", "X-Chat-ID": "x"},
            )
            assert response.headers.get_list("ratelimit") == [response.headers["ratelimit"]]
            assert response.headers["ratelimit"].startswith('"chats";r=1;')
    assert start["headers"] == [(b"x-app", b"1")]


def test_a_request_costing_more_than_its_limit_ever_holds_gets_413_without_retry():
    """100 minutes a day: a 120-minute call never passes, so no Retry-After invites a retry
    (one every second would only earn a suspension). One that fits later still gets 429."""
    with serve_in_thread(serve(RawApp())) as url:
        never = httpx.post(f"{url}/calls", headers={**WHO, "X-Minutes": "120"})
        assert never.status_code == 413
        assert "retry-after" not in never.headers
        body = never.json()
        assert (body["type"], body["limit"], body["limit_value"], body["cost"]) == (
            "urn:fairuse:problem:request-too-large",
            "minutes",
            100,
            120,
        )
        assert body["detail"] == (
            "This request counts 120 minutes, more than the Basic plan allows in all "
            "(100 minutes a day), so it cannot pass however long it waits. To go beyond this "
            "limit, contact help@example.test."
        )
        assert httpx.post(f"{url}/calls", headers={**WHO, "X-Minutes": "90"}).status_code == 200
        later = httpx.post(f"{url}/calls", headers={**WHO, "X-Minutes": "20"})
        assert later.status_code == 429
        assert "retry-after" in later.headers
        assert later.json()["detail"].startswith(  # not "used all": 10 are left
            "This account has 10 of the 100 minutes included in the Basic plan today left, fewer"
            " than this request counts."
        )


TWO_WINDOWS = """
[policy]
name = "two windows"
contact = "help@example.test"

[policy.suspension]
denials = 3
within = "1 hour"
for = "1 day"

[routes.call]
match = "POST /calls"
cost = "header:X-Minutes"

[limits.minutes_per_day]
title = "minutes a day"
kind = "fixed_window"
per = "day"
routes = ["call"]
limit = 100
unit = "minute"

[limits.minutes_per_month]
title = "minutes a month"
kind = "fixed_window"
per = "month"
routes = ["call"]
limit = 200
unit = "minute"

[plans.basic]
"""


def serve_two_windows() -> FairUseMiddleware:
    policy = parse_policy(TWO_WINDOWS, "two.toml")
    return FairUseMiddleware(RawApp(), plans=policy)


def test_a_request_that_never_fits_one_limit_gets_413_when_another_binds():
    """150 minutes never fit in a day of 100. With 60 spent, the month's 140 left refuse them
    too, and bind (it resets later): a 429 would invite a retry next month that fails again."""
    who = {"X-Workspace-ID": "never", "X-Plan": "basic"}
    with serve_in_thread(serve_two_windows()) as url:
        assert httpx.post(f"{url}/calls", headers={**who, "X-Minutes": "60"}).status_code == 200
        refused = httpx.post(f"{url}/calls", headers={**who, "X-Minutes": "150"})
        assert refused.status_code == 413, refused.text
        assert "retry-after" not in refused.headers
        body = refused.json()
        assert (body["limit"], body["limit_value"], body["cost"]) == ("minutes_per_day", 100, 150)
        fits_tomorrow = httpx.post(f"{url}/calls", headers={**who, "X-Minutes": "90"})
        assert fits_tomorrow.status_code == 429


def test_the_refusal_that_suspends_gets_403_whatever_its_cost():
    """The third refusal within the hour suspends the workspace: that request is told so, as
    with a cost of 1, rather than to send a smaller one that can only meet the suspension."""
    who = {"X-Workspace-ID": "costly", "X-Plan": "basic", "X-Minutes": "101"}
    with serve_in_thread(serve_two_windows()) as url:
        statuses = [httpx.post(f"{url}/calls", headers=who) for _ in range(3)]
        assert [r.status_code for r in statuses] == [413, 413, 403]
        assert statuses[2].json()["type"] == "urn:fairuse:problem:suspended"
