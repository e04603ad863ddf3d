"""The `fairuse` command: check a plans file, serve the demo, and the admin commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fairuse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plans = _default_plans()

    check = commands.add_parser("check", help="validate a plans file and print its plans")
    check.add_argument("path", nargs="?", default=str(plans))

    demo = commands.add_parser("demo", help="serve the demo chatbot API behind fairuse")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--plans", default=str(plans))
    demo.add_argument("--storage", default="memory://")

    from . import admin_cli

    admin_cli.add_commands(commands, plans)
    args = parser.parse_args(argv)
    from ratelimit.__main__ import check_command, quiet_on_closed_pipe

    if args.command in admin_cli.COMMANDS:
        return quiet_on_closed_pipe(lambda: admin_cli.run(args))
    if args.command == "check":
        return quiet_on_closed_pipe(lambda: check_command(args.path))
    return _demo(args.host, args.port, args.plans, args.storage)


def _default_plans() -> Path:
    """./plans.toml, else the shipped policy: the copy a wheel carries in this package
    (setup.py), or the project's own file in a checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (Path("plans.toml"), package / "plans.toml", package.parent / "plans.toml"):
        if candidate.exists():
            return candidate
    return Path("plans.toml")  # named in the error that follows


def _demo(host: str, port: int, plans: str, storage: str) -> int:
    import uvicorn

    from ratelimit import FairUseError
    from ratelimit.storage.redis_url import shown_url

    from .demo import create_app

    try:
        app = create_app(plans, storage, tune_gc_after_startup=True)
    except FairUseError as error:
        print(error, file=sys.stderr)
        return 1

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
            await super().startup(sockets)  # type: ignore[arg-type]
            if not self.should_exit:
                url = f"http://{host}:{port}"
                print(
                    f"fairuse demo ready at {url} (plans: {plans}, storage: {shown_url(storage)})",
                    flush=True,
                )

    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    AnnouncingServer(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
