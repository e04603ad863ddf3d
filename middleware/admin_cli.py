"""The `fairuse` admin commands: usage, override, reset, suspend, unsuspend, events tail.

Each works against the storage the app uses (`--storage URL`, or $FAIRUSE_STORAGE) with the
app's plans file; the logic lives in ratelimit.admin, this module parses and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ratelimit import FairUseError, Identity, Limiter
from ratelimit.admin import Admin, Usage
from ratelimit.periods import parse_duration
from ratelimit.plans import SIZE_KINDS
from ratelimit.plans_file import load_policy
from ratelimit.records import Override, SuspensionRecord
from ratelimit.report import format_amount

COMMANDS = ("usage", "override", "reset", "suspend", "unsuspend", "events")


def add_commands(commands: Any, plans: Path) -> None:
    """Register the admin subcommands on the `fairuse` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--storage", default=os.environ.get("FAIRUSE_STORAGE"), help="URL")
    common.add_argument("--plans", default=str(plans), help="the app's plans file")

    usage = commands.add_parser("usage", parents=[common], help="limits, used and remaining")
    usage.add_argument("account")
    usage.add_argument("workspace", nargs="?", help="default: the account")
    usage.add_argument("--plan", required=True)

    override = commands.add_parser("override", help="raise or lower a limit for one account")
    actions = override.add_subparsers(dest="action", required=True)
    put = actions.add_parser("set", parents=[common], help="put an amount in force")
    put.add_argument("account")
    put.add_argument("limit")
    put.add_argument("amount", type=int)
    put.add_argument("--workspace", help="only this workspace of the account")
    put.add_argument("--until", type=_moment, help="an ISO date or time (UTC unless given)")
    listing = actions.add_parser("list", parents=[common], help="the account's overrides")
    listing.add_argument("account")
    clear = actions.add_parser("clear", parents=[common], help="back to the plan's amount")
    clear.add_argument("account")
    clear.add_argument("limit", nargs="?", help="default: every override of the account")
    clear.add_argument("--workspace")

    reset = commands.add_parser("reset", parents=[common], help="zero the counters")
    reset.add_argument("account")
    reset.add_argument("workspace", nargs="?", help="default: every counter of the account")
    reset.add_argument("--limit")

    suspend = commands.add_parser("suspend", parents=[common], help="refuse every request")
    suspend.add_argument("account")
    suspend.add_argument("workspace", nargs="?", help="default: the whole account")
    ends = suspend.add_mutually_exclusive_group()
    ends.add_argument("--for", dest="hold", type=_duration, help='e.g. "24 hours"')
    ends.add_argument("--until", type=_moment)
    suspend.add_argument("--reason", default="")
    unsuspend = commands.add_parser("unsuspend", parents=[common], help="lift a suspension")
    unsuspend.add_argument("account")
    unsuspend.add_argument("workspace", nargs="?", help="default: the account-wide one")

    events = commands.add_parser("events", help="read the events stream")
    tail = events.add_subparsers(dest="action", required=True).add_parser(
        "tail", parents=[common], help="print events as JSON lines"
    )
    tail.add_argument("--stream", help="default: [events] stream, else fairuse:events")
    tail.add_argument(
        "--count",
        type=_count,
        help="how many recent events (default 10; 0: none); not with --group",
    )
    tail.add_argument("--follow", action="store_true", help="then wait for new ones")
    tail.add_argument("--group", help="read as this consumer group: each event once")
    tail.add_argument("--consumer", default="cli")


