"""Benchmarks: Locust users and the bare-versus-protected comparison (not run by the tests)."""

from __future__ import annotations
