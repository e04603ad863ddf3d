"""Value parsers for plans.toml: names, amounts, sizes, sources, periods and match templates.

Each parser takes the key it reads and the raw TOML value and raises ValueError with a whole
sentence that names the key; `Table` adds the file and the table, so every message points home.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits

from .errors import PlanFileError
from .periods import Period, parse_duration, parse_period
from .plans import Kind, Source

T = TypeVar("T")
D = TypeVar("D")

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The RateLimit fields carry amounts as RFC 8941 integers, at most 15 digits; below that bound
# they are also exact as the Lua doubles the scripts compare them as.
MAX_AMOUNT = 10**15
SIZE_UNITS = {"B": 1, "KB": 10**3, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
SIZE_UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_FW, _SW, _TB, _DI = Kind.FIXED_WINDOW, Kind.SLIDING_WINDOW, Kind.TOKEN_BUCKET, Kind.DISTINCT
KIND_KEYS: dict[str, tuple[Kind, ...]] = {  # keys only some kinds take
    "scope": (_FW, _SW, _TB, _DI),
    "counts": (_FW, _SW, _TB, _DI),
    "per": (_FW, _SW, _TB),
    "rate": (_FW, _SW, _TB),
    "burst": (_TB,),
    "notify_at": (_FW, _SW, _DI),  # a bucket refills continuously; sizes have nothing to use up
    "timezone": (_FW,),
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)")
_PARAM = re.compile(r"\{([^{}]*)\}")
_PARAM_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(:path)?")
_ZERO_PERIOD = re.compile(r"(?:\bper\b|/)\s*0+\s*[A-Za-z]")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token


class Unset(enum.Enum):
    """A key the file leaves out, told apart from an explicit "none"."""

    UNSET = 0


UNSET = Unset.UNSET


class Table:
    """One TOML table: unknown keys are refused on entry; a key that fails to parse is named."""

    def __init__(self, path: str, name: str, data: Mapping[str, object], allowed: Sequence[str]):
        self.path = path
        self.name = name
        self.data = data
        for key in data:
            if key not in allowed:
                raise self.error(key, f"unknown key {key!r}; allowed: {', '.join(allowed)}")

    def error(self, key: str | None, message: str) -> PlanFileError:
        return PlanFileError(self.path, self.name, key, message)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, parse: Callable[[str, object], T], default: D) -> T | D:
        return self.require(key, parse) if key in self.data else default

    def require(self, key: str, parse: Callable[[str, object], T], hint: str = "") -> T:
        if key not in self.data:
            raise self.error(key, f"missing required key {key!r}{hint}")
        try:
            return parse(key, self.data[key])
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def sub(self, key: str, allowed: Sequence[str]) -> Table:
        """The table under `key` ({} when absent), with its own whitelist."""
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"{key} must be a table, got {show(value)}")
        return Table(self.path, f"{self.name}.{key}".lstrip("."), value, allowed)

    def tables(self, key: str) -> dict[str, Mapping[str, object]]:
        """The sub-tables under `key` ([routes.NAME], ...), in file order; {} when absent."""
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"{key} must be a table, got {show(value)}")
        for name, sub in value.items():
            if not isinstance(sub, dict):
                raise PlanFileError(
                    self.path,
                    f"{self.name}.{key}".lstrip("."),
                    name,
                    f"{name} must be a table ([{key}.{name}]), got {show(sub)}",
                )
        return value


def toml_message(message: str, text: str) -> str:
    """tomllib's "Invalid value (at line 3, column 7)" -> where first, then what."""
    reason, _, where = message.rpartition(" (at ")
    reason = reason[:1].lower() + reason[1:]
    found = re.fullmatch(r"line (\d+), column (\d+)\)", where)
    if found:
        return f"invalid TOML at line {found[1]}, column {found[2]}: {reason}"
    if where == "end of document)":
        lines = max(1, len(text.splitlines()))
        return f"invalid TOML at the end of the file (line {lines}): {reason}"
    return f"invalid TOML: {message}"


def show(value: object) -> str:
    """A value as it would be written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def check_name(what: str, name: str) -> None:
    """Names become storage keys and messages: keep them short and plain."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"{what} name {show(name)} is not allowed: use 1 to 40 lower-case letters, digits"
            " or '_', starting with a letter"
        )


def not_for(key: str, kind: Kind) -> str:
    """Why `key` is refused on a `kind` limit, naming the kinds that do take it."""
    takers = [str(k) for k in KIND_KEYS[key]]
    listed = ", ".join(takers[:-1]) + " and " + takers[-1] if len(takers) > 1 else takers[0]
    return f"{key} does not apply to {kind} limits; only {listed} limits take it"


def text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty string, got {show(value)}")
    return value


