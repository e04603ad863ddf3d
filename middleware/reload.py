"""Hot reload of plans.toml: poll the file once a second, swap in a valid new policy.

Polling rather than SIGHUP: it needs no signal plumbing (uvicorn owns the process's signals, and
its multi-worker supervisor already answers SIGHUP by restarting workers), every worker process
notices a change on its own, and it follows Kubernetes ConfigMap updates, which replace the
file through a symlink swap. The cost is one stat() per process per second. A file is compared by
(inode, size, mtime), so an atomic rename into place is noticed even within one mtime tick.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from ratelimit import Policy
from ratelimit.errors import FairUseError
from ratelimit.plans_file import load_policy

logger = logging.getLogger("fairuse")

Signature = tuple[int, int, int, int] | None


def file_signature(path: str | os.PathLike[str]) -> Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    # ctime too: a copy that keeps the old mtime (cp -p, tar, reproducible builds) and size
    # still changes it
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class PolicyWatcher:
    """Reloads `path` when it changes; `apply` receives each valid new policy."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        apply: Callable[[Policy], Awaitable[None]],
        *,
        interval: float = 1.0,
        seen: Signature = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("reload interval must be positive")
        self.path = os.fspath(path)
        self.interval = interval
        self._apply = apply
        self._seen = seen if seen is not None else file_signature(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start polling on the running loop (a no-op once it runs there)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._task = loop.create_task(self._poll(), name=f"fairuse reload {self.path}")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._loop = self._task = None

    async def check(self) -> bool:
        """Reload if the file changed since last seen; True when a new policy was applied."""
        signature = file_signature(self.path)
        if signature == self._seen:
            return False
        self._seen = signature
        try:
            policy = await asyncio.to_thread(load_policy, self.path)
        except (FairUseError, OSError) as error:
            logger.error("fairuse: policy not reloaded, still serving the previous one: %s", error)
            return False
        await self._apply(policy)
        logger.warning("fairuse: reloaded the policy from %s", self.path)
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # keep watching whatever went wrong with one attempt
                logger.exception("fairuse: policy reload failed")
