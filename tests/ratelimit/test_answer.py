"""An allowed decision built on demand reads exactly what the eager reading of the answer gives."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ratelimit import Decision, Limiter
from ratelimit.ops import STATUS_WIDTH, CompiledOps
from ratelimit.plans_file import load_policy

ROOT = Path(__file__).resolve().parents[2]
POLICIES = [ROOT / "plans.toml", *sorted((ROOT / "examples").glob("*.toml"))]
LIMITERS = [Limiter(load_policy(path)) for path in POLICIES]
SHAPES = [  # every plan and route of every shipped policy, with every set of ids present
    (limiter, compiled, present)
    for limiter in LIMITERS
    for compiled in limiter._routes.values()
    for present in range(8)
    if compiled.by_present[present]
]


@st.composite
def allowed_answers(draw: st.DrawFn) -> tuple[Limiter, CompiledOps, int, list[int]]:
    """A raw decide.lua answer for an allowed request with no override: see its header."""
    limiter, compiled, present = draw(st.sampled_from(SHAPES))
    ops = compiled.by_present[present]
    now = draw(st.integers(1_700_000_000_000, 1_900_000_000_000))
    result = [1, draw(st.integers(0, 1)), now]
    for op in ops:
        amount = op.limit.amount or 0
        remaining = draw(st.integers(0, amount))
        reset = draw(st.one_of(st.just(0), st.integers(now, now + 400 * 86_400_000)))
        result += [1, amount - remaining, remaining, reset, 0, draw(st.integers(0, 1)), 0]
    result += [0, 0, 0, *compiled.amounts_by_present[present]]
    return limiter, compiled, present, result


def _summary(decision: Decision) -> tuple[object, ...]:
    return (
        decision.allowed,
        decision.new_session,
        decision.now,
        decision.statuses,
        decision.binding,
        decision.notices,
        decision.exceeded,
        decision.has_events,
        decision.rates(),
        decision.retry_after,
    )


@settings(max_examples=300, deadline=None)
@given(allowed_answers())
def test_on_demand_reading_matches_the_eager_one(
    answer: tuple[Limiter, CompiledOps, int, list[int]],
) -> None:
    limiter, compiled, present, result = answer
    ops = compiled.by_present[present]
    on_demand = limiter._decision(compiled, ops, result, compiled.amounts_by_present[present])
    assert on_demand._pending is not None  # the allow path really skipped the statuses
    rates = on_demand.rates()  # read from the raw answer, before anything builds the statuses
    has_events = on_demand.has_events
    eager = limiter._decision(compiled, ops, result, amounts=[-1] * len(ops))  # never equal
    assert eager._pending is None
    assert (rates, has_events) == (eager.rates(), eager.has_events)
    assert _summary(on_demand) == _summary(eager)
    assert len(result) == 3 + STATUS_WIDTH * len(ops) + 3 + len(ops)


def test_an_override_reads_eagerly_with_the_amount_in_force() -> None:
    limiter = LIMITERS[0]
    compiled = limiter._routes[("pro", "chat_message")]
    ops = compiled.by_present[4]
    result = [1, 1, 1_800_000_000_000]
    for op in ops:
        result += [1, 1, (op.limit.amount or 0) - 1, 0, 0, 0, 0]
    amounts = compiled.amounts_by_present[4]
    result += [0, 0, 0, amounts[0] * 2, *amounts[1:]]  # an admin doubled the first limit
    decision = limiter._decision(compiled, ops, result, amounts)
    assert decision._pending is None
    assert decision.statuses[0].limit.amount == amounts[0] * 2
    reported = {limit.name: limit.amount for limit, _, _ in decision.rates()}
    assert reported[ops[0].limit.name] == amounts[0] * 2
