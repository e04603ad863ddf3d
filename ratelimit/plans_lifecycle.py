"""plans.toml's lifecycle tables: [policy.suspension], plans' `suspension`, and [events].

Kept apart from plans_file.py, which calls these while it reads [policy], [plans] and the top
level; the rules and messages are listed in docs/plans-format.md.
"""

from __future__ import annotations

import re

from . import plans_values as v
from .plans import EventSettings, SuspensionRule
from .plans_values import Table

SUSPENSION_KEYS = ("denials", "within", "for")
EVENTS_KEYS = ("stream", "stream_maxlen", "webhook", "webhook_secret_env")
_HINTS = {
    "denials": ": how many denied requests of one workspace suspend it",
    "within": ': the period the denials are counted in, such as "1 hour"',
    "for": ': how long the suspension lasts, such as "24 hours"',
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_suspension(t: Table, base: SuspensionRule | None) -> SuspensionRule | None:
    """[policy.suspension] (base None), or a plan's `suspension`: a table over the policy's
    rule, key by key, or "none" for no suspension on that plan."""
    if "suspension" not in t:
        return base
    if t.data["suspension"] == "none":
        return None
    if not isinstance(t.data["suspension"], dict):
        raise t.error(
            "suspension",
            f'suspension must be a table ([{t.name}.suspension]) or "none", got '
            f"{v.show(t.data['suspension'])}",
        )
    s = t.sub("suspension", SUSPENSION_KEYS)
    parsers = {"denials": v.positive_int, "within": v.duration, "for": v.duration}
    values: dict[str, float] = {}
    for key, parse in parsers.items():
        inherited = None if base is None else _field(base, key)
        if key in s or inherited is None:
            values[key] = s.require(key, parse, _HINTS[key])
        else:
            values[key] = inherited
    for key in ("within", "for"):
        if values[key] < 1:
            raise s.error(key, f"{key} must be at least 1 second, got {v.show(s.data.get(key))}")
    return SuspensionRule(int(values["denials"]), values["within"], values["for"])


def read_events(top: Table) -> EventSettings:
    """[events]: a Redis stream and/or a webhook whose secret comes from the environment."""
    if "events" not in top:
        return EventSettings()
    t = top.sub("events", EVENTS_KEYS)
    webhook = t.get("webhook", _url, None)
    secret_env = t.get("webhook_secret_env", _env_name, None)
    if webhook is not None and secret_env is None:
        hint = ": the environment variable that holds the webhook's signing secret"
        raise t.error("webhook_secret_env", f"missing required key 'webhook_secret_env'{hint}")
    if webhook is None and secret_env is not None:
        raise t.error("webhook_secret_env", "webhook_secret_env needs webhook, the URL to call")
    return EventSettings(
        stream=t.get("stream", v.text, None),
        stream_maxlen=t.get("stream_maxlen", v.positive_int, 100_000),
        webhook=webhook,
        webhook_secret_env=secret_env,
    )


def _field(rule: SuspensionRule, key: str) -> float:
    return {"denials": rule.denials, "within": rule.within, "for": rule.hold}[key]


def _url(key: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/]+\S*", value):
        raise ValueError(f"{key} must be an http:// or https:// URL, got {v.show(value)}")
    return value


def _env_name(key: str, value: object) -> str:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{key} must name an environment variable (letters, digits and _), got {v.show(value)}"
        )
    return value
