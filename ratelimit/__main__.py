"""`python -m ratelimit check PATH`: validate a plans file offline and print what it compiles to."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .errors import PlanFileError
from .plans_file import load_policy
from .report import format_policy

__all__ = ["check_command", "main", "quiet_on_closed_pipe"]


def quiet_on_closed_pipe(run: Callable[[], int]) -> int:
    """Run a command whose output may go to a reader that stops early (`| head`): exit 1
    quietly, as other command-line tools do, instead of with a traceback."""
    try:
        code = run()
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # exit's flush
        return 1


def check_command(path: str) -> int:
    """Print the compiled plans and return 0, or print the error to stderr and return 1."""
    try:
        policy = load_policy(path)
    except PlanFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(format_policy(policy))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ratelimit", description="Check a fairuse plans file."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a plans file and print its plans")
    check.add_argument("path", nargs="?", default="plans.toml", help="default: plans.toml")
    args = parser.parse_args(argv)
    return quiet_on_closed_pipe(lambda: check_command(args.path))


if __name__ == "__main__":
    sys.exit(main())
