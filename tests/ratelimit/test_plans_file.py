"""plans.toml: one bad fixture per validation rule with its exact message, then valid files.

Every fixture in plans/ is a whole policy that is valid except for the one rule its first line
names; the message must name the file, the table and the key exactly as below.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from ratelimit.__main__ import check_command, main
from ratelimit.errors import PlanFileError
from ratelimit.periods import Period
from ratelimit.plans import Counts, Kind, Policy, Scope, Source, Upgrade
from ratelimit.plans_file import load_policy, parse_policy
from ratelimit.report import format_policy, format_size

ROOT = Path(__file__).resolve().parents[2]
BAD = Path(__file__).parent / "plans"
EXAMPLES = ("api-platform", "helpdesk-email", "phone-support", "support-tiers")

INVALID = [
    (
        "amount_too_large",
        "[limits.chats] limit 1000000000000000 is too large: amounts must be below 10**15",
    ),
    (
        "bad_bytes_amount",
        '[plans.pro.limits.uploads_per_year] limit must be a size such as "5 MB", "512 KiB" or'
        ' "100 B", a positive number of bytes below 10**15, or "unlimited", got "ten gigs"',
    ),
    ("bad_cost", '[routes.chat] cost must be a positive integer or "header:Header-Name", got 0'),
    ("bad_duration", "[policy] session_timeout: unknown duration unit 'soon' in 'soon'"),
    (
        "bad_fail",
        '[limits.sessions_per_month] fail must be one of open, closed, local, got "maybe"',
    ),
    (
        "bad_kind",
        "[limits.chats] kind must be one of fixed_window, sliding_window, token_bucket, "
        'distinct, file_size, body_size, got "fixed"',
    ),
    (
        "bad_method",
        '[routes.chat] match: unknown method "FETCH"; use one of GET, POST, PUT, PATCH, DELETE',
    ),
    (
        "bad_name",
        '[plans.Pro-Plan] plan name "Pro-Plan" is not allowed: use 1 to 40 lower-case '
        "letters, digits or '_', starting with a letter",
    ),
    (
        "bad_param",
        '[routes.chat] match: bad parameter "{chat_id:int}" in "/v1/chats/{chat_id:int}"; '
        "write {name} or {name:path}",
    ),
    (
        "bad_period",
        "[limits.sessions_per_month] per: unknown period unit 'fortnight'; use one of "
        "second, minute, hour, day, week, month, year",
    ),
    (
        "bad_rate",
        "[limits.chats] rate: couldn't parse rate limit string 'lots per hour'; write it "
        'like "30/minute" or "100 per 15 minutes"',
    ),
    (
        "bad_scope",
        "[limits.sessions_per_month] scope must be one of account, workspace, session, "
        'user, ticket, got "team"',
    ),
    (
        "bad_size",
        '[limits.file_size] limit must be a size such as "5 MB", "512 KiB" or "100 B", a '
        'positive number of bytes below 10**15, or "unlimited", got "5 megs"',
    ),
    (
        "bad_source",
        '[routes.chat] session must be "path:PARAM" or "header:Header-Name", got "chat_id"',
    ),
    ("bad_template", '[routes.chat] match: the path must start with "/", got "v1/chats"'),
    (
        "burst_not_token_bucket",
        "[limits.sessions_per_month] burst does not apply to fixed_window limits; only "
        "token_bucket limits take it",
    ),
    (
        "bytes_on_non_upload",
        '[limits.storage] counts = "bytes" measures uploaded files, but [routes.ticket] '
        "is not an upload route; set upload = true there, or list only upload routes in "
        "routes",
    ),
    (
        "calendar_count",
        "[limits.sessions_per_month] per: calendar periods (day, week, month, year) take "
        "no count, got '2 months'",
    ),
    (
        "counts_needs_distinct",
        '[limits.chats] counts must be one of requests, sessions, bytes, got "users"; '
        'counting distinct workspaces or users needs kind = "distinct"',
    ),
    (
        "distinct_counts",
        '[limits.workspaces] counts must be one of workspaces, users, got "requests"',
    ),
    (
        "distinct_missing_counts",
        "[limits.workspaces] missing required key 'counts': a distinct limit counts "
        '"workspaces" or "users"',
    ),
    (
        "distinct_scope",
        '[limits.workspaces] scope must be "account" for a distinct count of workspaces, '
        'got "workspace"',
    ),
    (
        "duplicate_match",
        '[routes.message] "POST /v1/chats/{id}/messages" matches the same requests as '
        "[routes.chat]; each request may match one route only",
    ),
    (
        "duplicate_param",
        '[routes.chat] match: parameter "id" appears twice in "/v1/{id}/chats/{id}"',
    ),
    (
        "duration_too_long",
        "[policy] session_timeout: a duration can be at most 100 years, got '1e400 minutes'",
    ),
    (
        "empty_routes",
        "[limits.sessions_per_month] routes must name at least one entry; leave routes "
        "out to mean all",
    ),
    ("entry_not_table", '[routes] chat must be a table ([routes.chat]), got "POST /v1/chats"'),
    (
        "events_bad_env_name",
        "[events] webhook_secret_env must name an environment variable (letters, digits and _), "
        'got "$SECRET"',
    ),
    ("events_bad_maxlen", "[events] stream_maxlen must be a positive integer, got 0"),
    (
        "events_bad_webhook",
        "[events] webhook must be an http:// or https:// URL, got "
        '"ftp://hooks.example.test/fairuse"',
    ),
    (
        "events_secret_without_webhook",
        "[events] webhook_secret_env needs webhook, the URL to call",
    ),
    (
        "events_unknown_key",
        "[events] unknown key 'webhok'; allowed: stream, stream_maxlen, webhook, "
        "webhook_secret_env",
    ),
    (
        "events_webhook_without_secret",
        "[events] missing required key 'webhook_secret_env': the environment variable that "
        "holds the webhook's signing secret",
    ),
    (
        "file_size_on_non_upload",
        '[limits.file_size] kind = "file_size" measures uploaded files, but '
        "[routes.ticket] is not an upload route; set upload = true there, or list only "
        "upload routes in routes",
    ),
    (
        "huge_integer",
        "[] not a plans file: Exceeds the limit (4300 digits) for integer string conversion:"
        " value has 4301 digits; use sys.set_int_max_str_digits() to increase the limit",
    ),
    (
        "match_form",
        '[routes.chat] match must be "METHOD /path", such as "POST '
        '/v1/chats/{chat_id}/messages", got "/v1/chats"',
    ),
    (
        "match_query",
        "[routes.things] match: the path is matched as the app sees it, decoded and without a"
        ' query or fragment; write it without "?", "#" or "%" escapes, got "/v1/things?x=1"',
    ),
    (
        "missing_contact",
        "[policy] missing required key 'contact': who to reach for limits no plan lifts",
    ),
    (
        "missing_kind",
        "[limits.chats] missing required key 'kind'; one of fixed_window, sliding_window, "
        "token_bucket, distinct, file_size, body_size",
    ),
    (
        "missing_match",
        '[routes.chat] missing required key \'match\': "METHOD /path", such as "POST /v1/files"',
    ),
    ("missing_name", "[policy] missing required key 'name'"),
    (
        "missing_per",
        "[limits.sessions_per_month] missing required key 'per': a fixed_window limit "
        'needs a period such as "hour" (or rate = "30/minute")',
    ),
    ("missing_policy", "[] missing the [policy] table; it must set name and contact"),
    ("no_plans", "[plans] no plans defined; add at least one [plans.NAME] table"),
    (
        "non_positive_amount",
        "[plans.pro.limits.sessions_per_month] limit must be a positive integer or "
        '"unlimited", got "ten"',
    ),
    (
        "notify_at_on_token_bucket",
        "[limits.messages] notify_at does not apply to token_bucket limits; only "
        "fixed_window, sliding_window and distinct limits take it",
    ),
    (
        "notify_at_out_of_range",
        "[policy] notify_at must be a number between 0 and 1 (exclusive) such as 0.8, or "
        '"none", got 1.5',
    ),
    (
        "per_on_distinct",
        "[limits.workspaces] per does not apply to distinct limits; only fixed_window, "
        "sliding_window and token_bucket limits take it",
    ),
    (
        "period_too_long",
        "[limits.chats] per: a period can be at most 100 years, got '100000000000 hours'",
    ),
    (
        "plan_bucket_too_large",
        "[plans.pro.limits.messages] token bucket too large for exact arithmetic: burst "
        "4,000,000,000 × 2,678,400,000 ms per month = 10,713,600,000,000,000,000, which "
        "must be below 2**53; lower the burst or use a shorter per",
    ),
    (
        "plan_burst_not_token_bucket",
        "[plans.pro.limits.sessions_per_month] burst does not apply to fixed_window "
        "limits; only token_bucket limits take it",
    ),
    (
        "plan_limit_unknown_key",
        "[plans.pro.limits.sessions_per_month] unknown key 'brust'; allowed: limit, "
        "burst, notify_at",
    ),
    ("plan_limits_not_table", "[plans.pro] limits must be a table ([plans.pro.limits]), got 3"),
    (
        "plan_missing_limit",
        "[plans.pro.limits.sessions_per_month] missing required key 'limit': "
        "[limits.sessions_per_month] sets no default amount",
    ),
    (
        "plan_notify_at_out_of_range",
        "[plans.pro] notify_at must be a number between 0 and 1 (exclusive) such as 0.8, "
        'or "none", got 1.0',
    ),
    (
        "rate_with_limit",
        "[limits.chats] rate already sets limit and per; use rate, or limit and per",
    ),
    (
        "rate_zero_period",
        '[limits.chats] rate needs a period of at least 1, got "10 per 0 minutes"',
    ),
    (
        "route_unknown_plan",
        '[routes.export] plans names unknown plan "enterprise"; defined plans: pro',
    ),
    (
        "scope_on_size",
        "[limits.file_size] scope does not apply to file_size limits; only fixed_window, "
        "sliding_window, token_bucket and distinct limits take it",
    ),
    (
        "session_scope_without_session",
        '[limits.messages] scope = "session" needs a session id on every route it applies '
        'to, but [routes.ticket] has no session source; add session = "path:..." or '
        '"header:..." there, or list the routes to count in routes',
    ),
    (
        "sessions_without_session",
        '[limits.sessions_per_month] counts = "sessions" needs a session id on every '
        "route it applies to, but [routes.ticket] has no session source; add session = "
        '"path:..." or "header:..." there, or list the routes to count in routes',
    ),
    (
        "size_without_upload_routes",
        "[limits.file_size] a file_size limit applies to upload routes, but no route sets "
        "upload = true; set upload = true on a route or list routes here",
    ),
    ("suspension_bad_denials", "[policy.suspension] denials must be a positive integer, got 0"),
    (
        "suspension_bad_duration",
        "[policy.suspension] within: unknown duration unit 'fortnight' in '1 fortnight'",
    ),
    (
        "suspension_bad_plan",
        '[plans.pro] suspension must be a table ([plans.pro.suspension]) or "none", got "off"',
    ),
    (
        "suspension_missing_key",
        "[policy.suspension] missing required key 'for': how long the suspension lasts, such as "
        '"24 hours"',
    ),
    (
        "suspension_plan_without_policy",
        "[plans.pro.suspension] missing required key 'within': the period the denials are "
        'counted in, such as "1 hour"',
    ),
    (
        "suspension_too_long",
        "[policy.suspension] for: a duration can be at most 100 years, got '10000000 days'",
    ),
    (
        "suspension_too_short",
        '[policy.suspension] within must be at least 1 second, got "500ms"',
    ),
    (
        "suspension_unknown_key",
        "[plans.pro.suspension] unknown key 'deny'; allowed: denials, within, for",
    ),
    ("table_not_table", "[] routes must be a table, got 3"),
    (
        "ticket_scope_without_ticket",
        '[limits.replies] scope = "ticket" needs a ticket id on every route it applies '
        'to, but [routes.ticket] has no ticket source; add ticket = "path:..." or '
        '"header:..." there, or list the routes to count in routes',
    ),
    (
        "timezone_not_fixed_window",
        "[limits.chats] timezone does not apply to sliding_window limits; only "
        "fixed_window limits take it",
    ),
    (
        "token_bucket_too_large",
        "[limits.messages] token bucket too large for exact arithmetic: burst "
        "4,000,000,000 × 2,678,400,000 ms per month = 10,713,600,000,000,000,000, which "
        "must be below 2**53; lower the burst or use a shorter per",
    ),
    (
        "toml_syntax",
        "[] invalid TOML at line 7, column 7: expected '=' after a key in a key/value pair",
    ),
    (
        "unbalanced_brace",
        '[routes.chat] match: unbalanced brace in "/v1/chats/{chat_id"; write {name} or '
        "{name:path}",
    ),
    (
        "unknown_key",
        "[limits.sessions_per_month] unknown key 'per_mnth'; allowed: kind, title, unit, "
        "scope, counts, per, rate, limit, burst, notify_at, timezone, routes, fail",
    ),
    (
        "unknown_limit",
        "[plans.pro.limits] unknown limit 'sesions_per_month'; defined limits: sessions_per_month",
    ),
    (
        "unknown_path_param",
        '[routes.chat] session = "path:chat" names no parameter of "/v1/chats/{chat_id}"; '
        "its parameters: chat_id",
    ),
    (
        "unknown_route",
        '[limits.sessions_per_month] routes names unknown route "chats"; defined routes: chat',
    ),
    (
        "unknown_timezone",
        '[policy] timezone: unknown timezone "Mars/Olympus"; use an IANA name such as '
        '"UTC" or "America/Chicago"',
    ),
    ("unknown_top_key", "[] unknown key 'plan'; allowed: policy, routes, limits, plans, events"),
    (
        "unknown_upgrade_plan",
        '[plans.pro] upgrade_to names unknown plan "enterprise"; defined plans: pro',
    ),
    ("upgrade_cycle", "[plans.pro] upgrade_to forms a cycle: pro -> unlimited -> pro"),
    ("upload_not_bool", '[routes.upload] upload must be true or false, got "yes"'),
    (
        "user_scope_without_user",
        '[limits.tickets] scope = "user" needs a user id on every route it applies to, '
        'but [routes.ticket] has no user source; add user = "path:..." or "header:..." '
        "there, or list the routes to count in routes",
    ),
    ("wrong_type", "[policy] name must be a non-empty string, got 3"),
    ("zero_limit", '[limits.chats] limit must be a positive integer or "unlimited", got 0'),
]


@pytest.mark.parametrize(("fixture", "expected"), INVALID)
def test_invalid_file_is_refused_with_an_exact_message(fixture: str, expected: str) -> None:
    path = BAD / f"{fixture}.toml"
    with pytest.raises(PlanFileError) as caught:
        load_policy(path)
    assert str(caught.value) == f"{path}: {expected}"
    assert expected.startswith(f"[{caught.value.table}] ")


def test_every_fixture_has_a_case() -> None:
    assert sorted(path.stem for path in BAD.glob("*.toml")) == [name for name, _ in INVALID]


@pytest.mark.parametrize(
    ("fixture", "table", "key"),
    [
        ("non_positive_amount", "plans.pro.limits.sessions_per_month", "limit"),
        ("unknown_key", "limits.sessions_per_month", "per_mnth"),
        ("unknown_limit", "plans.pro.limits", "sesions_per_month"),
        ("upgrade_cycle", "plans.pro", "upgrade_to"),
        ("token_bucket_too_large", "limits.messages", "limit"),
        ("plan_bucket_too_large", "plans.pro.limits.messages", "burst"),
        ("toml_syntax", "", None),
        ("bad_name", "plans.Pro-Plan", None),
    ],
)
def test_error_carries_table_and_key(fixture: str, table: str, key: str | None) -> None:
    with pytest.raises(PlanFileError) as caught:
        load_policy(BAD / f"{fixture}.toml")
    assert (caught.value.path, caught.value.table, caught.value.key) == (
        str(BAD / f"{fixture}.toml"),
        table,
        key,
    )


def test_unreadable_file_is_a_plan_file_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(PlanFileError) as caught:
        load_policy(missing)
    assert str(caught.value) == f"{missing}: [] cannot read the file: No such file or directory"


# ---- the shipped plans.toml -----------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(ROOT / "plans.toml")


def amounts(policy: Policy, limit: str) -> dict[str, int | None]:
    return {name: plan.limits[limit].amount for name, plan in policy.plans.items()}


def test_shipped_policy_settings(shipped: Policy) -> None:
    assert shipped.path == str(ROOT / "plans.toml")
    assert shipped.name == "Jikoo chatbot platform fair use"
    assert shipped.contact == "bizdev@jikoo.example"
    assert shipped.session_timeout == 1800.0
    assert list(shipped.plans) == ["sandbox", "pro", "unlimited", "ltd"]
    assert [plan.title for plan in shipped.plans.values()] == ["Sandbox", "Pro", "Unlimited", "LTD"]


def test_shipped_amounts(shipped: Policy) -> None:
    assert amounts(shipped, "sessions_per_month") == {
        "sandbox": 100,
        "pro": 10_000,
        "unlimited": 50_000,
        "ltd": None,
    }
    assert set(amounts(shipped, "chats_per_hour").values()) == {2000}
    assert set(amounts(shipped, "file_size").values()) == {5_000_000}
    assert set(amounts(shipped, "messages_per_session").values()) == {30}
    ltd = shipped.plans["ltd"].limits
    assert ltd["tickets_per_month"].amount == 10_000
    assert ltd["workspaces"].amount == 1
    for name in ("sandbox", "pro", "unlimited"):
        assert shipped.plans[name].limits["tickets_per_month"].unlimited
        assert shipped.plans[name].limits["workspaces"].unlimited


def test_shipped_notify_at(shipped: Policy) -> None:
    assert {limit.notify_at for limit in shipped.plans["sandbox"].limits.values()} == {None}
    for name in ("pro", "unlimited", "ltd"):
        for limit in shipped.plans[name].limits.values():
            counted = limit.rule.kind in (Kind.FIXED_WINDOW, Kind.SLIDING_WINDOW, Kind.DISTINCT)
            expected = 0.8 if counted and not limit.unlimited else None
            assert limit.notify_at == expected, (name, limit.name)
    assert shipped.plans["pro"].limits["sessions_per_month"].notify_count == 8000


def test_shipped_upgrades(shipped: Policy) -> None:
    pricing = "https://jikoo.example/pricing"
    assert shipped.upgrade_for("sandbox", "sessions_per_month") == Upgrade(
        "pro", "Pro", f"{pricing}#pro", 10_000
    )
    assert shipped.upgrade_for("pro", "sessions_per_month") == Upgrade(
        "unlimited", "Unlimited", f"{pricing}#unlimited", 50_000
    )
    assert shipped.upgrade_for("unlimited", "sessions_per_month") is None
    for plan in shipped.plans:
        assert shipped.upgrade_for(plan, "chats_per_hour") is None
    assert shipped.upgrade_for("ltd", "tickets_per_month") is None
    assert set(shipped.upgrades) == {
        (plan.name, limit) for plan in shipped.plans.values() for limit in plan.limits
    }


def test_shipped_rules(shipped: Policy) -> None:
    chats = shipped.rules["chats_per_hour"]
    assert (chats.kind, chats.scope, chats.counts) == (
        Kind.SLIDING_WINDOW,  # "within 60 minutes": any hour, not the clock's
        Scope.ACCOUNT,
        Counts.SESSIONS,
    )
    assert (chats.period, chats.timezone.key, chats.routes) == (
        Period("hour"),
        "UTC",
        frozenset({"chat_message"}),
    )
    assert (chats.title, chats.unit, chats.fail) == ("chats per hour", "chat", "open")
    assert chats.gated_by_session
    bucket = shipped.plans["pro"].limits["messages_per_session"]
    assert (bucket.rule.kind, bucket.rule.scope, bucket.amount, bucket.burst) == (
        Kind.TOKEN_BUCKET,
        Scope.SESSION,
        30,
        20,
    )
    assert shipped.rules["workspaces"].routes is None
    assert shipped.rules["file_size"].period is None


def test_shipped_routes(shipped: Policy) -> None:
    chat = shipped.route_named("chat_message")
    assert (chat.method, chat.template, chat.session) == (
        "POST",
        "/v1/chats/{chat_id}/messages",
        Source("path", "chat_id"),
    )
    assert chat.match("POST", "/v1/chats/c-1/messages") == {"chat_id": "c-1"}
    assert chat.match("POST", "/v1/chats/a/b/messages") is None
    assert shipped.route_named("upload").upload
    assert [route.name for route in shipped.routes] == ["chat_message", "ticket", "upload", "usage"]


def test_shipped_route_limits_keep_file_order(shipped: Policy) -> None:
    def names(plan: str, route: str) -> list[str]:
        return [limit.name for limit in shipped.limits_for(plan, route)]

    assert names("sandbox", "chat_message") == [
        "chats_per_hour",
        "sessions_per_month",
        "account_sessions_per_month",
        "messages_per_session",
        "workspaces",
    ]
    assert names("ltd", "ticket") == ["tickets_per_month", "workspaces"]
    assert names("pro", "upload") == ["workspaces", "file_size", "upload_bytes_per_year"]
    assert names("pro", "usage") == ["workspaces"]
    assert len(shipped.route_limits) == len(shipped.plans) * len(shipped.routes)


def test_compiled_policy_is_read_only(shipped: Policy) -> None:
    assert isinstance(shipped.plans, MappingProxyType)
    assert isinstance(shipped.plans["pro"].limits, MappingProxyType)
    with pytest.raises(TypeError):
        shipped.route_limits[("pro", "usage")] = ()  # type: ignore[index]


# ---- single features, from small texts ------------------------------------------------------

HEAD = """
[policy]
name = "t"
contact = "ops@example.test"

