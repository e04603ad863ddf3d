"""The RateLimit fields of an allowed answer, formatted straight from its integers, are exactly
those of its statuses: the same binding first, the same remaining and the same seconds."""

from __future__ import annotations

from hypothesis import given, settings

from middleware.headers import ratelimit_headers
from ratelimit import Limiter
from ratelimit.ops import CompiledOps
from tests.ratelimit.test_answer import LIMITERS, allowed_answers


@settings(max_examples=500, deadline=None)
@given(allowed_answers())
def test_fields_from_the_raw_answer_match_those_from_its_statuses(
    answer: tuple[Limiter, CompiledOps, int, list[int]],
) -> None:
    limiter, compiled, present, result = answer
    ops = compiled.by_present[present]
    raw = limiter._decision(compiled, ops, result, compiled.amounts_by_present[present])
    assert raw.pending is not None  # formatted from the raw answer
    fields = ratelimit_headers(raw)
    assert raw.pending is not None  # ... without building the statuses
    read = limiter._decision(compiled, ops, result, amounts=[-1] * len(ops))  # never equal
    assert read.pending is None
    assert fields == ratelimit_headers(read)


def test_a_decision_whose_statuses_were_read_is_formatted_from_them() -> None:
    limiter = LIMITERS[0]
    compiled = limiter._routes[("pro", "chat_message")]
    ops = compiled.by_present[4]
    result = [1, 1, 1_800_000_000_000]
    for op in ops:
        result += [1, 1, (op.limit.amount or 0) - 1, 1_800_000_001_001, 0, 0, 0]
    result += [0, 0, 0, *compiled.amounts_by_present[4]]
    decision = limiter._decision(compiled, ops, result, compiled.amounts_by_present[4])
    before = ratelimit_headers(decision)
    assert decision.statuses  # read: the raw answer is gone
    assert decision.pending is None
    assert ratelimit_headers(decision) == before
    assert b";t=2" in before[1][1]  # 1,001 ms round up to 2 s


def test_a_route_that_counts_nothing_has_no_fields() -> None:
    limiter = LIMITERS[0]
    compiled = limiter._routes[("pro", "usage")]
    assert not compiled.by_present[0]
    decision = limiter._decision(compiled, (), [1, 0, 1_800_000_000_000, 0, 0, 0], [])
    assert decision.pending is not None
    assert ratelimit_headers(decision) == []


def test_an_answer_fuller_than_empty_still_names_a_binding_limit() -> None:
    """Remaining above the quota (fill below -1; no real answer has it, hypothesis made one):
    the raw path chose no limit and sent no fields, while the statuses' path sent them."""
    limiter = LIMITERS[0]
    compiled = limiter._routes[("pro", "chat_message")]
    ops = compiled.by_present[4]
    amounts = compiled.amounts_by_present[4]
    result = [1, 1, 1_800_000_000_000]
    for op in ops:
        result += [1, 0, 2 * (op.limit.quota or 1), 1_800_000_001_001, 0, 0, 0]
    result += [0, 0, 0, *amounts]
    raw = limiter._decision(compiled, ops, result, amounts)
    fields = ratelimit_headers(raw)
    assert raw.pending is not None
    read = limiter._decision(compiled, ops, result, amounts=[-1] * len(ops))
    assert fields == ratelimit_headers(read)
    assert fields  # a binding limit, as pick_binding picks one
