"""Causal per-symbol market statistics shared by the Universe OS and the OpportunityRanker.

``compute_market_stats`` turns one symbol's candle frame into arrays aligned to its rows. Every
value in row ``i`` uses rows ``<= i`` only, so truncating the frame never changes earlier values.
Rows before a statistic's warm-up hold NaN. The arrays are computed once per backtest with
vectorised numpy and pandas. ``snapshot`` then reads one row at a cadence point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError
from quantum_trader.features import indicators

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_REQUIRED_COLUMNS = ("high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class MarketStats:
    """Causal statistics of one symbol, one value per candle row.

    - ``close``: the candle close, in quote currency.
    - ``quote_volume``: sum of close x volume over the last ``window`` candles, in quote currency.
    - ``volatility``: sample standard deviation (ddof=1) of the last ``window`` one-candle log
      returns. The first value is in row ``window``, because row 0 has no return.
    - ``atr_ratio``: Wilder ATR(``atr_period``) over the close.
    - ``trend_strength``: |EMA(fast) - EMA(slow)| / ATR, in ATRs. It is 0 where the ATR is 0,
      which happens only while every candle so far is flat at one price.
    - ``trend_direction``: +1 when EMA(fast) > EMA(slow), -1 when below, 0 when equal or during
      the warm-up.
    - ``efficiency``: Kaufman efficiency ratio over ``window`` candles,
      |close[i] - close[i - window]| / sum of |close[j] - close[j - 1]|, in 0..1. Near 1 is a
      clean trend and near 0 a range. A flat window (0/0) gives 0.
    - ``history``: row index + 1, the number of candles seen so far.
    """

    window: int
    close: FloatArray
    quote_volume: FloatArray
    volatility: FloatArray
    atr_ratio: FloatArray
    trend_strength: FloatArray
    trend_direction: npt.NDArray[np.int8]
    efficiency: FloatArray
    history: IntArray

    def __len__(self) -> int:
        return len(self.close)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """One market's state at one time, the input of the Universe OS.

    ``spread`` is (ask - bid) / mid, a fraction (0.001 = 0.1%), or None when unknown.
    ``quote_volume`` is summed over the Universe OS window. ``volatility`` and ``history`` are
    None when unknown (for example a snapshot built from a ticker alone). Prices are in quote
    currency. On bad data the price, tick size and volume may be None, NaN, zero or negative.
    """

    symbol: str
    price: float | None
    tick_size: float | None
    quote_volume: float | None
    volatility: float | None = None
    history: int | None = None
    spread: float | None = None
    atr_ratio: float = math.nan
    trend_strength: float = math.nan
    trend_direction: int = 0
    efficiency: float = math.nan


def compute_market_stats(
    candles: pd.DataFrame,
    window: int,
    *,
    fast: int = 20,
    slow: int = 50,
    atr_period: int = 14,
) -> MarketStats:
    """Compute the causal statistics of one symbol's candles (see ``MarketStats``).

    Raises ConfigurationError when a column is missing or a period is invalid.
    """
    _check_inputs(candles, window, fast, slow, atr_period)
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)
    volume = candles["volume"].to_numpy(dtype=np.float64)

    quote_volume = _rolling_sum(close * volume, window)
    volatility = indicators.rolling_volatility(close, window)

    atr = indicators.atr(high, low, close, atr_period)
    with np.errstate(invalid="ignore", divide="ignore"):
        atr_ratio = atr / close
    gap = indicators.ema(close, fast) - indicators.ema(close, slow)
    trend_strength = _safe_ratio(np.abs(gap), atr)
    trend_direction = np.nan_to_num(np.sign(gap), nan=0.0).astype(np.int8)

    return MarketStats(
        window=window,
        close=close,
        quote_volume=quote_volume,
        volatility=volatility,
        atr_ratio=atr_ratio,
        trend_strength=trend_strength,
        trend_direction=trend_direction,
        efficiency=efficiency_ratio(close, window),
        history=np.arange(1, len(close) + 1, dtype=np.int64),
    )


def efficiency_ratio(close: npt.ArrayLike, window: int) -> FloatArray:
    """Kaufman efficiency ratio: net move over the path length of the last ``window`` changes.

    The first value is in row ``window``. A window without any price change gives 0.
    """
    prices = np.asarray(close, dtype=np.float64)
    net = np.full(len(prices), np.nan)
    if len(prices) > window:
        net[window:] = np.abs(prices[window:] - prices[:-window])
    steps = np.abs(np.diff(prices, prepend=np.nan))
    path = _rolling_sum(steps, window)
    return _safe_ratio(net, path)


def snapshot(
    stats: MarketStats,
    row: int,
    symbol: str,
    tick_size: float,
    spread: float | None = None,
) -> MarketSnapshot:
    """Read row ``row`` of ``stats`` as a snapshot. NaN statistics become None or stay NaN.

    Raises IndexError when ``row`` is outside the candles.
    """
    if not 0 <= row < len(stats):
        raise IndexError(f"row {row} is outside the {len(stats)} candles of {symbol}")
    volatility = float(stats.volatility[row])
    return MarketSnapshot(
        symbol=symbol,
        price=float(stats.close[row]),
        tick_size=tick_size,
        quote_volume=float(stats.quote_volume[row]),
        volatility=volatility if math.isfinite(volatility) else None,
        history=int(stats.history[row]),
        spread=spread,
        atr_ratio=float(stats.atr_ratio[row]),
        trend_strength=float(stats.trend_strength[row]),
        trend_direction=int(stats.trend_direction[row]),
        efficiency=float(stats.efficiency[row]),
    )


def _check_inputs(
    candles: pd.DataFrame, window: int, fast: int, slow: int, atr_period: int
) -> None:
    missing = [column for column in _REQUIRED_COLUMNS if column not in candles.columns]
    if missing:
        raise ConfigurationError(
            f"candle frame is missing the columns {missing}; market statistics need "
            f"{list(_REQUIRED_COLUMNS)}"
        )
    for name, value in (("window", window), ("atr_period", atr_period), ("fast", fast)):
        if value < 2:
            raise ConfigurationError(f"market statistics {name}={value} is invalid; use >= 2")
    if fast >= slow:
        raise ConfigurationError(f"market statistics fast={fast} must be below slow={slow}")


def _rolling_sum(values: FloatArray, window: int) -> FloatArray:
    series = pd.Series(values)
    return series.rolling(window, min_periods=window).sum().to_numpy(dtype=np.float64)


def _safe_ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Divide where the denominator is positive. A zero denominator gives 0 and NaN stays NaN."""
    out = np.full(len(numerator), np.nan)
    positive = denominator > 0
    np.divide(numerator, denominator, out=out, where=positive)
    zero = (denominator == 0) & np.isfinite(numerator)
    out[zero] = 0.0
    return out
