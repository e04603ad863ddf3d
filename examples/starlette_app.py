"""Mounting fairuse in a Starlette app (the README's example; tests run it)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middleware import FairUseMiddleware


async def send_message(request: Request) -> JSONResponse:
    chat_id = request.path_params["chat_id"]
    return JSONResponse({"chat_id": chat_id, "reply": "Hi!"})


app = Starlette(routes=[Route("/v1/chats/{chat_id}/messages", send_message, methods=["POST"])])
app.add_middleware(
    FairUseMiddleware,
    plans="plans.toml",
    storage="memory://",  # or "redis://127.0.0.1:6379/0"
)
