"""The circuit breaker's state machine, on an injected clock."""

from __future__ import annotations

import logging

import pytest

from ratelimit.storage.breaker import CLOSED, OPEN, PROBING, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("redis://test", failures=3, cooldown=0.5, clock=clock)


def test_opens_after_consecutive_failures_only():
    b = breaker(Clock())
    for _ in range(5):  # a success in between resets the count
        b.before_call()
        b.failed(OSError("x"))
        b.before_call()
        b.failed(OSError("x"))
        b.succeeded()
    assert b.state == CLOSED
    for _ in range(3):
        b.before_call()
        b.failed(OSError("down"))
    assert b.state == OPEN
    with pytest.raises(CircuitOpen, match="down"):
        b.before_call()


def test_one_probe_after_the_cooldown():
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(OSError("down"))
    clock.now += 0.49
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now += 0.01
    b.before_call()  # the probe
    assert b.state == PROBING
    with pytest.raises(CircuitOpen):  # everyone else still fails fast while it runs
        b.before_call()
    b.failed(OSError("still down"))
    assert b.state == OPEN
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now += 0.5
    b.before_call()
    b.succeeded()
    assert b.state == CLOSED
    b.before_call()


def test_a_cancelled_probe_lets_the_next_call_probe():
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failed(OSError("down"))
    clock.now += 1
    b.before_call()
    b.abandoned()
    assert b.state == OPEN
    b.before_call()  # no new cooldown: the next caller probes at once
    assert b.state == PROBING


def test_logs_once_per_transition(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="fairuse.storage")
    clock = Clock()
    b = breaker(clock)
    for _ in range(50):  # requests in flight when it broke fail too; later ones fail fast
        b.failed(OSError("down"))
    for _ in range(50):
        with pytest.raises(CircuitOpen):
            b.before_call()
    clock.now += 1
    b.before_call()
    b.succeeded()
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 2 == b.transitions
    assert "unavailable after 3 consecutive failures" in loud[0]
    assert "back after 1.0 s" in loud[1]


@pytest.mark.parametrize(("failures", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_refuses_settings_that_never_close(failures: int, cooldown: float):
    with pytest.raises(ValueError, match="breaker needs"):
        CircuitBreaker("x", failures=failures, cooldown=cooldown)


def test_calls_failed_by_one_lost_connection_count_once():
    b = breaker(Clock())
    held = [b.before_call() for _ in range(5)]  # all in flight when the connection goes
    for began in held:
        b.failed(ConnectionError("reset"), began)
    assert b.state == CLOSED
    b.failed(ConnectionError("reset"), b.before_call())  # later calls: new failures
    b.failed(ConnectionError("reset"), b.before_call())
    assert b.state == OPEN


def test_calls_that_waited_out_a_timeout_count_each():
    b = breaker(Clock())
    held = [b.before_call() for _ in range(3)]
    for _ in held:
        b.failed(TimeoutError("no reply"))  # no `began`: the call's own failure
    assert b.state == OPEN
