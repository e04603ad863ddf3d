"""Which ids a request can carry: one spelling for each name, so that no name is two keys."""

from __future__ import annotations

import re
import unicodedata

MAX_ID_LENGTH = 128

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): drawn as nothing, so an id
# holding one looks like the id without it. isprintable() refuses most; these ranges catch the
# rest (the combining grapheme joiner, the Hangul fillers, the variation selectors, ...).
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def id_problem(value: str) -> str | None:
    """What makes `value` no id, as the end of a sentence about it ("is empty"), or None.

    Non-ASCII text can look alike in two spellings: with a character drawn as nothing, or with
    an accent composed (é) or not (e + U+0301). Such ids are refused, never normalized: a
    tenant's key must not depend on how its id happened to be spelled."""
    if value == "":
        return "is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"is longer than {MAX_ID_LENGTH} characters"
    if value.isascii() and value.isprintable():
        return None  # the common case, with one spelling only
    if not value.isprintable() or _IGNORABLE.search(value):
        return "contains a control or invisible character"
    if not unicodedata.is_normalized("NFC", value):
        return "is not in Unicode's composed form (NFC): one name must have one spelling"
    return None


def usable_id(value: str | None) -> bool:
    """Exactly what id_problem accepts, as one quick test for the common case."""
    return (
        value is not None
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isprintable()
        and (
            value.isascii()
            or (_IGNORABLE.search(value) is None and unicodedata.is_normalized("NFC", value))
        )
    )