def run(args: argparse.Namespace) -> int:
    if not args.storage:
        print("fairuse: --storage URL is required (or set FAIRUSE_STORAGE)", file=sys.stderr)
        return 2
    if args.storage.lower().startswith("memory:"):  # it would report success on nothing
        print(
            "fairuse: admin commands act on the app's shared storage (redis://...); "
            "memory:// lives inside one app process",
            file=sys.stderr,
        )
        return 2
    try:
        policy = load_policy(args.plans)
        return asyncio.run(_run(args, Limiter(policy, args.storage)))
    except FairUseError as error:
        print(f"fairuse: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, limiter: Limiter) -> int:
    admin = Admin(limiter)
    try:
        handler = HANDLERS[(args.command, getattr(args, "action", None))]
        await handler(admin, args)
    finally:
        await limiter.close()
    return 0


async def _usage(admin: Admin, args: argparse.Namespace) -> None:
    identity = Identity(args.account, args.workspace or args.account, args.plan)
    print(format_usage(await admin.usage(identity), identity))


async def _override_set(admin: Admin, args: argparse.Namespace) -> None:
    done = await admin.set_override(
        args.account, args.limit, args.amount, workspace=args.workspace, until=args.until
    )
    print(f"{_who(done.account, done.workspace)}: {done.limit} = {done.amount:,}{_end(done.until)}")
    for plan in admin.not_counted_on(args.limit):
        print(f"note: {args.limit} is unlimited or absent on plan {plan}: no effect there")


async def _override_list(admin: Admin, args: argparse.Namespace) -> None:
    print(format_overrides(await admin.overrides(args.account)))


async def _override_clear(admin: Admin, args: argparse.Namespace) -> None:
    cleared = await admin.clear_override(args.account, args.limit, workspace=args.workspace)
    print(f"{_who(args.account, args.workspace)}: cleared {cleared} override(s)")


async def _reset(admin: Admin, args: argparse.Namespace) -> None:
    deleted = await admin.reset(args.account, args.workspace, limit=args.limit)
    print(f"{_who(args.account, args.workspace)}: deleted {deleted} counter key(s)")


async def _suspend(admin: Admin, args: argparse.Namespace) -> None:
    until = args.until if args.hold is None else admin.now() + args.hold
    done = await admin.suspend(args.account, args.workspace, until=until, reason=args.reason)
    print(f"{_who(done.account, done.workspace)}: suspended{_end(done.until)}")


async def _unsuspend(admin: Admin, args: argparse.Namespace) -> None:
    lifted = await admin.unsuspend(args.account, args.workspace)
    said = "suspension lifted" if lifted else "was not suspended"
    if not lifted and args.workspace is None:  # the account's own record; its workspaces'?
        held = [s.workspace for s in await admin.suspensions(args.account) if s.workspace]
        if held:
            said = (
                f"had no account-wide suspension; suspended workspaces: {', '.join(held)} "
                f"(fairuse unsuspend {args.account} WORKSPACE)"
            )
    print(f"{_who(args.account, args.workspace)}: {said}")


async def _events_tail(admin: Admin, args: argparse.Namespace) -> None:
    from redis.exceptions import RedisError

    from ratelimit.errors import StorageError
    from ratelimit.event_stream import DEFAULT_STREAM
    from ratelimit.storage.redis import RedisStorage

    storage = admin.storage
    if not isinstance(storage, RedisStorage):
        raise FairUseError(f"events are kept in a Redis stream; {storage.url} is not Redis")
    reader = RedisStorage(storage.url, socket_timeout=60.0)  # outlasts a 5 s blocking read
    try:
        await _tail(
            reader.client, args.stream or admin.policy.events.stream or DEFAULT_STREAM, args
        )
    except RedisError as error:  # told like every other command's storage failure
        raise StorageError(error) from None
    finally:
        await reader.close()


async def _tail(client: Any, stream: str, args: argparse.Namespace) -> None:
    from ratelimit.event_stream import ack, follow, read_group

    if args.group and args.count is not None:
        raise FairUseError(
            "--count picks the newest events, but --group reads every event the group has not "
            "been given yet: use one or the other"
        )
    if args.group:  # what this consumer left unhandled, every event the group has not seen,
        group, consumer = args.group, args.consumer  # then (--follow) new ones; each
        while batch := await read_group(client, stream, group, consumer, None, pending=True):
            _print_events(batch)  # acknowledged once printed: a closed pipe loses nothing
            await ack(client, stream, group, batch)
        block = 5000 if args.follow else None
        while (batch := await read_group(client, stream, group, consumer, block)) or args.follow:
            _print_events(batch)
            await ack(client, stream, group, batch)
        return
    async for batch in follow(client, stream, 10 if args.count is None else args.count):
        _print_events(batch)
        if not args.follow:
            break


def format_usage(usage: Usage, identity: Identity) -> str:
    decision = usage.decision
    plan = decision.plan
    lines = [f"{_who(identity.account, identity.workspace)} on plan {plan.title} ({plan.name})"]
    held = decision.suspended
    lines.append("suspended: no" if held is None else f"suspended{_end(held.until)}")
    rows, notes = [], []
    for status in decision.statuses:
        limit = status.limit
        mark = ""
        planned = plan.limits.get(limit.name)
        if planned is not None and planned.amount != limit.amount:
            mark = "*"
            notes.append(f"* {limit.name}: override; the plan says {format_amount(planned)}")
        rows.append(
            (
                limit.name,
                "-" if limit.rule.kind in SIZE_KINDS else limit.rule.scope.value,
                format_amount(limit) + mark,
                "-" if status.used is None else f"{status.used:,}",
                "-" if status.remaining is None else f"{status.remaining:,}",
                _time(status.reset_at) or "-",
            )
        )
    headers = ("limit", "scope", "amount", "used", "remaining", "resets")
    lines += ["", *_table(headers, rows), *notes]
    if usage.overrides:
        lines += ["", format_overrides(usage.overrides)]
    for record in usage.suspensions:
        lines.append(f"suspension: {_who(record.account, record.workspace)}{_record(record)}")
    return "\n".join(lines)


def format_overrides(overrides: Sequence[Override]) -> str:
    if not overrides:
        return "no overrides"
    rows = [
        (o.limit, o.workspace or "(account)", f"{o.amount:,}", _time(o.until) or "no end")
        for o in overrides
    ]
    return "\n".join(_table(("override", "workspace", "amount", "until"), rows))


def _record(record: SuspensionRecord) -> str:
    reason = f" ({record.reason})" if record.reason else ""
    return f"{_end(record.until)}{reason}"


def _print_events(entries: Any) -> None:
    for _, event in entries:
        print(json.dumps(event, ensure_ascii=False), flush=True)


def _who(account: str, workspace: str | None) -> str:
    return account if workspace is None else f"{account}/{workspace}"


def _end(until: float | None) -> str:
    return " until lifted" if until is None else f" until {_time(until)}"


def _time(moment: float | None) -> str | None:
    """To the minute, rounded up as the refusals' sentences are: never before the moment."""
    if moment is None:
        return None
    return datetime.fromtimestamp(math.ceil(moment / 60) * 60, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _moment(text: str) -> float:
    """'2026-12-31' (midnight UTC) or '2026-12-31T18:00:00+01:00' -> epoch seconds."""
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or time, got {text!r}") from None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).timestamp()


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:  # argparse shows only an ArgumentTypeError's own words
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, ["-" * w for w in widths], *rows]
    ]


Handler = Callable[[Admin, argparse.Namespace], Awaitable[None]]
HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("usage", None): _usage,
    ("override", "set"): _override_set,
    ("override", "list"): _override_list,
    ("override", "clear"): _override_clear,
    ("reset", None): _reset,
    ("suspend", None): _suspend,
    ("unsuspend", None): _unsuspend,
    ("events", "tail"): _events_tail,
}
