"""HeaderIdentity: its quick acceptance agrees with check_identifier; what it refuses outright."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middleware.identity import (
    HeaderIdentity,
    IdentityError,
    IdentityHeaders,
    check_identifier,
)
from ratelimit import Identity
from ratelimit.identifiers import MAX_ID_LENGTH

ids = st.one_of(
    st.none(),
    st.just(""),
    st.text(min_size=1, max_size=4),
    st.text(alphabet="ab\x00\x7f\u200b\u00e9\u0301\u034f\u3164\ufe0f \t", min_size=1, max_size=3),
    st.integers(MAX_ID_LENGTH - 1, MAX_ID_LENGTH + 1).map(lambda n: "w" * n),
)
names = {"account": b"X-Account-ID", "workspace": b"x-workspace-id", "plan": b"x-plan"}


def expected(values: dict[str, str | None]) -> Identity | str:
    """The identity, or the field named in the refusal: check_identifier in field order."""
    try:
        workspace = check_identifier("workspace", values["workspace"])
        account = check_identifier("account", values["account"] or workspace)
        if values["account"] is not None:
            account = check_identifier("account", values["account"])
        plan = check_identifier("plan", values["plan"])
        user = values["user"]
        return Identity(
            account, workspace, plan, None if user is None else check_identifier("user", user)
        )
    except IdentityError as error:
        return error.field


@given(st.fixed_dictionaries({"account": ids, "workspace": ids, "plan": ids, "user": ids}))
def test_header_identity_accepts_what_check_identifier_accepts(values: dict[str, str | None]):
    headers = [(b"host", b"example")]
    for field, value in values.items():
        if value is not None:
            name = names.get(field, b"x-user-id")
            headers.append((name, value.encode("utf-8")))
    try:
        found: Identity | str = HeaderIdentity()({"type": "http", "headers": headers})
    except IdentityError as error:
        found = error.field
    # the spaces and tabs around a header's value are not part of it (RFC 9110, 5.5)
    read = {field: None if v is None else v.strip(" \t") for field, v in values.items()}
    assert found == expected(read)


def identify(headers: list[tuple[bytes, bytes]], names: IdentityHeaders | None = None) -> Identity:
    return HeaderIdentity(names or IdentityHeaders())({"type": "http", "headers": headers})


def test_a_header_sent_twice_is_refused_even_with_the_same_value():
    """A gateway that appends its value after the client's would otherwise let the client pick."""
    for twice in ([(b"x-plan", b"pro")], [(b"x-workspace-id", b"w")]):
        headers = [(b"x-workspace-id", b"w"), (b"x-plan", b"pro"), *twice]
        with pytest.raises(IdentityError, match="header is sent more than once") as refused:
            identify(headers)
        assert (
            refused.value.field == {b"x-plan": "plan", b"x-workspace-id": "workspace"}[twice[0][0]]
        )


def test_ids_are_decoded_as_utf8_and_other_bytes_are_refused():
    assert (
        identify([(b"x-workspace-id", "Ärzte".encode()), (b"x-plan", b"pro")]).workspace == "Ärzte"
    )
    with pytest.raises(IdentityError, match="The workspace is not valid UTF-8"):
        identify([(b"x-workspace-id", b"Caf\xe9"), (b"x-plan", b"pro")])


def test_header_names_may_be_given_in_any_case():
    names = IdentityHeaders(workspace="X-Tenant-ID", plan="X-Tier")
    found = identify([(b"x-tenant-id", b"t"), (b"x-tier", b"pro")], names)
    assert (found.workspace, found.plan) == ("t", "pro")


# The Default_Ignorable_Code_Point characters that str.isprintable() lets through
# (DerivedCoreProperties.txt against Python's unicodedata): each draws as nothing.
PRINTABLE_IGNORABLES = [
    "\u034f",  # combining grapheme joiner
    "\u115f",
    "\u1160",
    "\u3164",
    "\uffa0",  # Hangul fillers
    "\u17b4",
    "\u17b5",  # Khmer inherent vowels
    *[chr(c) for c in range(0x180B, 0x180E)],
    "\u180f",  # Mongolian variation selectors
    *[chr(c) for c in range(0xFE00, 0xFE10)],
    *[chr(c) for c in range(0xE0100, 0xE01F0)],  # variation selectors
]


def refusal(value: str) -> str | None:
    """What HeaderIdentity and check_identifier say of a workspace id; None if either lets it in."""
    try:
        check_identifier("workspace", value)
        return None
    except IdentityError as error:
        said = error.detail
    try:
        identify([(b"x-workspace-id", value.encode()), (b"x-plan", b"pro")])
        return None
    except IdentityError as error:
        return said if error.detail == said and error.field == "workspace" else None


def test_an_id_with_an_invisible_character_is_refused():
    """ "acme" and "acme" + a character drawn as nothing look alike: two tenants' keys."""
    assert all(c.isprintable() for c in PRINTABLE_IGNORABLES)  # what the check relied on
    let_in = [
        f"U+{ord(c):04X} at {where}"
        for c in PRINTABLE_IGNORABLES
        for where, value in (("end", f"acme{c}"), ("start", f"{c}acme"), ("middle", f"ac{c}me"))
        if refusal(value) != "The workspace contains a control or invisible character."
    ]
    assert not let_in


def test_an_id_not_in_nfc_is_refused_and_its_composed_spelling_accepted():
    composed, decomposed = "Jos\u00e9", "Jose\u0301"  # both read "José"
    assert check_identifier("account", composed) == composed
    with pytest.raises(IdentityError, match=r"not in Unicode's composed form \(NFC\)"):
        check_identifier("account", decomposed)
    headers = [
        (b"x-account-id", decomposed.encode()),
        (b"x-workspace-id", b"w"),
        (b"x-plan", b"pro"),
    ]
    with pytest.raises(IdentityError, match="NFC") as refused:
        identify(headers)
    assert refused.value.field == "account"
    assert identify([(b"x-workspace-id", "Ärzte-Zoë".encode()), (b"x-plan", b"pro")]).workspace
