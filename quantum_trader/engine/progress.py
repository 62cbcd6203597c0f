"""The progress callback type shared by training and simulation."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int], None]
