"""The optional compiled build: with FAIRUSE_COMPILE=1, mypyc compiles the request path to C.

Everything else, and every build without the variable, is plain Python; both behave alike and
the test suite runs against both (scripts/test). The modules listed are the ones every ruled
request runs through; their type hints are what mypyc compiles from, so they stay mypy-strict.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py  # type: ignore[import-untyped]

POLICY = Path(__file__).resolve().parent / "plans.toml"


class BuildPyWithPolicy(build_py):  # type: ignore[misc]  # untyped base
    """Ships the project's plans.toml inside the `middleware` package, so that `fairuse demo`,
    `check` and the admin commands installed from a wheel find the default policy without a
    checkout. The file stays at the project's root, the one place where plans are edited."""

    def run(self) -> None:
        super().run()
        # An editable install runs the checkout, which has the file; a partial copy may not.
        if not getattr(self, "editable_mode", False) and POLICY.exists():
            shutil.copyfile(POLICY, Path(self.build_lib) / "middleware" / "plans.toml")


HOT_PATH = [
    "ratelimit/answer.py",
    "ratelimit/blocks.py",
    "ratelimit/commands.py",
    "ratelimit/decision.py",
    "ratelimit/identifiers.py",
    "ratelimit/keys.py",
    "ratelimit/lifecycle_args.py",
    "ratelimit/limiter.py",
    "ratelimit/ops.py",
    "ratelimit/storage/redis.py",
    "ratelimit/storage/resp.py",
    "middleware/fairuse.py",
    "middleware/headers.py",
    "middleware/identity.py",
    "middleware/routing.py",
]

ext_modules = []
if os.environ.get("FAIRUSE_COMPILE") == "1":
    from mypyc.build import mypycify  # mypy's compiler: a build requirement only for this

    ext_modules = mypycify(HOT_PATH, opt_level="3", group_name="fairuse_compiled")

setup(ext_modules=ext_modules, cmdclass={"build_py": BuildPyWithPolicy})