[routes.chat]
match = "POST /v1/chats/{chat_id}/messages"
session = "path:chat_id"

[routes.upload]
match = "POST /v1/files/{name:path}"
upload = true
user = "header:X-User-ID"
cost = "header:X-Cost"
"""


def policy(text: str) -> Policy:
    return parse_policy(HEAD + text, "inline.toml")


@pytest.mark.parametrize(
    ("written", "size"),
    [
        ('"5 MB"', 5_000_000),
        ('"5 MiB"', 5 * 2**20),
        ('"512 KB"', 512_000),
        ('"1 GiB"', 2**30),
        ('"100 B"', 100),
        ('"1.5 MB"', 1_500_000),
        ("4096", 4096),
        ('"unlimited"', None),
    ],
)
def test_sizes(written: str, size: int | None) -> None:
    compiled = policy(f'[limits.file_size]\nkind = "file_size"\nlimit = {written}\n[plans.p]\n')
    assert compiled.plans["p"].limits["file_size"].amount == size
    assert compiled.rules["file_size"].routes == frozenset({"upload"})  # default: upload routes


@pytest.mark.parametrize(
    ("default", "plan_value", "size"),
    [
        ('"10 GB"', None, 10 * 10**9),
        ("10_000", None, 10_000),
        ('"1 GB"', '"2.5 GiB"', int(2.5 * 2**30)),
        ('"1 GB"', "123456789", 123_456_789),
        ('"1 GB"', '{ limit = "10 GB", notify_at = 0.9 }', 10 * 10**9),
        ('"1 GB"', '"unlimited"', None),
    ],
)
def test_byte_quotas_take_sizes_or_integers(default: str, plan_value: str | None, size: int | None):
    plan = "" if plan_value is None else f"uploads_per_year = {plan_value}\n"
    compiled = policy(
        '[limits.uploads_per_year]\nkind = "fixed_window"\nper = "year"\ncounts = "bytes"\n'
        f'routes = ["upload"]\nlimit = {default}\n[plans.p]\n[plans.p.limits]\n{plan}'
    )
    limit = compiled.plans["p"].limits["uploads_per_year"]
    assert (limit.amount, limit.rule.counts) == (size, Counts.BYTES)


@pytest.mark.parametrize(
    ("rate", "amount", "period"),
    [
        ("30/minute", 30, Period("minute")),
        ("100 per 15 minutes", 100, Period("minute", 15)),
        ("5000/day", 5000, Period("day")),
    ],
)
def test_rate_sets_amount_and_period(rate: str, amount: int, period: Period) -> None:
    compiled = policy(f'[limits.calls]\nkind = "token_bucket"\nrate = "{rate}"\n[plans.p]\n')
    limit = compiled.plans["p"].limits["calls"]
    assert (limit.amount, limit.burst, limit.rule.period) == (amount, amount, period)


def test_sources_paths_and_costs() -> None:
    upload = policy("[plans.p]\n").route_named("upload")
    assert upload.ids == {Scope.USER: Source("header", "x-user-id")}
    assert upload.cost == Source("header", "x-cost")
    assert upload.match("POST", "/v1/files/a/b.txt") == {"name": "a/b.txt"}
    assert upload.pattern.pattern == r"/v1/files/(?P<name>.+)"


def test_notify_at_nearest_setting_wins() -> None:
    compiled = parse_policy(
        """
        [policy]
        name = "t"
        contact = "ops@example.test"
        notify_at = 0.7
        [limits.a]
        kind = "fixed_window"
        per = "day"
        limit = 10
        notify_at = 0.6
        [limits.b]
        kind = "fixed_window"
        per = "day"
        limit = 10
        [plans.rule_wins.limits]
        [plans.plan_wins]
        notify_at = 0.5
        [plans.inline_wins]
        notify_at = "none"
        [plans.inline_wins.limits]
        a = { limit = 20, notify_at = 0.4 }
        """,
        "inline.toml",
    )

    def notify(plan: str) -> tuple[float | None, float | None]:
        limits = compiled.plans[plan].limits
        return limits["a"].notify_at, limits["b"].notify_at

    assert notify("rule_wins") == (0.6, 0.7)
    assert notify("plan_wins") == (0.5, 0.5)
    assert notify("inline_wins") == (0.4, None)
    assert compiled.plans["inline_wins"].limits["a"].amount == 20


def test_upgrade_skips_plans_that_do_not_lift_and_counts_absent_limits_as_lifted() -> None:
    compiled = policy(
        """
        [limits.chats]
        kind = "fixed_window"
        per = "hour"
        counts = "sessions"
        routes = ["chat"]
        [plans.free]
        upgrade_to = "team"
        [plans.free.limits]
        chats = 10
        [plans.team]
        upgrade_to = "business"
        [plans.team.limits]
        chats = 10
        [plans.business]
        url = "https://example.test/business"
        """
    )
    assert compiled.upgrade_for("free", "chats") == Upgrade(
        "business", "Business", "https://example.test/business", None
    )
    assert "chats" not in compiled.plans["business"].limits
    assert compiled.limits_for("business", "chat") == ()


def test_defaults() -> None:
    compiled = policy(
        '[limits.sessions_per_day]\nkind = "sliding_window"\nper = "day"\n[plans.pro]\n'
    )
    rule = compiled.rules["sessions_per_day"]
    assert (rule.title, rule.unit, rule.scope, rule.counts) == (
        "sessions per day",
        "request",
        Scope.ACCOUNT,
        Counts.REQUESTS,
    )
    assert rule.routes is None
    plan = compiled.plans["pro"]
    assert (plan.title, plan.url, plan.upgrade_to, dict(plan.limits)) == ("Pro", None, None, {})


# ---- the report and the check command -------------------------------------------------------


def test_format_size() -> None:
    assert format_size(5_000_000) == "5,000,000 bytes (5 MB)"
    assert format_size(5 * 2**20) == "5,242,880 bytes (5 MiB)"
    assert format_size(100) == "100 bytes"


def test_report_rows(shipped: Policy) -> None:
    lines = format_policy(shipped).splitlines()
    rows = {" | ".join(cell.strip() for cell in line.split("  ") if cell.strip()) for line in lines}
    contact = "contact bizdev@jikoo.example"
    assert "plan | limit | kind | scope | counts | amount | per | notify at | upgrade" in rows
    assert (
        "sandbox | sessions_per_month | fixed_window | workspace | sessions | 100 | month (UTC)"
        " | - | Pro"
    ) in rows
    assert (
        "pro | chats_per_hour | sliding_window | account | sessions | 2,000 | hour | 80% | "
        f"{contact}" in rows
    )
    assert (
        f"ltd | file_size | file_size | - | - | 5,000,000 bytes (5 MB) | - | - | {contact}" in rows
    )
    assert (
        "ltd | sessions_per_month | fixed_window | workspace | sessions | unlimited | month (UTC)"
        " | - | -"
    ) in rows
    assert (
        "upload | POST /v1/files | - | yes | workspaces, file_size, upload_bytes_per_year | -"
    ) in rows
    # a limit of 1 gets no notice (the first use reaches it), so none is shown
    assert f"ltd | workspaces | distinct | account | workspaces | 1 | - | - | {contact}" in rows


def test_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_command(str(ROOT / "plans.toml")) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Jikoo chatbot platform fair use")
    assert err == ""
    bad = str(BAD / "upgrade_cycle.toml")
    assert main(["check", bad]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (
        "",
        f"{bad}: [plans.pro] upgrade_to forms a cycle: pro -> unlimited -> pro\n",
    )


def test_python_dash_m_ratelimit_check() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ratelimit", "check", "plans.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("Jikoo chatbot platform fair use (plans.toml)\n")


# ---- the example policies -------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_loads_and_reports(name: str) -> None:
    compiled = load_policy(ROOT / "examples" / f"{name}.toml")
    assert compiled.plans
    assert format_policy(compiled).startswith(compiled.name)


def test_example_values() -> None:
    api = load_policy(ROOT / "examples" / "api-platform.toml")
    assert api.plans["enterprise"].limits["api_rate"].burst == 6000
    assert api.plans["starter"].limits["imported_bytes_per_month"].amount == 10**9
    assert api.upgrade_for("starter", "api_rate") == Upgrade("enterprise", "Enterprise", None, 3000)
    assert api.route_named("report").cost == 20
    phone = load_policy(ROOT / "examples" / "phone-support.toml")
    minutes = phone.plans["complete"].limits["phone_minutes_per_month"]
    assert (minutes.amount, minutes.notify_count, minutes.rule.timezone.key) == (
        60,
        45,
        "Europe/London",
    )
    assert phone.route_named("support_call").plans == frozenset(
        {"complete", "phone_addon", "legacy"}
    )
    helpdesk = load_policy(ROOT / "examples" / "helpdesk-email.toml")
    assert helpdesk.rules["replies_per_ticket"].scope is Scope.TICKET
    tiers = load_policy(ROOT / "examples" / "support-tiers.toml")
    assert tiers.rules == {}
    assert tiers.route_named("escalation").plans == frozenset({"enterprise"})
