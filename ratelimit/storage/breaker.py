"""A circuit breaker, so that a storage outage costs requests no waiting.

After `failures` consecutive failures the breaker opens: calls fail at once, without touching
the network, for `cooldown` seconds. A lost connection fails every call in flight on it at the
same moment; those count as one failure, so a single reset (a `CLIENT KILL`, a proxy's restart)
does not open the breaker while Redis answers the next call. A call that waited out a timeout
counts on its own: each such wait is the cost the breaker exists to stop.

Once the cooldown has passed, one call goes through as a probe while the others keep failing
fast; its success closes the breaker, its failure opens it for another cooldown. Each transition
is logged once (not each failed request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("fairuse.storage")

CLOSED, OPEN, PROBING = "closed", "open", "probing"


class CircuitOpen(Exception):
    """Raised instead of calling storage while the breaker is open."""


class CircuitBreaker:
    """Counts consecutive failures of one storage. Not thread-safe: one per event loop."""

    def __init__(
        self,
        name: str,
        *,
        failures: int = 3,
        cooldown: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a breaker needs failures >= 1 and cooldown > 0")
        self.name = name
        self.failures = failures
        self.cooldown = cooldown
        self.state = CLOSED
        self.transitions = 0  # times the breaker opened or closed: one log line each
        self.probes = 0  # calls let through to test an open circuit
        self._clock = clock
        self._failed = 0
        self._counted = 0  # failures counted, ever; a call begun before the last met that one
        self._opened_at = 0.0
        self._down_since = 0.0
        self._last_error: BaseException | None = None

    def before_call(self) -> int:
        """Raise CircuitOpen unless the call may reach storage (maybe as the one probe); else
        the failures counted so far, for `failed` to tell which failures struck together."""
        if self.state == CLOSED:
            return self._counted
        if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown:
            self.state = PROBING
            self.probes += 1
            return self._counted
        raise CircuitOpen(f"{self.name} is unavailable (last error: {describe(self._last_error)})")

    def succeeded(self) -> None:
        if self.state != CLOSED:
            down = self._clock() - self._down_since
            logger.warning("fairuse: storage %s is back after %.1f s", self.name, down)
            self.transitions += 1
            self.state = CLOSED
        self._failed = 0

    def failed(self, error: BaseException, began: int | None = None) -> None:
        """A call failed. `began`: what `before_call` answered it, for a failure that may have
        struck every call in flight at once (a lost connection); it is not counted again if
        another failure was counted since the call began. None: the call's own failure (a
        timeout it waited out), always counted."""
        self._last_error = error
        if self.state == PROBING:
            self.state, self._opened_at = OPEN, self._clock()
            logger.debug("fairuse: storage %s still unavailable: %s", self.name, describe(error))
            return
        if began is not None and began < self._counted:
            return  # the failure already counted, as this call met it too
        self._counted += 1
        self._failed += 1
        if self.state == CLOSED and self._failed >= self.failures:
            self.state = OPEN
            self._opened_at = self._down_since = self._clock()
            self.transitions += 1
            logger.error(
                "fairuse: storage %s unavailable after %d consecutive failures (%s); "
                "applying each limit's fail policy, probing every %.2f s",
                self.name,
                self._failed,
                describe(error),
                self.cooldown,
            )

    def abandoned(self) -> None:
        """The call was cancelled before it finished: neither success nor failure."""
        if self.state == PROBING:
            self.state = OPEN  # the next caller probes at once: the cooldown has passed


def describe(error: BaseException | None) -> str:
    """Class and message: redis-py 8 exceptions' repr drops the message."""
    return f"{type(error).__name__}: {error}" if error is not None else "none"
