"""Higher-timeframe context features: the trend, RSI and volatility of longer candles.

Base candles (for example 5m) are resampled into complete higher candles (for example 1h) with
``resample_candles``. The indicators are computed on the higher candles, then attached with
``merge_higher_timeframe``: a base candle gets the values of a higher candle only once that
candle has closed, at or before the base candle's close. With 15m base candles, the 1h candle
opened at 10:00 first reaches the base candle opened at 10:45. Base rows before the first
complete higher candle and its indicator warm-up get NaN.

Features (computed on the higher candles):

- ``htf_trend_24``: close / EMA(24) - 1.
- ``htf_rsi_14``: Wilder's RSI(14) / 100.
- ``htf_volatility_24``: sample standard deviation of the last 24 one-candle log returns.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from quantum_trader.data.resample import merge_higher_timeframe, resample_candles
from quantum_trader.data.timeframes import timeframe_to_ns
from quantum_trader.features import indicators as ind
from quantum_trader.features.matrix import HIGHER_PREFIX, build_features

TREND_EMA_PERIOD = 24
RSI_PERIOD = 14
VOLATILITY_WINDOW = 24
_INDICATORS = (
    f"trend_{TREND_EMA_PERIOD}",
    f"rsi_{RSI_PERIOD}",
    f"volatility_{VOLATILITY_WINDOW}",
)
HIGHER_COLUMNS: tuple[str, ...] = tuple(HIGHER_PREFIX + name for name in _INDICATORS)


def uses_higher_timeframe(base_timeframe: str, higher_timeframe: str | None) -> bool:
    """Return True when ``higher_timeframe`` is set and longer than ``base_timeframe``."""
    if higher_timeframe is None:
        return False
    return timeframe_to_ns(higher_timeframe) > timeframe_to_ns(base_timeframe)


def higher_timeframe_features(
    candles: pd.DataFrame, base_timeframe: str, higher_timeframe: str
) -> pd.DataFrame:
    """Build the ``HIGHER_COLUMNS`` frame of one symbol, one row per base candle.

    The result has the index of ``candles``. Raises ConfigurationError when ``higher_timeframe``
    is not a whole multiple of ``base_timeframe``.
    """
    higher = resample_candles(candles, base_timeframe, higher_timeframe)
    close = higher["close"].to_numpy(dtype="float64")
    higher[_INDICATORS[0]] = close / ind.ema(close, TREND_EMA_PERIOD) - 1.0
    higher[_INDICATORS[1]] = ind.rsi(close, RSI_PERIOD) / 100.0
    higher[_INDICATORS[2]] = ind.rolling_volatility(close, VOLATILITY_WINDOW)

    merged = merge_higher_timeframe(
        candles[["date"]],
        base_timeframe,
        higher,
        higher_timeframe,
        list(_INDICATORS),
        HIGHER_PREFIX,
    )
    return pd.DataFrame(
        {column: merged[column].to_numpy(dtype="float64") for column in HIGHER_COLUMNS},
        index=candles.index,
    )


def higher_context(
    candles: Mapping[str, pd.DataFrame], base_timeframe: str, higher_timeframe: str | None
) -> dict[str, pd.DataFrame] | None:
    """Build the context frame of every symbol, or return None when the setting does not apply
    (``higher_timeframe`` unset, or not longer than ``base_timeframe``)."""
    if higher_timeframe is None or not uses_higher_timeframe(base_timeframe, higher_timeframe):
        return None
    return {
        symbol: higher_timeframe_features(frame, base_timeframe, higher_timeframe)
        for symbol, frame in candles.items()
    }


def build_model_features(
    candles: pd.DataFrame, base_timeframe: str, higher_timeframe: str | None
) -> pd.DataFrame:
    """Build the feature matrix the ensemble is trained on: the base features, plus the
    higher-timeframe context when ``higher_timeframe`` is longer than ``base_timeframe``."""
    if higher_timeframe is None or not uses_higher_timeframe(base_timeframe, higher_timeframe):
        return build_features(candles)
    context = higher_timeframe_features(candles, base_timeframe, higher_timeframe)
    return build_features(candles, context)
