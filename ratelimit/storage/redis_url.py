"""Redis storage URLs: which deployment, where, and the timeouts and breaker taken from the query.

Query parameters understood on every Redis URL (seconds unless said otherwise):

    timeout=0.25             connect and read timeout together (the two below override it)
    socket_connect_timeout   time to open a connection          (default 0.25)
    socket_timeout           time to wait for each reply        (default 0.25)
    pool_timeout             wait for a free pooled connection   (default 1.0)
    max_connections          pool size per process (default 64; per node on a cluster, no cap)
    breaker_failures         consecutive failures that open the circuit breaker (default 3)
    breaker_cooldown         how long it stays open before one probe (default 0.5)

Other parameters pass through to redis-py on plain `redis://` URLs; on cluster and sentinel URLs
they are refused, except `db` on sentinel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import FairUseError

DEFAULT_TIMEOUT = 0.25  # connect and reply: an outage must not hold requests for long
DEFAULT_POOL_TIMEOUT = 1.0  # a healthy but busy Redis: wait for a pooled connection
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_BREAKER_FAILURES = 3
DEFAULT_BREAKER_COOLDOWN = 0.5  # recovery is noticed within this long of Redis coming back

SINGLE = frozenset({"redis", "rediss", "unix", "redis+unix"})
FLOATS = ("socket_timeout", "socket_connect_timeout", "pool_timeout", "breaker_cooldown")
INTS = ("max_connections", "breaker_failures")


@dataclass(frozen=True, slots=True)
class RedisSettings:
    kind: str  # "single", "cluster" or "sentinel"
    url: str  # single: the URL for redis-py with our own parameters removed
    display: str  # scheme://hosts, without credentials, for logs
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    socket_timeout: float = DEFAULT_TIMEOUT
    socket_connect_timeout: float = DEFAULT_TIMEOUT
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    max_connections: int | None = None  # single: DEFAULT_MAX_CONNECTIONS; cluster: no cap
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN


def parse_redis_url(url: str) -> RedisSettings:
    """Read a Redis storage URL; raise FairUseError naming the URL and the bad part."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    ours: dict[str, Any] = {}
    if "timeout" in query:
        both = _number(url, "timeout", query.pop("timeout"), float)
        ours["socket_timeout"] = ours["socket_connect_timeout"] = both
    for name in FLOATS + INTS:
        if name in query:
            ours[name] = _number(url, name, query.pop(name), float if name in FLOATS else int)
    host = parts.netloc.rsplit("@", 1)[-1]
    display = f"{scheme}://{host}{parts.path if scheme in SINGLE else ''}"
    if scheme in SINGLE:
        if scheme in ("unix", "redis+unix"):  # urlunsplit would drop the empty host's "//"
            rest = urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))
            clean = f"unix://{parts.netloc}{rest}"
        else:
            clean = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
        return RedisSettings("single", clean, display, **ours)
    db = int(_number(url, "db", query.pop("db", "0"), int, zero=True))
    if query:
        raise FairUseError(f"storage URL {url!r}: unknown parameter {next(iter(query))!r}")
    nodes = _host_ports(host, url)
    common: dict[str, Any] = dict(username=parts.username, password=parts.password, **ours)
    if scheme == "redis+cluster":
        return RedisSettings("cluster", url, display, nodes, **common)
    if scheme == "redis+sentinel":
        service = parts.path.strip("/").split("/")[0]
        if not service:
            raise FairUseError(f"storage URL {url!r} needs a service name: .../SERVICE")
        return RedisSettings("sentinel", url, f"{display}/{service}", nodes, service, db, **common)
    raise FairUseError(f"unsupported storage URL {url!r}")


def _number(
    url: str, name: str, value: str, kind: type[float] | type[int], zero: bool = False
) -> float:
    try:
        number = kind(value)
    except ValueError:
        number = -1
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        raise FairUseError(f"storage URL {url!r}: {name} must be a positive number, got {value!r}")
    return number


def _host_ports(netloc: str, url: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise FairUseError(f"storage URL {url!r}: expected host:port, got {part!r}")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)
