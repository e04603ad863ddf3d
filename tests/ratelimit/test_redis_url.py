"""Redis storage URLs: deployments, timeouts and breaker settings from the query string."""

from __future__ import annotations

import pytest

from ratelimit.errors import FairUseError
from ratelimit.storage.redis_url import DEFAULT_TIMEOUT, parse_redis_url


def test_defaults_are_small():
    settings = parse_redis_url("redis://127.0.0.1:6380/2")
    assert settings.kind == "single"
    assert settings.socket_timeout == settings.socket_connect_timeout == DEFAULT_TIMEOUT == 0.25
    assert settings.url == "redis://127.0.0.1:6380/2"


def test_our_parameters_are_taken_out_and_the_rest_passed_on():
    settings = parse_redis_url(
        "redis://:pw@h:1/0?timeout=0.1&socket_timeout=0.3&breaker_failures=5"
        "&breaker_cooldown=2&health_check_interval=10&max_connections=8"
    )
    assert settings.socket_connect_timeout == 0.1
    assert settings.socket_timeout == 0.3  # the specific name wins over timeout
    assert (settings.breaker_failures, settings.breaker_cooldown) == (5, 2.0)
    assert settings.max_connections == 8
    assert settings.url == "redis://:pw@h:1/0?health_check_interval=10"
    assert settings.display == "redis://h:1/0"  # no password in logs


def test_cluster_and_sentinel():
    cluster = parse_redis_url("redis+cluster://:pw@a:7000,b:7001?timeout=0.5")
    assert cluster.kind == "cluster"
    assert cluster.nodes == (("a", 7000), ("b", 7001))
    assert cluster.password == "pw"
    assert cluster.socket_timeout == 0.5
    assert cluster.max_connections is None  # no cap: a burst must not be refused
    sentinel = parse_redis_url("redis+sentinel://s1:26379,s2:26380/main?db=3")
    assert (sentinel.kind, sentinel.service, sentinel.db) == ("sentinel", "main", 3)
    assert sentinel.display == "redis+sentinel://s1:26379,s2:26380/main"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h:1?timeout=0", "timeout must be a positive number, got '0'"),
        ("redis://h:1?socket_timeout=soon", "socket_timeout must be a positive number"),
        ("redis://h:1?breaker_failures=1.5", "breaker_failures must be a positive number"),
        ("redis://h:1?breaker_cooldown=nan", "breaker_cooldown must be a positive number"),
        ("redis+cluster://a:1?ssl_cert=x", "unknown parameter 'ssl_cert'"),
        ("redis+cluster://a", "expected host:port, got 'a'"),
        ("redis+sentinel://a:1", "needs a service name"),
    ],
)
def test_bad_urls_are_named(url: str, message: str):
    with pytest.raises(FairUseError, match=message) as error:
        parse_redis_url(url)
    assert url in str(error.value)
