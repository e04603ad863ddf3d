"""Which build of the request path the suite is testing: scripts/test runs it against both."""

from __future__ import annotations

import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from .conftest import ROOT

COMPILED = os.environ.get("FAIRUSE_EXPECT_COMPILED") == "1"  # set by scripts/test


def _hot_path() -> list[str]:
    """The modules setup.py compiles, read from its HOT_PATH list."""
    text = (ROOT / "setup.py").read_text()
    listed = text.split("HOT_PATH = [", 1)[1].split("]", 1)[0]
    files = [line.strip().strip('",') for line in listed.splitlines() if line.strip()]
    return [f.removesuffix(".py").replace("/", ".") for f in files]


@pytest.mark.parametrize("module", _hot_path())
def test_the_request_path_is_the_build_under_test(module: str):
    path = Path(importlib.import_module(module).__file__ or "")
    assert path.is_relative_to(ROOT)  # this checkout's code, not an installed copy
    assert path.name.endswith(tuple(EXTENSION_SUFFIXES)) is COMPILED, path
