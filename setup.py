"""The optional compiled build: with FAIRUSE_COMPILE=1, mypyc compiles the request path to C.

Everything else, and every build without the variable, is plain Python; both behave alike and
the test suite runs against both (scripts/test). The modules listed are the ones every ruled
request runs through; their type hints are what mypyc compiles from, so they stay mypy-strict.
"""

from __future__ import annotations

import os

from setuptools import setup

HOT_PATH = [
    "ratelimit/answer.py",
    "ratelimit/blocks.py",
    "ratelimit/commands.py",
    "ratelimit/decision.py",
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

setup(ext_modules=ext_modules)
