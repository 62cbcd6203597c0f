"""Clocks: the kernel reads time only through one of these, so backtest and live share code."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Return the current time in nanoseconds since the Unix epoch, UTC."""
        ...


class SimulatedClock:
    """A clock the backtest moves forward candle by candle; it never goes backwards."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def advance_to(self, time_ns: int) -> None:
        if time_ns < self._now_ns:
            raise ValueError(
                f"simulated clock cannot go back from {self._now_ns} to {time_ns}; "
                "candles must be processed in time order"
            )
        self._now_ns = time_ns


class WallClock:
    """The machine's UTC clock, for paper and live trading."""

    def now_ns(self) -> int:
        return time.time_ns()
