"""plans.toml's suspension rules and [events]: what valid files compile to."""

from __future__ import annotations

import pytest

from ratelimit.errors import PlanFileError
from ratelimit.plans import EventSettings, SuspensionRule
from ratelimit.plans_file import parse_policy

HEAD = """
[policy]
name = "t"
contact = "ops@example.test"
{policy}

[routes.call]
match = "POST /calls"

[limits.calls]
kind = "fixed_window"
per = "hour"
limit = 10

[plans.free]
{free}

[plans.pro]
{pro}
{tail}
"""


def policy(policy: str = "", free: str = "", pro: str = "", tail: str = ""):
    text = HEAD.format(policy=policy, free=free, pro=pro, tail=tail)
    return parse_policy(text, "plans.toml")


def test_no_rule_means_no_suspension_and_no_events():
    parsed = policy()
    assert [plan.suspension for plan in parsed.plans.values()] == [None, None]
    assert parsed.events == EventSettings()


def test_plans_inherit_the_policy_rule_key_by_key_or_opt_out():
    rule = '[policy.suspension]\ndenials = 50\nwithin = "1 hour"\nfor = "1 day"'
    parsed = policy(rule, free="[plans.free.suspension]\ndenials = 5", pro='suspension = "none"')
    assert parsed.plans["free"].suspension == SuspensionRule(5, 3600.0, 86400.0)
    assert parsed.plans["pro"].suspension is None


def test_a_plan_may_have_a_rule_of_its_own():
    own = '[plans.pro.suspension]\ndenials = 9\nwithin = "10 minutes"\nfor = "30 minutes"'
    parsed = policy(pro=own)
    assert parsed.plans["free"].suspension is None
    assert parsed.plans["pro"].suspension == SuspensionRule(9, 600.0, 1800.0)


def test_events_table():
    events = (
        '[events]\nstream = "fu:events"\nstream_maxlen = 500\n'
        'webhook = "https://hooks.example.test/in"\nwebhook_secret_env = "HOOK_SECRET"'
    )
    assert policy(tail=events).events == EventSettings(
        "fu:events", 500, "https://hooks.example.test/in", "HOOK_SECRET"
    )


def test_suspension_given_as_a_value_is_refused():
    with pytest.raises(PlanFileError) as caught:
        policy("suspension = 3")
    assert str(caught.value) == (
        'plans.toml: [policy] suspension must be a table ([policy.suspension]) or "none", got 3'
    )
