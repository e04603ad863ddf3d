"""Measure a request body as it streams: each multipart file part, or a raw body as one file.

Nothing is buffered: python-multipart's callbacks hand over slices of each chunk and only their
lengths are kept, as Starlette's `MultiPartParser.on_part_data` does when it spools. A meter
raises an `UploadError` the moment a byte passes a limit, before that chunk reaches the app.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks


class UploadError(Exception):
    """The body cannot go on to the app. `field` and `filename` name the file, when there is one."""

    def __init__(self, field: str | None = None, filename: str | None = None) -> None:
        super().__init__(field, filename)
        self.field = field
        self.filename = filename


class FileTooLarge(UploadError):
    """One file passed the per-file cap."""


class BodyTooLarge(UploadError):
    """The whole body passed the per-request cap."""


class QuotaExceeded(UploadError):
    """The files of this request passed what remains of a byte quota; `before`: the bytes of
    its files before this one, which took part of what remained."""

    def __init__(self, field: str | None, filename: str | None, before: int = 0) -> None:
        super().__init__(field, filename)
        self.before = before


class Malformed(UploadError):
    """Not a multipart body the guard (or any form parser) can read."""

    def __init__(self, detail: str) -> None:
        super().__init__()
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Caps:
    """Byte limits for one request; None: no limit of that kind."""

    file: int | None = None  # each file
    body: int | None = None  # the whole body, framing included
    quota: int | None = None  # the files together: what remains of the tightest byte quota


class BodyMeter:
    """Counts a body's bytes; on an upload route a raw body is one file (`raw_file`)."""

    def __init__(self, caps: Caps, *, raw_file: bool = False, filename: str | None = None):
        self.caps = caps
        self.raw_file = raw_file
        self.filename = filename
        self.received = 0  # body bytes, framing included
        self.accepted = 0  # bytes of files whose last byte has arrived within every cap

    def feed(self, chunk: bytes, more: bool) -> None:
        """Take the next chunk (`more`: another follows); raise if it breaks a limit."""
        self.received += len(chunk)
        if self.caps.body is not None and self.received > self.caps.body:
            raise BodyTooLarge()
        if self.raw_file:
            self._check_file(self.received, self.received, None, self.filename)
            if not more:
                self.accepted = self.received

    def _check_file(self, size: int, files: int, field: str | None, filename: str | None) -> None:
        """`size`: this file so far; `files`: every file of the request so far, this one too."""
        if self.caps.file is not None and size > self.caps.file:
            raise FileTooLarge(field, filename)
        if self.caps.quota is not None and files > self.caps.quota:
            raise QuotaExceeded(field, filename, files - size)


class MultipartMeter(BodyMeter):
    """Parses multipart/form-data incrementally and measures every part with a filename."""

    def __init__(self, caps: Caps, boundary: bytes, *, max_parts: int, max_header_bytes: int):
        super().__init__(caps)
        self.max_parts = max_parts
        self.max_header_bytes = max_header_bytes
        self.parts = 0
        self.ended = False
        self._header_bytes = 0
        self._header_name = b""
        self._value = b""  # the Content-Disposition header being read
        self._disposition: bytes | None = None  # the part's Content-Disposition, once read
        self._file: tuple[str, str] | None = None  # (field, filename) of the part being read
        self._size = 0
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }
        # Our count of a part's header bytes is the cap: the library reports header data at
        # least once per chunk, so it binds within one chunk. The library's own per-line cap
        # would trip first, with a vaguer message; its limit of 8 headers per part stays.
        try:
            self.parser = MultipartParser(boundary, callbacks, max_header_size=sys.maxsize)
        except FormParserError as error:
            raise Malformed(f"The multipart boundary is not valid: {error}.") from None

    def feed(self, chunk: bytes, more: bool) -> None:
        super().feed(chunk, more)
        try:
            self.parser.write(chunk)
        except FormParserError as error:
            reason = str(error).rstrip(".")
            raise Malformed(f"The body is not valid multipart/form-data: {reason}.") from None
        if not more and not self.ended:
            raise Malformed("The multipart body ended before its closing boundary.")

    def _on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise Malformed(f"The upload has more than {self.max_parts:,} parts.")
        self._header_bytes = 0
        self._disposition = None
        self._file = None
        self._size = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        if self._header_name.lower() == b"content-disposition":
            self._value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            if self._disposition is not None:  # form parsers differ on which one counts
                raise Malformed(f"Part {self.parts} has more than one Content-Disposition header.")
            self._disposition = self._value
            self._value = b""
        self._header_name = b""

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            raise Malformed(
                f"The headers of part {self.parts} are larger than {self.max_header_bytes:,} bytes."
            )

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition or b"")
        if b"name" not in options:
            raise Malformed(f'Part {self.parts} has no Content-Disposition header with a "name".')
        if b"filename" in options:
            self._file = (decode(options[b"name"]), decode(options[b"filename"]))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._size += end - start
            self._check_file(self._size, self.accepted + self._size, *self._file)

    def _on_part_end(self) -> None:
        if self._file is not None:
            self.accepted += self._size
            self._file = None

    def _on_end(self) -> None:
        self.ended = True


def decode(raw: bytes) -> str:
    """Header parameters are UTF-8 in practice; latin-1 never fails (Starlette does the same)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


SINGLE_HEADERS = {
    b"content-type": "Content-Type",
    b"content-length": "Content-Length",
    b"content-disposition": "Content-Disposition",
}


def meter_for(
    caps: Caps,
    headers: list[tuple[bytes, bytes]],
    *,
    upload: bool,
    max_parts: int,
    max_header_bytes: int,
) -> BodyMeter:
    """The meter for a request. Raises at once, before any body is read, when the
    Content-Length already breaks a cap or a multipart body names no usable boundary.
    """
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in SINGLE_HEADERS:
            if name in found:  # which one a framework reads differs: refuse, don't guess
                raise Malformed(f"The {SINGLE_HEADERS[name]} header is sent more than once.")
            found[name] = value
    content_type = found.get(b"content-type", b"")
    disposition = found.get(b"content-disposition", b"")
    raw_length = found.get(b"content-length", b"")
    length = int(raw_length) if raw_length.isdigit() and len(raw_length) < 20 else None
    if length is not None and caps.body is not None and length > caps.body:
        raise BodyTooLarge()
    kind, options = parse_options_header(content_type)
    if upload and kind == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise Malformed("A multipart/form-data body needs a boundary in its Content-Type.")
        return MultipartMeter(
            caps, boundary, max_parts=max_parts, max_header_bytes=max_header_bytes
        )
    filename = None
    if upload and disposition:
        raw = parse_options_header(disposition)[1].get(b"filename")
        filename = None if raw is None else decode(raw)
    meter = BodyMeter(caps, raw_file=upload, filename=filename)
    if upload and length is not None:
        meter._check_file(length, length, None, filename)
    return meter
