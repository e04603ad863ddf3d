"""fairuse's engine: plans, limits, algorithms and storage. No ASGI here."""

from __future__ import annotations

from .clock import Clock, ManualClock, SystemClock
from .decision import Decision, LimitStatus
from .errors import FairUseError, PlanFileError, StorageError, UnknownPlanError
from .limiter import Identity, Limiter
from .plans import Limit, Plan, Policy, Upgrade
from .plans_file import load_policy, parse_policy
from .storage import Storage, storage_from_url

__all__ = [
    "Clock",
    "Decision",
    "FairUseError",
    "Identity",
    "Limit",
    "LimitStatus",
    "Limiter",
    "ManualClock",
    "Plan",
    "PlanFileError",
    "Policy",
    "Storage",
    "StorageError",
    "SystemClock",
    "UnknownPlanError",
    "Upgrade",
    "load_policy",
    "parse_policy",
    "storage_from_url",
]
