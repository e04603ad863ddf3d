"""HeaderIdentity's quick acceptance agrees with check_identifier on every value and field."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from middleware.identity import MAX_ID_LENGTH, HeaderIdentity, IdentityError, check_identifier
from ratelimit import Identity

ids = st.one_of(
    st.none(),
    st.just(""),
    st.text(min_size=1, max_size=4),
    st.text(alphabet="ab\x00\x7f\u200b\u00e9", min_size=1, max_size=3),
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
            headers.append((name, value.encode("utf-8").decode("latin-1").encode("latin-1")))
    latin = {
        k: None if v is None else v.encode("utf-8").decode("latin-1") for k, v in values.items()
    }
    try:
        found: Identity | str = HeaderIdentity()({"type": "http", "headers": headers})
    except IdentityError as error:
        found = error.field
    assert found == expected(latin)
