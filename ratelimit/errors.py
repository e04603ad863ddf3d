"""Errors raised by fairuse. One root, so callers can catch everything with one clause.

FairUseError
├── PlanFileError      an invalid plans.toml: carries path, table and key
├── UnknownPlanError   a request names a plan the policy does not define
└── StorageError       the storage backend failed; wraps the client's exception
"""

from __future__ import annotations


class FairUseError(Exception):
    """Root of every error fairuse raises on purpose."""


class PlanFileError(FairUseError):
    """plans.toml is invalid. The message names the file, the table and the key."""

    def __init__(self, path: str, table: str, key: str | None, message: str) -> None:
        self.path = path
        self.table = table
        self.key = key
        self.reason = message
        super().__init__(f"{path}: [{table}] {message}")


class UnknownPlanError(FairUseError):
    def __init__(self, plan: str, known: tuple[str, ...]) -> None:
        self.plan = plan
        self.known = known
        super().__init__(f"unknown plan {plan!r}; valid plans: {', '.join(known)}")


class StorageError(FairUseError):
    """The storage failed to answer; `storage_error` is the underlying exception."""

    def __init__(self, storage_error: BaseException) -> None:
        self.storage_error = storage_error
        super().__init__(f"storage failed: {type(storage_error).__name__}: {storage_error}")
