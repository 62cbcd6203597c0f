"""Hypothesis profiles: no per-example deadline (shared 2-core machines stall at random), and in
CI (the CI environment variable is set) a fixed example sequence so a run repeats exactly."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