def boolean(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {show(value)}")
    return value


def names(key: str, value: object) -> tuple[str, ...]:
    """An array of names, in file order without repeats."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be an array of names, got {show(value)}")
    if not value:
        raise ValueError(f"{key} must name at least one entry; leave {key} out to mean all")
    return tuple(dict.fromkeys(value))


def choice(options: Sequence[str], hint: str = "") -> Callable[[str, object], str]:
    def parse(key: str, value: object) -> str:
        if value not in options:
            allowed = ", ".join(options)
            raise ValueError(f"{key} must be one of {allowed}, got {show(value)}{hint}")
        return str(value)

    return parse


def positive_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {show(value)}")
    return value


def amount(key: str, value: object) -> int | None:
    """A count: a positive integer, or "unlimited" (None)."""
    if value == "unlimited":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{key} must be a positive integer or "unlimited", got {show(value)}')
    if value >= MAX_AMOUNT:
        raise ValueError(f"{key} {value} is too large: amounts must be below 10**15")
    return value


def size(key: str, value: object) -> int | None:
    """A byte size: "5 MB" (10**6), "5 MiB" (2**20), a positive integer of bytes, or "unlimited"."""
    if value == "unlimited":
        return None
    count: Decimal | int = 0
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    found = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found and found.group(2) in SIZE_UNITS:
        count = Decimal(found.group(1)) * SIZE_UNITS[found.group(2)]
    if 1 <= count < MAX_AMOUNT and count == int(count):
        return int(count)
    raise ValueError(
        f'{key} must be a size such as "5 MB", "512 KiB" or "100 B", a positive number of bytes'
        f' below 10**15, or "unlimited", got {show(value)}'
    )


def notify_at(key: str, value: object) -> float | None:
    """The share of a limit whose crossing sends a notice; "none" (None) turns notices off."""
    if value == "none":
        return None
    if isinstance(value, float) and 0 < value < 1:
        return value
    raise ValueError(
        f'{key} must be a number between 0 and 1 (exclusive) such as 0.8, or "none", got'
        f" {show(value)}"
    )


def timezone(key: str, value: object) -> ZoneInfo:
    name = text(key, value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'{key}: unknown timezone {show(name)}; use an IANA name such as "UTC" or'
            ' "America/Chicago"'
        ) from None


def period(key: str, value: object) -> Period:
    try:
        return parse_period(text(key, value))
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def duration(key: str, value: object) -> float:
    try:
        return parse_duration(text(key, value))
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def rate(key: str, value: object) -> tuple[int, Period]:
    """A rate in the limits package's notation, "30/minute" or "100 per 15 minutes"."""
    written = text(key, value)
    try:
        items = limits.parse_many(written)
    except ValueError as exc:
        raise ValueError(
            f'{key}: {exc}; write it like "30/minute" or "100 per 15 minutes"'
        ) from None
    if len(items) != 1:
        raise ValueError(f'{key} must be one rate such as "30/minute", got {show(value)}')
    item = items[0]
    if not 1 <= item.amount < MAX_AMOUNT:
        raise ValueError(f"{key} must allow 1 to 10**15 - 1 per period, got {show(value)}")
    if _ZERO_PERIOD.search(written):  # the limits package reads "per 0 minutes" as per 1
        raise ValueError(f"{key} needs a period of at least 1, got {show(value)}")
    try:
        every = parse_period(f"{item.multiples or 1} {item.GRANULARITY.name}")
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
    return item.amount, every


def source(params: Sequence[str], template: str) -> Callable[[str, object], Source]:
    """Parses "path:PARAM" (a parameter of `template`) or "header:Header-Name" (lower-cased)."""

    def parse(key: str, value: object) -> Source:
        kind, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
        if kind == "path" and name:
            if name not in params:
                known = ", ".join(params) or "none"
                raise ValueError(
                    f'{key} = {show(value)} names no parameter of "{template}"; its parameters:'
                    f" {known}"
                )
            return Source("path", name)
        if kind == "header" and _HEADER.fullmatch(name):
            return Source("header", name.lower())
        raise ValueError(f'{key} must be "path:PARAM" or "header:Header-Name", got {show(value)}')

    return parse


def cost(key: str, value: object) -> int | Source:
    if isinstance(value, str) and value.startswith("header:") and _HEADER.fullmatch(value[7:]):
        return Source("header", value[7:].lower())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < MAX_AMOUNT:
        return value
    raise ValueError(f'{key} must be a positive integer or "header:Header-Name", got {show(value)}')


@dataclass(frozen=True, slots=True)
class Match:
    """A parsed `match`, with a shape (parameter names erased) to find duplicate routes."""

    method: str
    template: str
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    shape: str  # equal shapes match the same requests


def match(key: str, value: object) -> Match:
    """Parses "METHOD /path/{param}": {name} matches one path segment, {name:path} several."""
    words = text(key, value).split()
    if len(words) != 2:
        raise ValueError(
            f'{key} must be "METHOD /path", such as "POST /v1/chats/{{chat_id}}/messages", got'
            f" {show(value)}"
        )
    method, template = words
    if method not in METHODS:
        raise ValueError(f'{key}: unknown method "{method}"; use one of {", ".join(METHODS)}')
    if not template.startswith("/"):
        raise ValueError(f'{key}: the path must start with "/", got "{template}"')
    if any(mark in template for mark in "?#%"):  # such a rule could never match a request
        raise ValueError(
            f"{key}: the path is matched as the app sees it, decoded and without a query or"
            f' fragment; write it without "?", "#" or "%" escapes, got "{template}"'
        )
    regex, shape, params, end = [], [], [], 0
    for found in [*_PARAM.finditer(template), None]:
        literal = template[end : found.start() if found else len(template)]
        if "{" in literal or "}" in literal:
            raise ValueError(
                f'{key}: unbalanced brace in "{template}"; write {{name}} or {{name:path}}'
            )
        regex.append(re.escape(literal))
        shape.append(literal)
        if found is None:
            break
        end = found.end()
        param = _PARAM_NAME.fullmatch(found.group(1))
        if not param:
            raise ValueError(
                f'{key}: bad parameter "{found.group(0)}" in "{template}"; write {{name}} or'
                " {name:path}"
            )
        name, many = param.group(1), bool(param.group(2))
        if name in params:
            raise ValueError(f'{key}: parameter "{name}" appears twice in "{template}"')
        params.append(name)
        regex.append(f"(?P<{name}>{'.+' if many else '[^/]+'})")
        shape.append("{:path}" if many else "{}")
    return Match(method, template, re.compile("".join(regex)), tuple(params), "".join(shape))
