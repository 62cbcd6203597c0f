"""Mean reversion: buy a close stretched below the lower Bollinger band while RSI is oversold.

Rules for row ``i`` (every input uses rows ``<= i``):

- Long entry: ``close < lower band`` and ``RSI < oversold``.
- Short entry (only with ``allow_short``): ``close > upper band`` and ``RSI > overbought``.
- Long exit: ``close >= middle band`` or ``RSI > 50``. The trade is over once the price has
  reverted to its mean, or once momentum has turned up through the RSI midpoint, whichever
  comes first.
- Short exit: ``close <= middle band`` or ``RSI < 50``.

The bands are the ``bb_period`` SMA of the close plus and minus ``bb_k`` population standard
deviations, and RSI is Wilder's. Warm-up rows (NaN band or RSI) give no entry.

Long only, the exit flag is the long exit condition on every row where it is true, so a long
position is closed at the first such row whenever it was opened. With shorts, the engine's exit
flag does not name the side it closes, so each row applies the exit condition of the side of the
latest entry at or before that row, and no exit is flagged before the first entry. The engine
holds either that side or nothing, because an opposite entry makes it close any other position.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError
from quantum_trader.features.indicators import bollinger, rsi
from quantum_trader.strategies.base import (
    ENTRY_LONG,
    ENTRY_SHORT,
    NO_ENTRY,
    SignalFrame,
    close_prices,
)

RSI_MIDPOINT = 50.0


class MeanReversionStrategy:
    """Rule strategy that fades stretched moves away from the Bollinger middle band."""

    name = "mean-reversion"

    def __init__(
        self,
        rsi_period: int = 14,
        oversold: float = 30.0,
        overbought: float = 70.0,
        bb_period: int = 20,
        bb_k: float = 2.0,
        stop_pct: float | None = 0.03,
        allow_short: bool = False,
    ) -> None:
        if rsi_period < 1 or bb_period < 2:
            raise ConfigurationError(
                f"mean-reversion periods rsi_period={rsi_period}, bb_period={bb_period} are "
                "invalid; use rsi_period >= 1 and bb_period >= 2"
            )
        # An entry level on the far side of the RSI midpoint would meet its own exit rule.
        if not 0 < oversold < RSI_MIDPOINT < overbought < 100:
            raise ConfigurationError(
                f"mean-reversion RSI levels oversold={oversold}, overbought={overbought} are "
                "invalid; use 0 < oversold < 50 < overbought < 100"
            )
        if not bb_k > 0:
            raise ConfigurationError(
                f"mean-reversion bb_k={bb_k} is invalid; use a positive band width such as 2.0"
            )
        if stop_pct is not None and not 0 < stop_pct < 1:
            raise ConfigurationError(
                f"mean-reversion stop_pct={stop_pct} is outside (0, 1); use a fraction such as 0.03"
            )
        self.rsi_period = rsi_period
        self.oversold = oversold
        self.overbought = overbought
        self.bb_period = bb_period
        self.bb_k = bb_k
        self.stop_pct = stop_pct
        self.allow_short = allow_short

    def generate(self, candles: dict[str, pd.DataFrame]) -> dict[str, SignalFrame]:
        """Compute one SignalFrame per symbol from its ``close`` column."""
        return {symbol: self._signals(symbol, frame) for symbol, frame in candles.items()}

    def _signals(self, symbol: str, frame: pd.DataFrame) -> SignalFrame:
        close = close_prices(symbol, frame)
        strength = rsi(close, self.rsi_period)
        middle, upper, lower = bollinger(close, self.bb_period, self.bb_k)

        # Comparisons with NaN are False, so warm-up rows never enter.
        entry = np.zeros(len(close), dtype=np.int8)
        entry[(close < lower) & (strength < self.oversold)] = ENTRY_LONG
        long_exit = (close >= middle) | (strength > RSI_MIDPOINT)
        if self.allow_short:
            entry[(close > upper) & (strength > self.overbought)] = ENTRY_SHORT
            short_exit = (close <= middle) | (strength < RSI_MIDPOINT)
            exit_ = _exit_for_latest_entry(entry, long_exit, short_exit)
        else:
            exit_ = long_exit

        stop = None if self.stop_pct is None else np.full(len(close), self.stop_pct)
        return SignalFrame(
            entry=entry,
            exit=exit_,
            confidence=np.ones(len(close), dtype=np.float64),
            stop_pct=stop,
        )


def _exit_for_latest_entry(
    entry: npt.NDArray[np.int8],
    long_exit: npt.NDArray[np.bool_],
    short_exit: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Apply, on each row, the exit rule of the side of the latest entry at or before it."""
    sides = pd.Series(np.where(entry != NO_ENTRY, entry, np.nan))
    latest_side = sides.ffill().to_numpy(dtype=np.float64)
    exit_long = (latest_side == ENTRY_LONG) & long_exit
    exit_short = (latest_side == ENTRY_SHORT) & short_exit
    return np.asarray(exit_long | exit_short, dtype=np.bool_)
