"""Redis storage URLs: which deployment, where, and the timeouts and breaker taken from the query.

Query parameters understood on every Redis URL (seconds unless said otherwise):

    timeout=0.25             connect and read timeout together (the two below override it)
    socket_connect_timeout   time to open a connection          (default 0.25)
    socket_timeout           time to wait for each reply        (default 0.25)
    pool_timeout             wait for a free pooled connection   (default 1.0)
    max_connections          pool size per process (default 64; per node on a cluster, no cap)
    breaker_failures         consecutive failures that open the circuit breaker (default 3)
    breaker_cooldown         how long it stays open before one probe (default 0.5)

On single-server URLs these pass through to redis-py: `db`, `client_name`,
`health_check_interval`, `socket_keepalive`, `socket_read_size`, `retry_on_timeout`,
`retry_on_error`, `protocol`, and on `rediss://` the `ssl_*` settings (`ssl_ca_certs`,
`ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`, ...). Any other parameter is refused at start-up
(a misspelt one would otherwise fail every request, or be ignored); on cluster and sentinel URLs
every other parameter is refused, except `db` on sentinel. Errors show the URL with its password
replaced by `***`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import FairUseError

DEFAULT_TIMEOUT = 0.25  # connect and reply: an outage must not hold requests for long
DEFAULT_POOL_TIMEOUT = 1.0  # a healthy but busy Redis: wait for a pooled connection
DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_BREAKER_FAILURES = 3
DEFAULT_BREAKER_COOLDOWN = 0.5  # recovery is noticed within this long of Redis coming back

SINGLE = frozenset({"redis", "rediss", "unix", "redis+unix"})
FLOATS = ("socket_timeout", "socket_connect_timeout", "pool_timeout", "breaker_cooldown")
INTS = ("max_connections", "breaker_failures")
PASSED_ON = frozenset(
    {"db", "client_name", "health_check_interval", "socket_keepalive", "socket_read_size"}
    | {"retry_on_timeout", "retry_on_error", "protocol"}
)
PASSED_ON_TLS = PASSED_ON | {
    "ssl_ca_certs", "ssl_ca_data", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "ssl_password",
    "ssl_cert_reqs", "ssl_check_hostname", "ssl_ciphers", "ssl_min_version",
}  # fmt: skip


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
    """Read a Redis storage URL; raise FairUseError naming the URL (its password hidden) and
    the bad part."""
    parts = urlsplit(url)
    shown = shown_url(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    ours: dict[str, Any] = {}
    if "timeout" in query:
        both = _number(shown, "timeout", query.pop("timeout"), float)
        ours["socket_timeout"] = ours["socket_connect_timeout"] = both
    for name in FLOATS + INTS:
        if name in query:
            ours[name] = _number(shown, name, query.pop(name), float if name in FLOATS else int)
    host = parts.netloc.rsplit("@", 1)[-1]
    display = f"{scheme}://{host}{parts.path if scheme in SINGLE else ''}"
    if scheme in SINGLE:
        _check_single(parts, query, shown)
        if scheme in ("unix", "redis+unix"):  # urlunsplit would drop the empty host's "//"
            rest = urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))
            clean = f"unix://{parts.netloc}{rest}"
        else:
            clean = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
        return RedisSettings("single", clean, display, **ours)
    db = int(_number(shown, "db", query.pop("db", "0"), int, zero=True))
    if query:
        raise FairUseError(f"storage URL {shown!r}: unknown parameter {next(iter(query))!r}")
    nodes = _host_ports(host, shown)
    user, password = parts.username, parts.password  # percent-decoded, as redis:// ones are
    common: dict[str, Any] = dict(
        username=None if user is None else unquote(user),
        password=None if password is None else unquote(password),
        **ours,
    )
    if scheme == "redis+cluster":
        return RedisSettings("cluster", url, display, nodes, **common)
    if scheme == "redis+sentinel":
        service = parts.path.strip("/").split("/")[0]
        if not service:
            raise FairUseError(f"storage URL {shown!r} needs a service name: .../SERVICE")
        return RedisSettings("sentinel", url, f"{display}/{service}", nodes, service, db, **common)
    raise FairUseError(f"unsupported storage URL {shown!r}")


def shown_url(url: str) -> str:
    """`url` as errors and logs may show it: any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def _check_single(parts: Any, query: dict[str, str], shown: str) -> None:
    """A single server's port, db and redis-py parameters, checked now: redis-py would fail
    every request on a parameter it does not take, or quietly ignore a bad db."""
    scheme = parts.scheme.lower()
    if scheme in ("redis", "rediss"):
        try:
            parts.port  # noqa: B018 - reading it is the check
        except ValueError:
            raise FairUseError(f"storage URL {shown!r}: the port must be a number") from None
        path_db = parts.path.strip("/")
        if path_db and not (path_db.isascii() and path_db.isdigit()):
            raise FairUseError(
                f"storage URL {shown!r}: the path names a database by number, got {path_db!r}"
            )
    if "db" in query:
        _number(shown, "db", query["db"], int, zero=True)
    known = PASSED_ON_TLS if scheme == "rediss" else PASSED_ON
    for name in query:
        if name not in known:
            hint = " (TLS settings need rediss://)" if name in PASSED_ON_TLS else ""
            raise FairUseError(f"storage URL {shown!r}: unknown parameter {name!r}{hint}")


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
