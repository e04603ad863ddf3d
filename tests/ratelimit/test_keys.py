"""Storage keys: escaping is injective, so two different identifiers never share a key."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from hypothesis import example, given
from hypothesis import strategies as st

from ratelimit.keys import account_base, denials_key, escape, limit_key, session_key
from ratelimit.plans import Scope

# Any code point, lone surrogates included (an `identify` hook may hand over anything).
ANY = st.characters(exclude_categories=())
IDS = st.text(ANY, max_size=40) | st.sampled_from(["{", "}", ":", "%", "%3A", "{a}", "a:b", "é"])
ESCAPED = re.compile(r"[A-Za-z0-9_.~%-]*")


def unescape(escaped: str) -> str:
    return unquote_to_bytes(escaped).decode("utf-8", "surrogatepass")


@given(IDS)
@example("a:b{c}%41é\ud800")
def test_escape_is_reversible_and_leaves_no_separator(identifier: str):
    escaped = escape(identifier)
    assert ESCAPED.fullmatch(escaped), escaped  # no ':', '{', '}' or anything else
    assert unescape(escaped) == identifier  # reversible, hence injective


def parse(key: str) -> tuple[str, str, str]:
    """Read account, workspace and session back out of a session-scoped limit key."""
    match = re.fullmatch(r"fu:\{([^{}:]*)\}:l:messages:s:([^{}:]*):([^{}:]*)", key)
    assert match is not None, key
    account, workspace, session = match.groups()
    return unescape(account), unescape(workspace), unescape(session)


@given(IDS, IDS, IDS)
@example("a", "b:c", "d")
@example("a:b", "c", "d")
@example("a}", "{b", "c")
@example("%3A", ":", "%")
def test_every_key_names_its_identifiers_and_the_account_slot(
    account: str, workspace: str, session: str
):
    base = account_base("fu", account)
    ids = {Scope.WORKSPACE: escape(workspace), Scope.SESSION: escape(session)}
    key = limit_key(base, "messages", Scope.SESSION, ids)
    # the key can be read back, so different (account, workspace, session) give different keys
    assert parse(key) == (account, workspace, session)
    # the hash tag, what Redis Cluster places by, is the account's and nothing else's
    for stored in (
        key,
        limit_key(base, "sessions", Scope.WORKSPACE, ids),
        session_key(base, workspace, session),
        denials_key(base, workspace),
    ):
        assert stored[stored.index("{") + 1 : stored.index("}")] == escape(account)
        assert stored.count("{") == stored.count("}") == 1


@given(st.lists(IDS, min_size=2, max_size=8, unique=True))
def test_distinct_identifiers_distinct_keys(identifiers: list[str]):
    bases = {account_base("fu", account) for account in identifiers}
    assert len(bases) == len(identifiers)
    base = account_base("fu", "acme")
    sessions = {session_key(base, "main", session) for session in identifiers}
    assert len(sessions) == len(identifiers)
