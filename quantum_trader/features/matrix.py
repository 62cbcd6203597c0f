"""The feature matrix the ensemble learns from.

Every feature is scale-free (a return, a ratio or a bounded oscillator, never a raw price or
volume), so one model can be trained on several symbols pooled. Every feature is causal: row
``i`` uses candles ``<= i`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantum_trader.errors import DataError
from quantum_trader.features import indicators as ind

RETURN_PERIODS = (1, 3, 12, 24)
EMA_PERIODS = (12, 26, 96)
SLOPE_LAG = 3
VOLATILITY_WINDOWS = (24, 96)
VOLUME_WINDOW = 96
ATR_PERIOD = 14
HIGHER_PREFIX = "htf_"

FEATURE_COLUMNS: tuple[str, ...] = (
    *(f"log_return_{p}" for p in RETURN_PERIODS),
    *(f"ema_distance_{p}" for p in EMA_PERIODS),
    "ema_slope_26",
    "rsi_14",
    "macd_hist_pct",
    "bollinger_pct_b",
    "bollinger_width",
    "atr_pct",
    *(f"volatility_{w}" for w in VOLATILITY_WINDOWS),
    "volume_zscore",
    "trend_strength",
    "hour_sin",
    "hour_cos",
)

REQUIRED_COLUMNS = ("date", "open", "high", "low", "close", "volume")


def _check_candles(candles: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in candles.columns]
    if missing:
        raise DataError(
            f"candle frame is missing the columns {missing}; "
            f"build_features needs {REQUIRED_COLUMNS}"
        )


def _price_features(close: np.ndarray, high: np.ndarray, low: np.ndarray) -> dict[str, np.ndarray]:
    features: dict[str, np.ndarray] = {}
    for period in RETURN_PERIODS:
        features[f"log_return_{period}"] = ind.log_returns(close, period)

    emas = {period: ind.ema(close, period) for period in EMA_PERIODS}
    for period, average in emas.items():
        features[f"ema_distance_{period}"] = close / average - 1.0
    slope = np.full(len(close), np.nan)
    slope[SLOPE_LAG:] = emas[26][SLOPE_LAG:] / emas[26][:-SLOPE_LAG] - 1.0
    features["ema_slope_26"] = slope

    # The RSI is rescaled to 0..1 so every feature has a similar magnitude for the linear model.
    features["rsi_14"] = ind.rsi(close, 14) / 100.0
    _, _, hist = ind.macd(close)
    features["macd_hist_pct"] = hist / close

    mid, upper, lower = ind.bollinger(close, 20, 2.0)
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        pct_b = np.where(width > 0.0, (close - lower) / width, 0.5)
    features["bollinger_pct_b"] = np.where(np.isnan(mid), np.nan, pct_b)
    features["bollinger_width"] = width / mid

    average_range = ind.atr(high, low, close, ATR_PERIOD)
    features["atr_pct"] = average_range / close
    for window in VOLATILITY_WINDOWS:
        features[f"volatility_{window}"] = ind.rolling_volatility(close, window)

    # Regime: distance between a medium and a slow trend, in ATRs (large = trending market).
    gap = np.abs(emas[26] - emas[96])
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = np.where(average_range > 0.0, gap / average_range, 0.0)
    features["trend_strength"] = np.where(np.isnan(gap + average_range), np.nan, trend)
    return features


def _time_features(dates: pd.Series) -> dict[str, np.ndarray]:
    times = pd.DatetimeIndex(dates)
    hours = times.hour.to_numpy(dtype=np.float64) + times.minute.to_numpy(dtype=np.float64) / 60.0
    angle = 2.0 * np.pi * hours / 24.0
    return {"hour_sin": np.sin(angle), "hour_cos": np.cos(angle)}


def _higher_features(higher: pd.DataFrame, rows: int) -> dict[str, np.ndarray]:
    if len(higher) != rows:
        raise DataError(
            f"higher-timeframe frame has {len(higher)} rows but the candles have {rows}; "
            "align it to the base candles first (one row per base candle)"
        )
    features: dict[str, np.ndarray] = {}
    for column in higher.select_dtypes(include=["number", "bool"]).columns:
        name = str(column)
        key = name if name.startswith(HIGHER_PREFIX) else HIGHER_PREFIX + name
        features[key] = higher[column].to_numpy(dtype=np.float64)
    return features


def build_features(candles: pd.DataFrame, higher: pd.DataFrame | None = None) -> pd.DataFrame:
    """Build the float32 feature matrix of one symbol, one row per candle.

    The result has the index of ``candles`` and the columns ``FEATURE_COLUMNS`` in that order.
    When ``higher`` is given (higher-timeframe context already aligned row by row to the base
    candles, for example a ``higher_trend`` column), its numeric columns are appended with the
    prefix ``htf_``. The caller is responsible for that alignment being causal.
    """
    _check_candles(candles)
    close = candles["close"].to_numpy(dtype=np.float64)
    high = candles["high"].to_numpy(dtype=np.float64)
    low = candles["low"].to_numpy(dtype=np.float64)

    features = _price_features(close, high, low)
    features["volume_zscore"] = ind.volume_zscore(
        candles["volume"].to_numpy(dtype=np.float64), VOLUME_WINDOW
    )
    features.update(_time_features(candles["date"]))

    ordered = {name: features[name] for name in FEATURE_COLUMNS}
    if higher is not None:
        ordered.update(_higher_features(higher, len(candles)))
    return pd.DataFrame(ordered, index=candles.index).astype(np.float32)
