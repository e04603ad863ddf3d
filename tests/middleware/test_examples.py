"""The README's mounting examples work as written, over real HTTP."""

from __future__ import annotations

import importlib

import httpx
import pytest

from ..servers import serve_in_thread

pytestmark = pytest.mark.e2e


def test_starlette_example(monkeypatch: pytest.MonkeyPatch):
    from ..conftest import ROOT

    monkeypatch.chdir(ROOT)
    app = importlib.import_module("examples.starlette_app").app
    with serve_in_thread(app) as url:
        who = {"X-Workspace-ID": "w1", "X-Plan": "sandbox"}
        response = httpx.post(f"{url}/v1/chats/c1/messages", headers=who)
        assert response.status_code == 200
        assert response.json() == {"chat_id": "c1", "reply": "Hi!"}
        assert '"sessions_per_month";r=99' in response.headers["ratelimit"]
        assert httpx.post(f"{url}/v1/chats/c1/messages").status_code == 400


def test_fastapi_example_with_identity_hook(monkeypatch: pytest.MonkeyPatch):
    from ..conftest import ROOT

    monkeypatch.chdir(ROOT)
    app = importlib.import_module("examples.fastapi_app").app
    with serve_in_thread(app) as url:
        good = httpx.post(f"{url}/v1/tickets", headers={"Authorization": "Bearer key-123"})
        assert good.status_code == 201
        assert good.json() == {"ticket_id": "T-1", "plan": "pro"}
        bad = httpx.post(f"{url}/v1/tickets", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 400
        assert bad.json()["detail"] == "The request carries no account identity."
