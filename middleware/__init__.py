"""fairuse's ASGI layer: FairUseMiddleware and the identity hooks."""

from __future__ import annotations

from .fairuse import FairUseContext, FairUseMiddleware
from .identity import HeaderIdentity, IdentityError, IdentityHeaders, IdentityHook

__all__ = [
    "FairUseContext",
    "FairUseMiddleware",
    "HeaderIdentity",
    "IdentityError",
    "IdentityHeaders",
    "IdentityHook",
]
