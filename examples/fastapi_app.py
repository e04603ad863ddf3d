"""Mounting fairuse in a FastAPI app, with the app's own identity hook (tests run it)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.types import Scope

from middleware import FairUseMiddleware
from ratelimit import Identity

API_KEYS = {"key-123": Identity(account="acme", workspace="support", plan="pro")}


def identify(scope: Scope) -> Identity | None:
    """Look the caller up by API key; None means unknown, answered with 400."""
    for name, value in scope["headers"]:
        if name == b"authorization" and value.startswith(b"Bearer "):
            return API_KEYS.get(value[7:].decode("latin-1"))
    return None


app = FastAPI()
app.add_middleware(FairUseMiddleware, plans="plans.toml", identify=identify)


@app.post("/v1/tickets", status_code=201)
async def create_ticket(request: Request) -> dict[str, str]:
    usage = request.state.fairuse.decision  # the decision is there for the app to read
    return {"ticket_id": "T-1", "plan": usage.plan.name}
