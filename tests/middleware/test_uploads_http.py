"""The upload guard over real HTTP: file and body caps while the body streams, byte quotas."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from ratelimit import ManualClock

from .conftest import NOW, Served, headers, serving
from .uploading import (
    MULTIPART,
    RecordingApp,
    body_of,
    guarded,
    multipart,
    raw_request,
    who,
)

pytestmark = pytest.mark.e2e
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)
TO_YEAR_END = int((YEAR_END - NOW).total_seconds())
MB5 = 5_000_000


def upload(
    client: httpx.Client, files: list[tuple[str, str, int]], plan: str, **kwargs: object
) -> httpx.Response:
    sent = {**who(plan), **MULTIPART}
    return client.post("/v1/files", content=multipart(files, **kwargs), headers=sent)  # type: ignore[arg-type]


def sizes(response: httpx.Response) -> list[int]:
    assert response.status_code == 201, response.text
    return [item["size"] for item in response.json()["files"]]


def problem(response: httpx.Response, status: int, *, cut: bool = True) -> dict[str, object]:
    """The problem body; `cut`: the guard answered without reading the body, so it closes."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("connection") == ("close" if cut else None)
    body: dict[str, object] = response.json()
    return body


def split(raw: bytes) -> tuple[int, dict[str, object]]:
    """A raw HTTP response: its status code and its JSON body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


# ---- the shipped policy: 5 MB per file on every plan ------------------------------------------


def test_a_file_of_exactly_5_mb_passes_and_one_byte_more_is_refused(demo: httpx.Client):
    sent = {**headers("w", "sandbox"), **MULTIPART}
    exact = demo.post("/v1/files", content=multipart([("file", "exact.bin", MB5)]), headers=sent)
    assert exact.status_code == 201
    assert exact.json() == {"files": [{"field": "file", "filename": "exact.bin", "size": MB5}]}

    over = demo.post("/v1/files", content=multipart([("file", "over.bin", MB5 + 1)]), headers=sent)
    assert problem(over, 413) == {
        "type": "urn:fairuse:problem:payload-too-large",
        "title": "Content too large",
        "status": 413,
        "detail": (
            'The file "over.bin" is larger than 5 MB, the most the Sandbox plan allows for one'
            " file. To go beyond this limit, contact bizdev@jikoo.example."
        ),
        "plan": "sandbox",
        "limit": "file_size",
        "limit_value": MB5,
        "max_bytes": MB5,
        "field": "file",
        "filename": "over.bin",
        "violated-policies": ["file_size"],
        "contact": "bizdev@jikoo.example",
    }


def test_several_files_under_the_cap_pass_though_their_sum_is_larger(demo: httpx.Client):
    sent = {**headers("w", "pro"), **MULTIPART}
    files = [("a", "a.bin", 4_000_000), ("b", "b.bin", 4_000_000), ("c", "c.bin", MB5)]
    response = demo.post("/v1/files", content=multipart(files), headers=sent)
    assert sizes(response) == [4_000_000, 4_000_000, MB5]


def test_the_second_file_over_the_cap_is_named(demo: httpx.Client):
    sent = {**headers("w", "pro"), **MULTIPART}
    files = [("a", "fine.bin", 1000), ("b", "big.bin", 6_000_000)]
    body = problem(demo.post("/v1/files", content=multipart(files), headers=sent), 413)
    assert (body["field"], body["filename"]) == ("b", "big.bin")


def test_content_length_over_the_cap_is_refused_before_any_body(demo: httpx.Client):
    """Only headers are sent: the answer cannot have waited for the body."""
    url = str(demo.base_url)
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Workspace-ID: w\nX-Plan: pro\n"
        "Content-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="x.iso"\n'
        "Content-Length: 5000001\n"
    )
    status, body = split(raw_request(url, head))
    assert status == 413
    assert (body["limit"], body["filename"], body["field"]) == ("file_size", "x.iso", None)
    assert str(body["detail"]).startswith('The file "x.iso" is larger than 5 MB')


@pytest.mark.parametrize("size", [MB5, MB5 + 1])
def test_raw_and_chunked_bodies_count_as_one_file(demo: httpx.Client, size: int):
    sent = {**headers("w", "pro"), "Content-Type": "application/octet-stream"}
    chunked = demo.post("/v1/files", content=(b"a" * n for n in split_size(size)), headers=sent)
    whole = demo.post("/v1/files", content=b"a" * size, headers=sent)
    for response in (chunked, whole):
        if size == MB5:
            assert response.json() == {"files": [{"field": None, "filename": None, "size": MB5}]}
        else:
            assert problem(response, 413)["detail"] == (
                "The uploaded file is larger than 5 MB, the most the Pro plan allows for one"
                " file. To go beyond this limit, contact bizdev@jikoo.example."
            )


def split_size(size: int, chunk: int = 64 * 1024) -> list[int]:
    return [min(chunk, size - start) for start in range(0, size, chunk)]


def test_chunked_multipart_over_the_cap_is_refused_midstream(demo: httpx.Client):
    sent = {**headers("w", "pro"), **MULTIPART}
    body = multipart([("file", "chunked.bin", 6_000_000)])
    response = demo.post("/v1/files", content=body, headers=sent)  # a generator: chunked
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert problem(response, 413)["filename"] == "chunked.bin"


# ---- what the app sees -----------------------------------------------------------------------


@pytest.fixture
def recording(storage_url: str, clock: ManualClock):
    app = RecordingApp()
    with serving(guarded(app, storage_url, clock)) as served:
        yield served, app


def test_the_app_gets_a_disconnect_never_a_cut_file(recording: tuple[Served, RecordingApp]):
    served, app = recording
    response = upload(served.client, [("file", "big.bin", 150_000)], "basic")
    assert problem(response, 413)["filename"] == "big.bin"  # the app's own 201 was dropped
    (seen,) = app.seen
    assert (seen.disconnected, seen.complete, seen.answered) == (True, False, [201])
    assert seen.body <= 100_000 + 200  # the cap and the part's framing; the overflow never came
    assert served.errors == []


def test_a_raw_upload_with_a_length_over_the_cap_never_reaches_the_app(
    recording: tuple[Served, RecordingApp],
):
    served, app = recording
    sent = {**who("basic"), "Content-Type": "application/octet-stream"}
    response = served.client.post("/v1/files", content=b"a" * 100_001, headers=sent)
    assert problem(response, 413)["limit"] == "file_size"
    assert app.seen == []

    def halves() -> Iterator[bytes]:
        yield b"a" * 60_000
        app.arrivals.get(timeout=30).first_chunk.wait(timeout=30)  # the app has the first half
        yield b"a" * 60_000

    chunked = served.client.post("/v1/files", content=halves(), headers=sent)
    assert problem(chunked, 413)["limit"] == "file_size"
    (seen,) = app.seen
    assert (seen.complete, seen.disconnected) == (False, True)
    # Some of the first half, in however many pieces the server read it, and never past the cap
    # (the server may still have part of the first half in hand when the second arrives).
    assert 0 < seen.body <= 100_000


# ---- body caps ------------------------------------------------------------------------------


def test_a_body_cap_refuses_files_that_each_fit(uploads: Served):
    fits = upload(uploads.client, [("a", "a.bin", 140_000), ("b", "b.bin", 140_000)], "plus")
    assert sizes(fits) == [140_000, 140_000]  # 280 KB: more than one file may be, within 300 KB
    over = upload(uploads.client, [("a", "a.bin", 150_000), ("b", "b.bin", 150_000)], "plus")
    assert problem(over, 413) == {
        "type": "urn:fairuse:problem:payload-too-large",
        "title": "Content too large",
        "status": 413,
        "detail": (
            "The request body is larger than 300 KB, the most the Plus plan allows for one"
            " request. To go beyond this limit, contact help@example.test."
        ),
        "plan": "plus",
        "limit": "upload_body",
        "limit_value": 300_000,
        "max_bytes": 300_000,
        "field": None,
        "filename": None,
        "violated-policies": ["upload_body"],
        "contact": "help@example.test",
    }


def test_a_body_cap_on_a_plain_route(uploads: Served):
    sent = {**who("basic"), "Content-Type": "application/json"}
    exact = b'{"text": "' + b"a" * (1024 - 12) + b'"}'
    assert len(exact) == 1024
    assert uploads.client.post("/v1/tickets", content=exact, headers=sent).status_code == 201
    for content in (exact + b" ", iter([exact, b" "])):
        body = problem(uploads.client.post("/v1/tickets", content=content, headers=sent), 413)
        assert (body["limit"], body["max_bytes"]) == ("ticket_body", 1024)
        assert str(body["detail"]).startswith("The request body is larger than 1 KiB")
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Workspace-ID: w\nX-Plan: plus\n"
        f"Content-Type: {MULTIPART['Content-Type']}\nContent-Length: 300001\n"
    )
    status, refused = split(raw_request(uploads.url, head))  # headers only: refused at once
    assert (status, refused["limit"]) == (413, "upload_body")
    assert uploads.errors == []


# ---- the yearly byte quota -------------------------------------------------------------------


def test_the_yearly_quota_refuses_the_file_that_would_pass_it(uploads: Served, clock: ManualClock):
    client = uploads.client
    assert sizes(upload(client, [("file", "a.bin", 100_000)], "basic")) == [100_000]
    assert sizes(upload(client, [("file", "b.bin", 100_000)], "basic")) == [100_000]

    refused = upload(client, [("file", "c.bin", 60_000)], "basic")
    assert refused.headers["retry-after"] == str(TO_YEAR_END)
    assert problem(refused, 429) == {
        "type": "urn:fairuse:problem:limit-reached",
        "title": "Limit reached",
        "status": 429,
        "detail": (
            'The file "c.bin" would take this account past its 250 KB of uploaded files per year'
            " on the Basic plan: 50 KB remains this year. The quota resets on 1 January 2027 at"
            " 00:00 UTC. Upgrade to Plus for 10 GB a year."
        ),
        "plan": "basic",
        "limit": "upload_bytes_per_year",
        "limit_value": 250_000,
        "used": 200_000,
        "max_bytes": 50_000,
        "field": "file",
        "filename": "c.bin",
        "resets_at": "2027-01-01T00:00:00Z",
        "retry_after": TO_YEAR_END,
        "violated-policies": ["upload_bytes_per_year"],
        "upgrade": {
            "plan": "plus",
            "url": "https://example.test/pricing#plus",
            "limit_value": 10_000_000_000,
        },
    }
    assert sizes(upload(client, [("file", "d.bin", 50_000)], "basic")) == [50_000]  # the rest
    quota = usage(client, "basic")
    assert (quota["used"], quota["remaining"], quota["resets_at"]) == (
        250_000,
        0,
        "2027-01-01T00:00:00Z",
    )
    empty = problem(upload(client, [("file", "e.bin", 1)], "basic"), 429)
    assert "nothing is left this year" in str(empty["detail"])
    assert sizes(upload(client, [("note", "empty.txt", 0)], "basic")) == [0]  # takes nothing

    clock.set(YEAR_END)
    assert sizes(upload(client, [("file", "f.bin", 100_000)], "basic")) == [100_000]
    assert uploads.errors == []


def usage(client: httpx.Client, plan: str) -> dict[str, object]:
    limits = client.get("/v1/usage", headers=who(plan)).json()["limits"]
    found: dict[str, object] = next(x for x in limits if x["name"] == "upload_bytes_per_year")
    return found


def test_files_of_one_request_add_up_against_the_quota(uploads: Served):
    files = [("a", "a.bin", 90_000), ("b", "b.bin", 90_000), ("c", "c.bin", 90_000)]
    body = problem(upload(uploads.client, files, "basic"), 429)
    # 250 KB remained; a.bin and b.bin took 180 KB of it, so 70 KB was left for c.bin
    assert (body["filename"], body["max_bytes"]) == ("c.bin", 70_000)
    assert ": 70 KB remains this year after the 180 KB of this request's other files." in str(
        body["detail"]
    )
    assert usage(uploads.client, "basic")["used"] == 0  # a refused request records nothing


def test_a_raw_upload_longer_than_the_quota_left_is_refused_before_its_body(uploads: Served):
    assert sizes(upload(uploads.client, [("f", "a.bin", 100_000)], "basic")) == [100_000]
    assert sizes(upload(uploads.client, [("f", "b.bin", 100_000)], "basic")) == [100_000]
    head = (
        "POST /v1/files HTTP/1.1\nHost: test\nX-Account-ID: acct\nX-Workspace-ID: ws\n"
        "X-Plan: basic\nContent-Type: application/octet-stream\nContent-Length: 50001\n"
    )
    status, body = split(raw_request(uploads.url, head))
    assert status == 429
    assert (body["limit"], body["max_bytes"], body["filename"]) == (
        "upload_bytes_per_year",
        50_000,
        None,
    )


def test_concurrent_uploads_may_each_use_the_same_remaining(
    recording: tuple[Served, RecordingApp],
):
    """The documented inexactness: both fit what their decision saw; both are recorded."""
    served, app = recording
    assert upload(served.client, [("f", "first.bin", 100_000)], "basic").status_code == 201
    app.arrivals.get(timeout=30)
    go = threading.Event()
    slow: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: slow.append(
            upload(served.client, [("f", "slow.bin", 90_000)], "basic", pause=go, pause_after=1)
        )
    )
    worker.start()
    try:
        assert app.arrivals.get(timeout=30).first_chunk.wait(timeout=30)  # decided: 150 KB left
        assert upload(served.client, [("f", "fast.bin", 90_000)], "basic").status_code == 201
    finally:
        go.set()
        worker.join(timeout=30)
    assert slow[0].status_code == 201  # 90 KB fit the 150 KB it was told of
    after = problem(upload(served.client, [("f", "late.bin", 1)], "basic"), 429, cut=False)
    assert (after["used"], after["limit"]) == (280_000, "upload_bytes_per_year")  # 30 KB over
    assert str(after["detail"]).startswith(
        "This account has used all 250 KB included in the Basic plan this year."
    )


def test_a_body_sent_whole_is_measured_the_same(uploads: Served):
    """A body sent whole (Content-Length known) is measured the same way as a streamed one."""
    content = body_of([("file", "whole.bin", 100_000)])
    sent = {**who("basic"), **MULTIPART}
    assert sizes(uploads.client.post("/v1/files", content=content, headers=sent)) == [100_000]
    content = body_of([("file", "whole.bin", 100_001)])
    refused = uploads.client.post("/v1/files", content=content, headers=sent)
    assert problem(refused, 413)["detail"] == (
        'The file "whole.bin" is larger than 100 KB, the most the Basic plan allows for one file.'
        " Upgrade to Plus for files of up to 200 KB."
    )


def test_a_byte_quota_is_announced_in_bytes(uploads: Served):
    """RateLimit-Policy's quota unit: without `qu` a client reads 250,000 requests."""
    answer = upload(uploads.client, [("f", "a.bin", 1_000)], "basic")
    assert answer.status_code == 201
    assert (
        '"upload_bytes_per_year";q=250000;qu="content-bytes";w='
        in answer.headers["ratelimit-policy"]
    )
