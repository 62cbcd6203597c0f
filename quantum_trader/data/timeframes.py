"""Candle timeframes: the strings freqtrade and ccxt use ("5m", "1h", "1d") and their durations.

Every candle opens on a grid of its timeframe counted from the Unix epoch, UTC. Weekly candles are
the exception: they open on Monday 00:00 UTC (as on Binance), so their grid starts at Monday
1970-01-05 and not at the epoch, which was a Thursday.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from quantum_trader.errors import ConfigurationError

NS_PER_SECOND = 1_000_000_000

_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1_800,
    "1h": 3_600,
    "2h": 7_200,
    "4h": 14_400,
    "6h": 21_600,
    "8h": 28_800,
    "12h": 43_200,
    "1d": 86_400,
    "1w": 604_800,
}

# Pandas frequency strings with a fixed length. The weekly "W" alias is anchored on a weekday and
# has no fixed length in pandas, so weeks are written as "7D".
_OFFSETS: dict[str, str] = {
    "1m": "1min",
    "3m": "3min",
    "5m": "5min",
    "15m": "15min",
    "30m": "30min",
    "1h": "1h",
    "2h": "2h",
    "4h": "4h",
    "6h": "6h",
    "8h": "8h",
    "12h": "12h",
    "1d": "1D",
    "1w": "7D",
}

# Monday 1970-01-05 00:00 UTC is 4 days after the epoch.
_WEEK_GRID_OFFSET_NS = 4 * 86_400 * NS_PER_SECOND

TIMEFRAMES: tuple[str, ...] = tuple(_SECONDS)


def timeframe_to_seconds(tf: str) -> int:
    """Return the length of one candle of timeframe ``tf`` in seconds.

    Raises ConfigurationError for a timeframe outside ``TIMEFRAMES``.
    """
    seconds = _SECONDS.get(tf)
    if seconds is None:
        raise ConfigurationError(
            f"Invalid timeframe {tf!r}. Use one of: {', '.join(TIMEFRAMES)} "
            "(a number followed by m for minutes, h for hours, d for days or w for weeks)."
        )
    return seconds


def timeframe_to_ns(tf: str) -> int:
    """Return the length of one candle of timeframe ``tf`` in nanoseconds."""
    return timeframe_to_seconds(tf) * NS_PER_SECOND


def timeframe_to_offset(tf: str) -> str:
    """Return the fixed-length pandas frequency string of ``tf`` ("5min", "1h", "1D", "7D")."""
    timeframe_to_seconds(tf)
    return _OFFSETS[tf]


def grid_offset_ns(tf: str) -> int:
    """Return where the candle grid of ``tf`` starts, in nanoseconds after the Unix epoch.

    Candle open times ``t`` of timeframe ``tf`` satisfy
    ``(t - grid_offset_ns(tf)) % timeframe_to_ns(tf) == 0``.
    """
    timeframe_to_seconds(tf)
    return _WEEK_GRID_OFFSET_NS if tf == "1w" else 0


def infer_timeframe(file_name: str, dates: pd.Series) -> str:
    """Return the timeframe of a candle file from its name, or else from its open times.

    The name wins when one of its ``-``, ``_`` or ``.`` separated parts is a timeframe
    ("BTC_USDT-5m.feather"). Otherwise the most common step between sorted unique open times
    must equal one of ``TIMEFRAMES``. Raises ConfigurationError when neither finds a timeframe.
    """
    for part in re.split(r"[-_.]", file_name):
        if part in _SECONDS:
            return part

    values = np.unique(pd.to_datetime(dates, utc=True).dropna().to_numpy(dtype="datetime64[ns]"))
    steps = np.diff(values.view(np.int64))
    if steps.size:
        step_values, counts = np.unique(steps, return_counts=True)
        step_seconds = int(step_values[np.argmax(counts)]) // NS_PER_SECOND
        for tf, seconds in _SECONDS.items():
            if seconds == step_seconds:
                return tf
    raise ConfigurationError(
        f"Cannot infer the timeframe of {file_name}: the name has no timeframe part and the "
        f"candle spacing matches none of {', '.join(TIMEFRAMES)}. Pass the timeframe explicitly."
    )
