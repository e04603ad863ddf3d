"""Storage keys. Every key of one account shares the `{account}` hash tag (one Cluster slot).

Identifiers from requests are percent-encoded with nothing left unescaped but letters, digits and
`-._~`, so the encoding is injective and no crafted id can contain `:`, `{` or `}`: two different
identifiers never share a key, and an id can never reach into another tenant's keys.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from .plans import Kind, Scope

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch  # what quote() leaves as it is


def escape(identifier: str) -> str:
    if _UNRESERVED(identifier):  # the common case, without quote()'s per-character work
        return identifier
    # surrogatepass: a lone surrogate (from an identify hook) gets bytes of its own, not an error
    return quote(identifier.encode("utf-8", "surrogatepass"), safe="")


def account_base(prefix: str, account: str) -> str:
    return f"{prefix}:{{{escape(account)}}}"


def limit_key(base: str, limit: str, scope: Scope, ids: dict[Scope, str]) -> str:
    """The key of one limit for one scope; `ids` holds the already-escaped scope ids."""
    tail = limit_key_tail(limit, scope)
    if scope is Scope.ACCOUNT:
        return base + tail
    if scope is Scope.SESSION:
        return f"{base}{tail}{ids[Scope.WORKSPACE]}:{ids[Scope.SESSION]}"
    return base + tail + ids[scope]


def stored_name(limit: str, kind: Kind) -> str:
    """A limit's name in its keys: a distinct cap's members are a set, every other kind's
    counts a hash, so a reload that changes a limit's kind under one name starts afresh
    instead of meeting the other type (WRONGTYPE, for every request of the account)."""
    return f"{limit}.m" if kind is Kind.DISTINCT else limit


def limit_key_tail(limit: str, scope: Scope) -> str:
    """What follows the account base in a limit's key, up to its scope ids (built once)."""
    if scope is Scope.ACCOUNT:
        return f":l:{limit}"
    if scope is Scope.WORKSPACE:
        return f":l:{limit}:w:"
    if scope is Scope.SESSION:
        return f":l:{limit}:s:"
    return f":l:{limit}:{scope.value[0]}:"


def session_key(base: str, workspace: str, session: str) -> str:
    """Marks a live chat session; its value is the ms time the session goes idle."""
    return f"{base}:s:{escape(workspace)}:{escape(session)}"


def overrides_key(base: str) -> str:
    """The account's limit overrides: fields LIMIT and LIMIT:w:WORKSPACE (see decide.lua)."""
    return f"{base}:o"


def suspensions_key(base: str) -> str:
    """The account's suspensions: one field per suspended workspace, "*" for all of them."""
    return f"{base}:x"


def denials_key(base: str, workspace: str) -> str:
    """Denied requests of one workspace since the first in the suspension rule's period."""
    return f"{base}:d:{escape(workspace)}"
