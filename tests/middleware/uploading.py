"""Helpers for the upload tests: streamed multipart bodies, raw sockets, a recording app."""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import Message, Receive, Scope, Send

from middleware.demo import ROUTES
from middleware.fairuse import FairUseMiddleware
from middleware.uploads import UploadOptions
from ratelimit import ManualClock

POLICY = Path(__file__).parent / "policies" / "uploads.toml"
BOUNDARY = "fairuse-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
CHUNK = 16 * 1024


def multipart(
    files: Iterable[tuple[str, str, int]],
    *,
    fields: Iterable[tuple[str, str]] = (),
    chunk: int = CHUNK,
    pause: threading.Event | None = None,
    pause_after: int = 0,
) -> Iterator[bytes]:
    """A multipart body, generated: (field, filename, size) files of b"a"; nothing is held.

    With `pause`, the generator waits for the event once `pause_after` file bytes are out.
    """
    sent = 0
    for name, value in fields:
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        yield value.encode() + b"\r\n"
    for name, filename, size in files:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}";'
            f' filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        left = size
        while left:
            n = min(chunk, left)
            left -= n
            yield b"a" * n
            sent += n
            if pause is not None and sent >= pause_after:
                pause.wait(timeout=30)
                pause = None
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def body_of(files: Iterable[tuple[str, str, int]], **kwargs: object) -> bytes:
    return b"".join(multipart(files, **kwargs))  # type: ignore[arg-type]


def who(plan: str, account: str = "acct", workspace: str = "ws") -> dict[str, str]:
    return {"X-Account-ID": account, "X-Workspace-ID": workspace, "X-Plan": plan}


def raw_request(url: str, head: str, body: bytes = b"", *, close: bool = False) -> bytes:
    """Send bytes as they are (lying lengths, bare headers) and read until the server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        if close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


@dataclass
class Recording:
    """What the recording app was given: every body byte and whether it saw a disconnect."""

    body: int = 0
    chunks: int = 0
    complete: bool = False
    disconnected: bool = False
    answered: list[int] = field(default_factory=list)  # statuses the app tried to send
    first_chunk: threading.Event = field(default_factory=threading.Event)


class RecordingApp:
    """Reads the whole body, then answers 201 with what it read, as a careless app would."""

    def __init__(self) -> None:
        self.seen: list[Recording] = []
        self.arrivals: queue.Queue[Recording] = queue.Queue()  # each request, once called

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen = Recording()
        self.seen.append(seen)
        self.arrivals.put(seen)
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                seen.disconnected = True
                break
            seen.body += len(message.get("body", b""))
            seen.chunks += 1
            seen.first_chunk.set()
            if not message.get("more_body", False):
                seen.complete = True
                break
        seen.answered.append(201)
        payload = f'{{"received": {seen.body}}}'.encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def guarded(
    app: object, storage: str, clock: ManualClock, options: UploadOptions | None = None
) -> FairUseMiddleware:
    return FairUseMiddleware(
        app,  # type: ignore[arg-type]
        plans=POLICY,
        storage=storage,
        clock=clock,
        upload_options=options,
    )


def demo_app(storage: str, clock: ManualClock, options: UploadOptions | None = None) -> Starlette:
    """The demo's routes behind the upload test policy."""
    middleware = Middleware(
        FairUseMiddleware, plans=POLICY, storage=storage, clock=clock, upload_options=options
    )
    return Starlette(routes=ROUTES, middleware=[middleware])


@contextmanager
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors uvicorn logs (an app exception, a 500) while the block runs."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
