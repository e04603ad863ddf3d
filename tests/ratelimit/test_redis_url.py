"""Redis storage URLs: deployments, timeouts and breaker settings from the query string."""

from __future__ import annotations

import pytest

from ratelimit.errors import FairUseError
from ratelimit.storage import storage_from_url
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
        ("redis://h:1/0?timout=0.5", "unknown parameter 'timout'"),  # a typo: 500s over TLS
        ("rediss://h:1/0?timout=0.5", "unknown parameter 'timout'"),
        ("redis://h:1/0?ssl_ca_certs=ca.pem", r"'ssl_ca_certs' \(TLS settings need rediss://\)"),
        ("redis://h:1/0?decode_responses=true", "unknown parameter 'decode_responses'"),
        ("redis://h:1/abc", "the path names a database by number, got 'abc'"),
        ("redis://h:1?db=two", "db must be a positive number, got 'two'"),
        ("redis://h:notaport/0", "the port must be a number"),
    ],
)
def test_bad_urls_are_named(url: str, message: str):
    with pytest.raises(FairUseError, match=message) as error:
        parse_redis_url(url)
    assert url in str(error.value)


def test_what_redis_py_takes_from_a_url_still_passes():
    settings = parse_redis_url(
        "rediss://h:1/2?ssl_cert_reqs=none&ssl_ca_certs=ca.pem&client_name=app"
        "&health_check_interval=5&db=2"
    )
    assert settings.url.startswith("rediss://h:1/2?ssl_cert_reqs=none&ssl_ca_certs=ca.pem")
    assert parse_redis_url("unix:///run/redis.sock?db=1").url == "unix:///run/redis.sock?db=1"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@h:1/0?timeout=abc",
        "redis://app:s3cret@h:1/0?timout=1",
        "redis+cluster://:s3cret@a:1?nope=1",
        "redis+sentinel://:s3cret@a:1",
        "http://:s3cret@h/",
    ],
)
def test_errors_never_show_the_password(url: str):
    with pytest.raises(FairUseError) as error:
        storage_from_url(url)
    assert "s3cret" not in str(error.value)
    assert ":***@" in str(error.value)


def test_cluster_and_sentinel_passwords_are_percent_decoded_as_redis_ones_are():
    assert parse_redis_url("redis+sentinel://u%40x:p%40ss%2F1@a:1/main").password == "p@ss/1"
    assert parse_redis_url("redis+cluster://u%40x:p%40ss@a:1").username == "u@x"
