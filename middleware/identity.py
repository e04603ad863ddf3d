"""Who a request is for: trusted gateway headers by default, or the app's own hook."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mypy_extensions import mypyc_attr
from starlette.types import Scope

from ratelimit import Identity
from ratelimit.identifiers import id_problem, usable_id

IdentityHook = Callable[[Scope], "Identity | Awaitable[Identity | None] | None"]


class IdentityError(Exception):
    """The request's identity is unusable; answered with 400 naming `field`."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class IdentityHeaders:
    """Header names set by the gateway or auth layer in front of the app (any case)."""

    account: str = "x-account-id"
    workspace: str = "x-workspace-id"
    plan: str = "x-plan"
    user: str = "x-user-id"


def check_identifier(field: str, value: str | None) -> str:
    """Refuse ids that are missing or that ratelimit.identifiers.id_problem finds fault with:
    empty, over 128 characters, with unprintable or invisible characters, or not in NFC."""
    if value is None:
        raise IdentityError(field, f"The {field} is missing.")
    problem = id_problem(value)
    if problem is not None:
        raise IdentityError(field, f"The {field} {problem}.")
    return value


def header_text(field: str, value: bytes) -> str:
    """A header value as text: UTF-8, as clients send non-ASCII ids; anything else is refused
    rather than guessed at, so that two spellings of one name never become two tenants' keys.
    The spaces and tabs around it are not part of it (RFC 9110, 5.5), though some servers'
    parsers (httptools) keep trailing ones.
    """
    try:
        return value.strip(b" \t").decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityError(field, f"The {field} is not valid UTF-8.") from None


def only_header(field: str, headers: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    """The one value of header `wanted` (lower-case), or None; sent twice, it is refused: a
    gateway that appended its value after the client's would otherwise let the client choose.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == wanted or (not name.islower() and name.lower() == wanted):
            if found is not None:
                raise IdentityError(field, f"The {field} header is sent more than once.")
            found = value
    return None if found is None else header_text(field, found)


@mypyc_attr(allow_interpreted_subclasses=True)  # may be subclassed, compiled or not
class HeaderIdentity:
    """Reads account, workspace, plan (and user) from request headers.

    The account defaults to the workspace when its header is absent. These headers must be set
    by a trusted layer that strips any the client sent; see the README's trust model.
    """

    def __init__(self, names: IdentityHeaders = IdentityHeaders()) -> None:
        self.names = names
        self._wanted = {  # ASGI servers send names in lower case
            names.account.lower().encode("latin-1"): "account",
            names.workspace.lower().encode("latin-1"): "workspace",
            names.plan.lower().encode("latin-1"): "plan",
            names.user.lower().encode("latin-1"): "user",
        }

    def __call__(self, scope: Scope) -> Identity:
        found: dict[str, str] = {}
        wanted = self._wanted
        for name, value in scope["headers"]:
            field = wanted.get(name)
            if field is None:
                if name.islower():  # as ASGI servers send names: no other spelling to try
                    continue
                field = wanted.get(name.lower())
                if field is None:
                    continue
            if field in found:
                raise IdentityError(field, f"The {field} header is sent more than once.")
            found[field] = header_text(field, value)
        workspace = found.get("workspace")
        account = found.get("account", workspace)
        plan = found.get("plan")
        user = found.get("user")
        if not (usable_id(workspace) and usable_id(account) and usable_id(plan)) or (
            user is not None and not usable_id(user)
        ):
            check_identifier("workspace", workspace)  # raises, naming the first bad field
            check_identifier("account", account)
            check_identifier("plan", plan)
            check_identifier("user", user)  # only reached when the user id is the bad one
        assert workspace is not None
        assert account is not None
        assert plan is not None
        return Identity(account, workspace, plan, user)


async def resolve(hook: IdentityHook, scope: Scope) -> Identity:
    """Run a sync or async hook; a hook that returns None means 'no identity'."""
    result = hook(scope)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        raise IdentityError("account", "The request carries no account identity.")
    if not isinstance(result, Identity):
        raise TypeError(f"identity hook returned {type(result).__name__}, expected Identity")
    check_identifier("account", result.account)
    check_identifier("workspace", result.workspace)
    check_identifier("plan", result.plan)
    return result
