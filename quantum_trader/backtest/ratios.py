"""Performance formulas: pure functions over returns, equity curves and trade PnLs.

Conventions, with the worked Sharpe example, are in docs/metrics.md. In short: Sharpe and
Sortino take daily returns, are annualised with 365 periods (crypto trades every day) and use the
sample standard deviation (ddof=1); an annual risk-free rate r becomes (1 + r) ** (1 / N) - 1 per
period. Undefined values are None, and an unbounded value is ``math.inf``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantum_trader.core.types import Trade
from quantum_trader.errors import ConfigurationError

CRYPTO_PERIODS_PER_YEAR = 365
DAYS_PER_YEAR = 365.0
MIN_CAGR_DAYS = 30.0
# A constant return series has a floating-point standard deviation near 1e-19 instead of 0, which
# would give a Sharpe ratio near 1e15. Treat a deviation this small, relative to the largest
# absolute return, as zero volatility.
ZERO_VOLATILITY_RTOL = 1e-12


@dataclass(frozen=True)
class DrawdownInfo:
    """The deepest peak-to-trough fall of an equity curve.

    ``depth`` is a positive fraction of the peak (0.25 is a 25% fall). Times are labels of the
    equity index. ``duration`` runs from the peak to the recovery, or to the last point of the
    curve when the equity never regained the peak (``recovery_time`` is then None).
    """

    depth: float
    peak_time: pd.Timestamp
    trough_time: pd.Timestamp
    recovery_time: pd.Timestamp | None
    duration: pd.Timedelta


def _finite_array(values: Iterable[float], what: str) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)][0]
        raise ConfigurationError(f"{what} contains the non-finite value {bad}; drop or fill it.")
    return array


def profit_factor(pnls: Iterable[float]) -> float | None:
    """Return gross profit divided by gross loss.

    Returns ``math.inf`` when there are winning trades and no losing ones, 0.0 when there are
    only losing trades, and None when there are no trades or every PnL is zero.
    """
    values = _finite_array(pnls, "trade PnLs")
    gross_profit = float(values[values > 0].sum())
    gross_loss = float(-values[values < 0].sum())
    if gross_loss == 0.0:
        return math.inf if gross_profit > 0.0 else None
    return gross_profit / gross_loss


def per_period_rate(annual_rate: float, periods_per_year: int) -> float:
    """Convert an annual rate to the compounding-equivalent rate of one period."""
    if periods_per_year <= 0:
        raise ConfigurationError(f"periods_per_year must be positive, got {periods_per_year}.")
    return float((1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0)


def _excess_returns(
    returns: Iterable[float], periods_per_year: int, risk_free_annual: float
) -> np.ndarray:
    values = _finite_array(returns, "returns")
    return values - per_period_rate(risk_free_annual, periods_per_year)


def _is_zero_volatility(deviation: float, excess: np.ndarray) -> bool:
    scale = float(np.max(np.abs(excess))) if excess.size else 0.0
    return deviation <= ZERO_VOLATILITY_RTOL * scale


def sharpe_ratio(
    returns: Sequence[float] | np.ndarray | pd.Series,
    periods_per_year: int = CRYPTO_PERIODS_PER_YEAR,
    risk_free_annual: float = 0.0,
) -> float | None:
    """Return the annualised Sharpe ratio: mean(excess) / std(excess, ddof=1) * sqrt(periods).

    ``risk_free_annual`` is an annual rate, converted per period by compounding. Returns None
    for fewer than two returns and for zero volatility (see ``ZERO_VOLATILITY_RTOL``).
    """
    excess = _excess_returns(returns, periods_per_year, risk_free_annual)
    if excess.size < 2:
        return None
    deviation = float(np.std(excess, ddof=1))
    if _is_zero_volatility(deviation, excess):
        return None
    return float(np.mean(excess)) / deviation * math.sqrt(periods_per_year)


def sortino_ratio(
    returns: Sequence[float] | np.ndarray | pd.Series,
    periods_per_year: int = CRYPTO_PERIODS_PER_YEAR,
    risk_free_annual: float = 0.0,
) -> float | None:
    """Return the annualised Sortino ratio: mean(excess) / downside deviation * sqrt(periods).

    The downside deviation is sqrt(mean(min(excess, 0) ** 2)) over all periods, with target 0
    on the excess returns, so periods above the target count as zeros in the mean. Returns None
    for fewer than two returns or zero volatility, and ``math.inf`` when no excess return is
    negative.
    """
    excess = _excess_returns(returns, periods_per_year, risk_free_annual)
    if excess.size < 2:
        return None
    if _is_zero_volatility(float(np.std(excess, ddof=1)), excess):
        return None
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
    if _is_zero_volatility(downside, excess):
        return math.inf
    return float(np.mean(excess)) / downside * math.sqrt(periods_per_year)


def _utc_index(series: pd.Series) -> pd.Series:
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ConfigurationError(
            f"the equity series needs a DatetimeIndex of candle open times, got "
            f"{type(series.index).__name__}."
        )
    index = series.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return series.set_axis(index)


def drawdown_series(equity: pd.Series) -> pd.Series:
    """Return the fall from the running peak at each point, as a positive fraction of the peak."""
    values = _finite_array(equity.to_numpy(), "equity")
    if values.size and values[0] <= 0:
        raise ConfigurationError(
            f"equity must start positive to measure drawdowns, got {values[0]}."
        )
    running_peak = np.maximum.accumulate(values) if values.size else values
    return pd.Series(1.0 - values / running_peak, index=equity.index, name="drawdown")


def max_drawdown(equity: pd.Series) -> DrawdownInfo | None:
    """Find the deepest drawdown of an equity curve; None for an empty curve."""
    if equity.empty:
        return None
    drawdowns = drawdown_series(equity).to_numpy()
    values = equity.to_numpy(dtype=float)
    index = equity.index
    trough = int(np.argmax(drawdowns))
    depth = float(drawdowns[trough])
    if depth <= 0.0:
        return DrawdownInfo(0.0, index[0], index[0], None, pd.Timedelta(0))

    peak_value = float(np.max(values[: trough + 1]))
    # The drawdown starts when the equity last stood at the peak before the trough.
    peak = int(np.flatnonzero(values[: trough + 1] == peak_value)[-1])
    recovered = np.flatnonzero(values[trough + 1 :] >= peak_value)
    recovery_time = index[trough + 1 + int(recovered[0])] if recovered.size else None
    end_time = recovery_time if recovery_time is not None else index[-1]
    return DrawdownInfo(depth, index[peak], index[trough], recovery_time, end_time - index[peak])


def candle_step(index: pd.Index) -> pd.Timedelta:
    """Return the typical spacing of a time index (its median step), or zero below two points."""
    if len(index) < 2:
        return pd.Timedelta(0)
    return pd.Timedelta(pd.Series(index).diff().dropna().median())


def run_span(equity: pd.Series) -> pd.Timedelta:
    """Return the time from the first candle's open to the last candle's close."""
    if equity.empty:
        return pd.Timedelta(0)
    return pd.Timedelta(equity.index[-1] - equity.index[0]) + candle_step(equity.index)


def cagr(
    equity: pd.Series, initial_capital: float | None = None, min_days: float = MIN_CAGR_DAYS
) -> float | None:
    """Return the compound annual growth rate over a 365-day year.

    With ``initial_capital`` (the equity before the first candle), growth is measured from it
    over ``run_span``. Without it, growth runs from the first to the last point of the curve.
    Returns None when that span is shorter than ``min_days``, because annualising a few days
    exaggerates. Returns -1.0 when the final equity is zero or below.
    """
    if equity.empty:
        return None
    if initial_capital is None:
        start = float(equity.iloc[0])
        span = pd.Timedelta(equity.index[-1] - equity.index[0])
    else:
        start, span = float(initial_capital), run_span(equity)
    days = span / pd.Timedelta(days=1)
    if days < min_days:
        return None
    if start <= 0:
        raise ConfigurationError(f"the starting equity must be positive, got {start}.")
    end = float(equity.iloc[-1])
    if end <= 0:
        return -1.0
    return float((end / start) ** (DAYS_PER_YEAR / days) - 1.0)


def calmar_ratio(annual_growth: float | None, drawdown_depth: float | None) -> float | None:
    """Return CAGR divided by the maximum drawdown depth; None when either is missing or zero."""
    if annual_growth is None or drawdown_depth is None or drawdown_depth <= 0.0:
        return None
    return annual_growth / drawdown_depth


def daily_returns(equity: pd.Series, initial_capital: float | None = None) -> pd.Series:
    """Return the returns of the equity resampled to UTC days, taking the last value per day.

    Days without a candle carry the previous equity forward, so they count as a zero return.
    With ``initial_capital`` the first day's return is measured from it; without it the first
    day has no return.
    """
    if equity.empty:
        return pd.Series(dtype=float)
    daily = _utc_index(equity).astype(float).resample("1D").last().ffill()
    previous = daily.shift(1)
    if initial_capital is None:
        return (daily / previous - 1.0).iloc[1:]
    previous.iloc[0] = float(initial_capital)
    return daily / previous - 1.0


def win_rate(pnls: Iterable[float]) -> float | None:
    """Return the share of trades with a positive PnL (a zero PnL is not a win); None if empty."""
    values = _finite_array(pnls, "trade PnLs")
    return float(np.mean(values > 0)) if values.size else None


def expectancy(pnls: Iterable[float]) -> float | None:
    """Return the mean PnL per trade in the quote currency; None if there are no trades."""
    values = _finite_array(pnls, "trade PnLs")
    return float(np.mean(values)) if values.size else None


def _utc_timestamp(value: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


def exposure(trades: Sequence[Trade], index: pd.DatetimeIndex) -> float | None:
    """Return the share of candles in ``index`` with at least one open position.

    A trade covers the candles whose open time t satisfies entry_time <= t < exit_time, so the
    exit candle is not counted. A trade that enters and exits in the same candle covers that
    one candle. Returns None for an empty index.
    """
    if len(index) == 0:
        return None
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    # Count open trades per candle with a difference array, O(candles + trades).
    changes = np.zeros(len(index) + 1, dtype=np.int64)
    for trade in trades:
        start = int(index.searchsorted(_utc_timestamp(trade.entry_time), side="left"))
        end = int(index.searchsorted(_utc_timestamp(trade.exit_time), side="left"))
        end = max(end, min(start + 1, len(index)))
        changes[start] += 1
        changes[end] -= 1
    open_counts = np.cumsum(changes[:-1])
    return float(np.mean(open_counts > 0))
