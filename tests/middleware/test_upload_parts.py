"""The body meters on their own: exact caps however the body is cut into chunks."""

from __future__ import annotations

import pytest

from middleware.messages import size_text
from middleware.upload_parts import (
    BodyMeter,
    BodyTooLarge,
    Caps,
    FileTooLarge,
    Malformed,
    MultipartMeter,
    QuotaExceeded,
    UploadError,
    meter_for,
)

from .uploading import BOUNDARY, body_of

HEADERS = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]


def meter(caps: Caps, **options: int) -> MultipartMeter:
    found = meter_for(
        caps,
        HEADERS,
        upload=True,
        max_parts=options.get("max_parts", 1000),
        max_header_bytes=options.get("max_header_bytes", 8192),
    )
    assert isinstance(found, MultipartMeter)
    return found


def feed(target: BodyMeter, body: bytes, chunk: int) -> None:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    for n, piece in enumerate(pieces):
        target.feed(piece, n < len(pieces) - 1)


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_a_file_of_exactly_the_cap_passes_and_one_byte_more_is_refused(chunk: int):
    exact = meter(Caps(file=1000))
    feed(exact, body_of([("f", "a.bin", 1000), ("g", "b.bin", 1000)]), chunk)
    assert (exact.accepted, exact.parts, exact.ended) == (2000, 2, True)

    over = meter(Caps(file=1000))
    with pytest.raises(FileTooLarge) as refused:
        feed(over, body_of([("f", "a.bin", 1000), ("g", "b.bin", 1001)]), chunk)
    assert (refused.value.field, refused.value.filename) == ("g", "b.bin")
    assert over.accepted == 1000  # the first file was whole


@pytest.mark.parametrize("chunk", [1, 13, 100_000])
def test_the_quota_counts_every_file_of_the_request(chunk: int):
    with pytest.raises(QuotaExceeded) as refused:
        feed(meter(Caps(quota=1500)), body_of([("f", "a", 1000), ("g", "b", 501)]), chunk)
    assert refused.value.filename == "b"
    fits = meter(Caps(quota=1500))
    feed(fits, body_of([("f", "a", 1000), ("g", "b", 500)], fields=[("t", "x" * 900)]), chunk)
    assert fits.accepted == 1500  # fields are not files


def test_the_body_cap_counts_framing_too():
    body = body_of([("f", "a", 10)])
    feed(meter(Caps(body=len(body))), body, 5)
    with pytest.raises(BodyTooLarge):
        feed(meter(Caps(body=len(body) - 1)), body, 5)


def test_a_raw_body_is_one_file():
    raw = meter_for(Caps(file=10, quota=8), [], upload=True, max_parts=1, max_header_bytes=1)
    with pytest.raises(QuotaExceeded):
        feed(raw, b"a" * 9, 3)
    plain = meter_for(Caps(file=10), [], upload=False, max_parts=1, max_header_bytes=1)
    feed(plain, b"a" * 100, 3)  # not an upload route: no file at all
    assert plain.accepted == 0


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([(b"content-length", b"11")], FileTooLarge),
        ([(b"content-length", b"9")], QuotaExceeded),
        ([(b"content-type", b"multipart/form-data"), (b"content-length", b"1")], Malformed),
    ],
)
def test_refused_before_any_body(headers: list[tuple[bytes, bytes]], error: type[UploadError]):
    with pytest.raises(error):
        meter_for(Caps(file=10, quota=8), headers, upload=True, max_parts=1, max_header_bytes=1)


def test_nothing_is_held_between_chunks():
    """Only counts survive a chunk: the meter keeps no slice of the body it was given."""
    big = meter(Caps(file=10**9))
    feed(big, body_of([("f", "a.bin", 3_000_000)]), 65536)
    kept = [v for v in vars(big).values() if isinstance(v, bytes | bytearray)]
    assert sum(len(v) for v in kept) < 200, kept


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (5_000_000, "5 MB"),
        (5 * 2**20, "5 MiB"),
        (1024, "1 KiB"),
        (10_000_000_000, "10 GB"),
        (1_234_567, "1.23 MB"),
        (999, "999 bytes"),
        (1, "1 byte"),
    ],
)
def test_size_text(size: int, text: str):
    assert size_text(size) == text
