"""fairuse's ASGI layer: FairUseMiddleware, the identity hooks and the upload options."""

from __future__ import annotations

from .fairuse import FairUseContext, FairUseMiddleware
from .identity import HeaderIdentity, IdentityError, IdentityHeaders, IdentityHook
from .uploads import UploadOptions

__all__ = [
    "FairUseContext",
    "FairUseMiddleware",
    "HeaderIdentity",
    "IdentityError",
    "IdentityHeaders",
    "IdentityHook",
    "UploadOptions",
]
