"""Buy-and-hold comparison: the same capital split equally, bought at each symbol's first open."""

from __future__ import annotations

import pandas as pd

from quantum_trader.config import Settings


def buy_and_hold_equity(
    candles: dict[str, pd.DataFrame], index: pd.DatetimeIndex, settings: Settings
) -> pd.Series:
    """Return the equity of an equal-weight buy-and-hold, marked at each candle's close.

    Each symbol gets ``initial_capital / n``, pays the taker fee once on entry and is held to
    the end; before a symbol's first candle its share is held as cash.
    """
    capital = settings.backtest.initial_capital
    share = capital / len(candles)
    fee = settings.exchange.taker_rate
    total = pd.Series(0.0, index=index)
    for frame in candles.values():
        closes = pd.Series(frame["close"].to_numpy(), index=pd.DatetimeIndex(frame["date"]))
        quantity = share / (1.0 + fee) / float(frame["open"].iloc[0])
        value = (closes * quantity).reindex(index).ffill().fillna(share)
        total = total + value
    return total.rename("buy_and_hold")
