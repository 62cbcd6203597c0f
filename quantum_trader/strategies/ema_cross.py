"""EMA crossover: long when the fast EMA crosses above the slow EMA, out when it crosses below.

A cross up at row ``i`` means ``fast[i] > slow[i]`` and ``fast[i-1] <= slow[i-1]``. A cross down
means ``fast[i] <= slow[i]`` and ``fast[i-1] > slow[i-1]``, so a touch counts as below and the two
crosses always alternate. Both EMAs use the smoothing factor ``2 / (n + 1)`` and are seeded with
the simple mean of the first ``n`` closes, so the EMA of period ``n`` starts at row ``n - 1``. No
cross is reported before both EMAs have two values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantum_trader.errors import ConfigurationError
from quantum_trader.features.indicators import ema
from quantum_trader.strategies.base import ENTRY_LONG, ENTRY_SHORT, SignalFrame, close_prices


class EmaCrossStrategy:
    """Trend-following rule strategy on two EMAs of the close."""

    name = "ema-cross"

    def __init__(
        self,
        fast: int = 12,
        slow: int = 26,
        stop_pct: float | None = 0.02,
        allow_short: bool = False,
    ) -> None:
        if fast < 1 or slow <= fast:
            raise ConfigurationError(
                f"EMA periods fast={fast}, slow={slow} are invalid; use 1 <= fast < slow"
            )
        if stop_pct is not None and not 0 < stop_pct < 1:
            raise ConfigurationError(
                f"EMA-cross stop_pct={stop_pct} is outside (0, 1); use a fraction such as 0.02"
            )
        self.fast = fast
        self.slow = slow
        self.stop_pct = stop_pct
        self.allow_short = allow_short

    def generate(self, candles: dict[str, pd.DataFrame]) -> dict[str, SignalFrame]:
        """Compute one SignalFrame per symbol from its ``close`` column."""
        return {symbol: self._signals(symbol, frame) for symbol, frame in candles.items()}

    def _signals(self, symbol: str, frame: pd.DataFrame) -> SignalFrame:
        close = close_prices(symbol, frame)
        fast = ema(close, self.fast)
        slow = ema(close, self.slow)

        above = fast > slow
        # NaN comparisons are False, so warm-up rows never count as "at or below".
        at_or_below = fast <= slow
        cross_up = np.zeros(len(close), dtype=np.bool_)
        cross_down = np.zeros(len(close), dtype=np.bool_)
        cross_up[1:] = above[1:] & at_or_below[:-1]
        cross_down[1:] = at_or_below[1:] & above[:-1]

        entry = np.zeros(len(close), dtype=np.int8)
        entry[cross_up] = ENTRY_LONG
        exit_ = cross_down.copy()
        if self.allow_short:
            entry[cross_down] = ENTRY_SHORT
            exit_ |= cross_up

        stop = None if self.stop_pct is None else np.full(len(close), self.stop_pct)
        return SignalFrame(
            entry=entry,
            exit=exit_,
            confidence=np.ones(len(close), dtype=np.float64),
            stop_pct=stop,
        )
