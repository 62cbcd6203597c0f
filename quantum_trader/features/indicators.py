"""Technical indicators on numpy float64 arrays.

Every function returns arrays of the input length, NaN during the warm-up, and is causal: the
value in row ``i`` uses rows ``<= i`` only, so truncating the input never changes earlier values.
Recursive averages (EMA, Wilder) run through pandas ``ewm(adjust=False)``, which evaluates the
recursion in compiled code. The seed value is placed at the end of the warm-up by hand.
Leading NaNs (for example the first row of a return series) are skipped before the seed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError

FloatArray = npt.NDArray[np.float64]


def _as_float(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _check_period(period: int, name: str = "period") -> None:
    if period < 1:
        raise ConfigurationError(f"indicator {name}={period} is invalid; use an integer >= 1")


def _seeded_recursion(x: FloatArray, period: int, alpha: float) -> FloatArray:
    """Run y = alpha*x + (1-alpha)*y_prev, seeded with the mean of the first period values.

    The seed sits at the row of the last value it averages. Leading NaNs are skipped. At a NaN
    after the seed, pandas keeps the previous average.
    """
    out = np.full(len(x), np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) == 0:
        return out
    start = int(finite[0])
    seed_row = start + period - 1
    if seed_row >= len(x):
        return out

    tail = x[seed_row:].copy()
    tail[0] = np.mean(x[start : seed_row + 1])
    smoothed = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    out[seed_row:] = smoothed
    return out


def sma(x: npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average over the last ``period`` values."""
    _check_period(period)
    series = pd.Series(_as_float(x))
    return series.rolling(period, min_periods=period).mean().to_numpy(dtype=np.float64)


def ema(x: npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average with alpha = 2 / (period + 1).

    The first value (row ``period - 1``) is the simple mean of the first ``period`` values,
    as TA-Lib and most charting tools seed it.
    """
    _check_period(period)
    return _seeded_recursion(_as_float(x), period, 2.0 / (period + 1))


def wilder(x: npt.ArrayLike, period: int) -> FloatArray:
    """Wilder's moving average: seed = mean of the first ``period`` values, then
    avg = (prev * (period - 1) + x) / period."""
    _check_period(period)
    return _seeded_recursion(_as_float(x), period, 1.0 / period)


def rsi(close: npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's relative strength index, 0..100.

    The first average gain and loss are the simple means of the first ``period`` price changes
    (row ``period``). Only gains gives 100, only losses gives 0, and a flat window (no gain and
    no loss, 0/0) gives 50.
    """
    _check_period(period)
    prices = _as_float(close)
    change = np.diff(prices, prepend=np.nan)
    gain = np.where(np.isnan(change), np.nan, np.maximum(change, 0.0))
    loss = np.where(np.isnan(change), np.nan, np.maximum(-change, 0.0))
    avg_gain = wilder(gain, period)
    avg_loss = wilder(loss, period)

    # 100 * g / (g + l) equals 100 - 100 / (1 + g / l) without dividing by a zero loss.
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        value = 100.0 * avg_gain / total
    return np.where(total == 0.0, 50.0, value)


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """True range: max(H - L, |H - previous close|, |L - previous close|).

    The first row has no previous close, so its true range is H - L.
    """
    h, lo, c = _as_float(high), _as_float(low), _as_float(close)
    span = h - lo
    previous = np.roll(c, 1)
    tr = np.maximum(span, np.maximum(np.abs(h - previous), np.abs(lo - previous)))
    if len(tr):
        tr[0] = span[0]
    return tr


def atr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, period: int = 14
) -> FloatArray:
    """Wilder's average true range; the first value (row ``period - 1``) is the mean of the
    first ``period`` true ranges, the first one included."""
    return wilder(true_range(high, low, close), period)


def macd(
    close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line (EMA fast - EMA slow), its signal line (EMA of the line) and the histogram."""
    if fast >= slow:
        raise ConfigurationError(f"MACD fast={fast} must be below slow={slow}")
    prices = _as_float(close)
    line = ema(prices, fast) - ema(prices, slow)
    signal_line = ema(line, signal)
    return line, signal_line, line - signal_line


def bollinger(
    close: npt.ArrayLike, period: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger bands (mid, upper, lower): SMA +- k population standard deviations (ddof=0)."""
    _check_period(period)
    series = pd.Series(_as_float(close))
    rolling = series.rolling(period, min_periods=period)
    mid = rolling.mean().to_numpy(dtype=np.float64)
    std = rolling.std(ddof=0).to_numpy(dtype=np.float64)
    return mid, mid + k * std, mid - k * std


def log_returns(close: npt.ArrayLike, periods: int = 1) -> FloatArray:
    """Log return over ``periods`` candles: ln(close[i] / close[i - periods])."""
    _check_period(periods, "periods")
    prices = _as_float(close)
    out = np.full(len(prices), np.nan)
    if len(prices) > periods:
        out[periods:] = np.log(prices[periods:] / prices[:-periods])
    return out


def rolling_volatility(close: npt.ArrayLike, window: int) -> FloatArray:
    """Sample standard deviation (ddof=1) of one-candle log returns over ``window`` returns."""
    _check_period(window, "window")
    returns = pd.Series(log_returns(close, 1))
    return returns.rolling(window, min_periods=window).std(ddof=1).to_numpy(dtype=np.float64)


def volume_zscore(volume: npt.ArrayLike, window: int) -> FloatArray:
    """(volume - rolling mean) / rolling population std over ``window`` candles; 0 when the
    window is constant."""
    _check_period(window, "window")
    rolling = pd.Series(_as_float(volume)).rolling(window, min_periods=window)
    mean = rolling.mean().to_numpy(dtype=np.float64)
    std = rolling.std(ddof=0).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (_as_float(volume) - mean) / std
    return np.where(std == 0.0, 0.0, z)
