"""A small chatbot API, bare or behind FairUseMiddleware: the demo and the benchmark target."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable

from python_multipart.multipart import parse_options_header
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ratelimit import Decision, LimitStatus, StorageError
from ratelimit.clock import Clock
from ratelimit.dispatch import EventCallback
from ratelimit.plans import SIZE_KINDS

from . import problems
from .fairuse import FairUseContext, FairUseMiddleware
from .messages import iso

_ticket_ids = itertools.count(1)
Endpoint = Callable[[Request], Awaitable[Response]]
LEFT = Response(status_code=400)  # for a client that hung up mid-body: sent to no one


def client_may_leave(endpoint: Endpoint) -> Endpoint:
    """`endpoint`, letting a client that hangs up mid-body go quietly: Starlette raises
    ClientDisconnect into whatever reads the body, and the server would log it as a traceback.
    The answer instead (LEFT) reaches no one."""

    @functools.wraps(endpoint)
    async def reading(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ClientDisconnect:
            return LEFT

    return reading


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def chat_message(request: Request) -> Response:
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError:
        payload = None
    except ClientDisconnect:  # inline, not client_may_leave: one frame fewer per message
        return LEFT
    if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
        return _bad_request('Send JSON like {"text": "hello"}.')
    chat_id = request.path_params["chat_id"]
    return JSONResponse({"chat_id": chat_id, "reply": f"You said: {payload['text']}"})


async def create_ticket(request: Request) -> Response:
    await request.body()
    return JSONResponse({"ticket_id": f"T-{next(_ticket_ids)}"}, status_code=201)


async def upload_files(request: Request) -> JSONResponse:
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data":  # as Request.form() and the upload guard read it
        size = 0  # a raw body (application/octet-stream, ...) is one file
        async for chunk in request.stream():
            size += len(chunk)
        _, options = parse_options_header(request.headers.get("content-disposition", ""))
        filename = options.get(b"filename")
        raw = {"field": None, "filename": filename and filename.decode("latin-1"), "size": size}
        return JSONResponse({"files": [raw]}, status_code=201)
    async with request.form() as form:
        files = []
        for field, value in form.multi_items():
            if isinstance(value, str):
                continue
            data = await value.read()
            files.append({"field": field, "filename": value.filename, "size": len(data)})
    return JSONResponse({"files": files}, status_code=201)


async def usage(request: Request) -> JSONResponse:
    context: FairUseContext | None = getattr(request.state, "fairuse", None)
    if context is None:
        return _bad_request("Usage needs the fair-use middleware in front of this app.")
    try:
        decision = await context.limiter.peek(context.identity)
    except StorageError:
        return _unavailable()
    return JSONResponse(usage_document(context, decision))


def usage_document(context: FairUseContext, decision: Decision) -> dict[str, object]:
    identity = context.identity
    return {
        "account": identity.account,
        "workspace": identity.workspace,
        "plan": identity.plan,
        "limits": [_usage_entry(status) for status in decision.statuses],
    }


def _usage_entry(status: LimitStatus) -> dict[str, object]:
    limit = status.limit
    rule = limit.rule
    sized = rule.kind in SIZE_KINDS
    return {
        "name": limit.name,
        "title": rule.title,
        "scope": None if sized else rule.scope.value,
        "per": str(rule.period) if rule.period else None,
        "limit": "unlimited" if limit.amount is None else limit.amount,
        "unit": "byte" if sized else rule.unit,
        "used": status.used,
        "remaining": status.remaining,
        "resets_at": iso(status.reset_at),
    }


def _unavailable() -> JSONResponse:
    problem = problems.storage_unavailable(1)
    headers = {name.decode(): value.decode() for name, value in problem.headers}
    return JSONResponse(problem.body, 503, headers, "application/problem+json")


def _bad_request(detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": "Bad request", "status": 400, "detail": detail}
    return JSONResponse(body, status_code=400, media_type="application/problem+json")


def routes(reply_wait: float = 0.0) -> list[Route]:
    """The API's routes; with `reply_wait` (seconds) a chat message waits that long before its
    reply, as a real chatbot waits on its model: the benchmarks' stand-in for an app whose own
    work takes longer than an echo, so that what fairuse adds can be read against it."""
    chat = chat_message
    if reply_wait > 0:

        async def chat(request: Request) -> Response:
            await asyncio.sleep(reply_wait)
            return await chat_message(request)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/chats/{chat_id}/messages", chat, methods=["POST"]),
        Route("/v1/tickets", client_may_leave(create_ticket), methods=["POST"]),
        Route("/v1/files", client_may_leave(upload_files), methods=["POST"]),
        Route("/v1/usage", usage, methods=["GET"]),
    ]


ROUTES = routes()


YOUNG_GC_THRESHOLD = 10_000  # Python's default is 700


def tune_gc() -> None:
    """Set the cycle collector for a server whose requests wait on I/O; call it once start-up
    is over (a whole-process choice, so for processes this module owns).

    Everything made so far (modules, the policy, compiled routes) lives as long as the process:
    gc.freeze() takes it out of the collector's sight, so that a full collection, which stalls
    every request in flight, scans only what requests allocate. And every request parked on an
    await (on Redis, for a protected one) survives the young collections that run meanwhile:
    each scans it, promotes it, and the promotions trigger full collections. A young threshold
    of 10,000 allocations instead of 700 runs them 14 times less often."""
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])


@contextlib.asynccontextmanager
async def gc_tuned_after_startup(app: Starlette) -> AsyncIterator[None]:
    """tune_gc() once start-up is over (uvicorn's factory, `fairuse demo`)."""
    tune_gc()
    yield


def create_bare_app(*, tune_gc_after_startup: bool = False, reply_wait: float = 0.0) -> Starlette:
    """The chatbot API with no limits at all: the benchmarks' baseline."""
    lifespan = gc_tuned_after_startup if tune_gc_after_startup else None
    return Starlette(routes=routes(reply_wait), lifespan=lifespan)


def create_app(
    plans: str | os.PathLike[str] = "plans.toml",
    storage: str = "memory://",
    *,
    clock: Clock | None = None,
    legacy_headers: bool = False,
    on_event: EventCallback | None = None,
    tune_gc_after_startup: bool = False,
    reply_wait: float = 0.0,
) -> Starlette:
    middleware = [
        Middleware(
            FairUseMiddleware,
            plans=plans,
            storage=storage,
            clock=clock,
            legacy_headers=legacy_headers,
            on_event=on_event,
        )
    ]
    lifespan = gc_tuned_after_startup if tune_gc_after_startup else None
    app = Starlette(routes=routes(reply_wait), middleware=middleware, lifespan=lifespan)
    # Built now, not at the first event: a bad plans file or [events] setting stops the start
    # here, instead of uvicorn taking the failure for "lifespan unsupported" and answering 500.
    app.middleware_stack = app.build_middleware_stack()
    return app


def app_from_env() -> Starlette:
    """For `uvicorn --factory middleware.demo:app_from_env` (workers, benchmarks);
    FAIRUSE_GC_TUNING=0 leaves the collector as Python sets it (`gc_tuned_after_startup`);
    FAIRUSE_DEMO_REPLY_MS makes each chat message wait that long before its reply (`routes`)."""
    tune, wait = tune_gc_from_env(), reply_wait_from_env()
    if os.environ.get("FAIRUSE_BARE"):
        return create_bare_app(tune_gc_after_startup=tune, reply_wait=wait)
    return create_app(
        os.environ.get("FAIRUSE_PLANS", "plans.toml"),
        os.environ.get("FAIRUSE_STORAGE", "memory://"),
        tune_gc_after_startup=tune,
        reply_wait=wait,
    )


def tune_gc_from_env() -> bool:
    return os.environ.get("FAIRUSE_GC_TUNING", "1") != "0"


def reply_wait_from_env() -> float:
    """FAIRUSE_DEMO_REPLY_MS, in seconds."""
    milliseconds = os.environ.get("FAIRUSE_DEMO_REPLY_MS", "0")
    try:
        wait = float(milliseconds)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= 60_000:  # also refuses nan
        raise ValueError(
            f"FAIRUSE_DEMO_REPLY_MS must be milliseconds from 0 to 60000, got {milliseconds!r}"
        )
    return wait / 1000
