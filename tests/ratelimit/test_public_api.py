"""The engine as the README shows it: everything from `ratelimit`, no ASGI."""

from __future__ import annotations

import subprocess
import sys

import ratelimit
from ratelimit import Identity, Limiter, load_policy

from ..conftest import ROOT


async def test_readme_engine_example():
    limiter = Limiter(load_policy(ROOT / "plans.toml"), "memory://")
    who = Identity("acme", "support", "pro")
    decision = await limiter.check(who, "chat_message", session="c1")
    assert decision.allowed
    assert decision.new_session
    usage = await limiter.peek(who)
    used = {status.name: status.used for status in usage.statuses}
    assert used["sessions_per_month"] == 1
    await limiter.close()


def test_every_public_name_is_importable():
    for name in ratelimit.__all__:
        assert getattr(ratelimit, name) is not None, name


def test_the_engine_imports_nothing_of_asgi():
    probe = (
        "import sys, ratelimit, ratelimit.admin; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('starlette', 'uvicorn', 'middleware')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
