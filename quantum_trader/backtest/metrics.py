"""Performance metrics of a backtest run, and the formulas they are built from.

``compute_metrics`` turns a ``BacktestResult`` into labelled ``Metric`` rows and
``per_symbol_table`` into one row per symbol. The formulas live in
``quantum_trader.backtest.ratios`` and are re-exported here. Conventions are in docs/metrics.md:
Sharpe and Sortino use daily returns of the equity resampled to UTC days (last value per day),
365 periods a year and ddof=1; CAGR needs a run of at least 30 days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from quantum_trader.backtest.ratios import (
    CRYPTO_PERIODS_PER_YEAR,
    MIN_CAGR_DAYS,
    ZERO_VOLATILITY_RTOL,
    DrawdownInfo,
    cagr,
    calmar_ratio,
    daily_returns,
    drawdown_series,
    expectancy,
    exposure,
    max_drawdown,
    per_period_rate,
    profit_factor,
    run_span,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
)
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.core.types import Trade

__all__ = [
    "CRYPTO_PERIODS_PER_YEAR",
    "MIN_CAGR_DAYS",
    "ZERO_VOLATILITY_RTOL",
    "DrawdownInfo",
    "Metric",
    "cagr",
    "calmar_ratio",
    "compute_metrics",
    "daily_returns",
    "drawdown_series",
    "expectancy",
    "exposure",
    "max_drawdown",
    "metrics_to_dict",
    "per_period_rate",
    "per_symbol_table",
    "profit_factor",
    "run_span",
    "sharpe_ratio",
    "sortino_ratio",
    "win_rate",
]

EMPTY_EQUITY = "empty equity curve"
NO_TRADES = "no trades"


@dataclass(frozen=True)
class Metric:
    """One named performance number.

    ``value`` is None when the metric is undefined, and ``note`` then gives the reason ("no trades",
    "zero volatility", ...). ``note`` may also give context, such as the drawdown's peak and
    trough times. An unbounded value, such as the profit factor of a run with no losing trades,
    stays ``math.inf`` for Python callers with the note "no losing trades". ``to_json`` writes
    it as null with the note "infinite: no losing trades", because JSON has no infinity.
    """

    name: str
    value: float | None
    display: str
    note: str | None = None

    def to_json(self) -> dict[str, str | float | None]:
        """Return the metric as a JSON-safe dict: NaN and infinities become null with a note."""
        value = self.value
        note = self.note
        if value is not None and math.isnan(value):
            value, note = None, note or "undefined"
        elif value is not None and math.isinf(value):
            prefix = "infinite" if value > 0 else "negative infinite"
            note = f"{prefix}: {note}" if note else prefix
            value = None
        return {"name": self.name, "value": value, "display": self.display, "note": note}


def metrics_to_dict(metrics: list[Metric]) -> dict[str, dict[str, str | float | None]]:
    """Key each metric's JSON-safe form by its name, keeping the order of ``metrics``."""
    return {metric.name: metric.to_json() for metric in metrics}


def compute_metrics(result: BacktestResult) -> list[Metric]:
    """Compute every run metric; undefined ones carry a None value and a note saying why."""
    return [
        *_return_metrics(result),
        *_risk_metrics(result),
        *_trade_metrics(result.trades, result.equity),
        Metric("fees_paid", result.fees_paid, _number(result.fees_paid)),
        Metric("funding_paid", result.funding_paid, _number(result.funding_paid)),
    ]


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:,.2f}"


def _metric(name: str, value: float | None, display: str, undefined_note: str) -> Metric:
    return Metric(name, value, display, undefined_note if value is None else None)


def _return_metrics(result: BacktestResult) -> list[Metric]:
    equity, capital = result.equity, result.initial_capital
    final = None if equity.empty else float(equity.iloc[-1])
    total = None if final is None else final / capital - 1.0
    benchmark = result.benchmark_equity
    hold = None if benchmark.empty else float(benchmark.iloc[-1]) / capital - 1.0
    growth = cagr(equity, capital)
    short = f"run shorter than {MIN_CAGR_DAYS:g} days ({run_span(equity)})"
    return [
        _metric("final_equity", final, _number(final), EMPTY_EQUITY),
        _metric("total_return", total, _percent(total), EMPTY_EQUITY),
        _metric("buy_and_hold_return", hold, _percent(hold), "empty benchmark equity curve"),
        _metric("cagr", growth, _percent(growth), EMPTY_EQUITY if final is None else short),
    ]


def _ratio_note(equity: pd.Series, returns: pd.Series) -> str:
    if equity.empty:
        return EMPTY_EQUITY
    if len(returns) >= 2:
        return "zero volatility"
    if run_span(equity) < pd.Timedelta(days=1):
        return "run shorter than one day"
    return "fewer than two daily returns"


def _risk_metrics(result: BacktestResult) -> list[Metric]:
    returns = daily_returns(result.equity, result.initial_capital).to_numpy()
    note = _ratio_note(result.equity, pd.Series(returns))
    sharpe = sharpe_ratio(returns)
    sortino = sortino_ratio(returns)
    if sortino == math.inf:
        sortino_metric = Metric("sortino_ratio", sortino, "inf", "no negative daily returns")
    else:
        sortino_metric = _metric("sortino_ratio", sortino, _number(sortino), note)
    growth = cagr(result.equity, result.initial_capital)
    return [
        _metric("sharpe_ratio", sharpe, _number(sharpe), note),
        sortino_metric,
        *_drawdown_metrics(result.equity, growth),
    ]


def _drawdown_context(info: DrawdownInfo) -> str | None:
    if info.depth <= 0.0:
        return None
    context = f"peak {info.peak_time.isoformat()}, trough {info.trough_time.isoformat()}"
    if info.recovery_time is None:
        return context + ", not recovered"
    return context + f", recovered {info.recovery_time.isoformat()}"


def _drawdown_metrics(equity: pd.Series, growth: float | None) -> list[Metric]:
    info = max_drawdown(equity)
    if info is None:
        names = ("max_drawdown", "max_drawdown_duration_days", "calmar_ratio")
        return [Metric(name, None, "n/a", EMPTY_EQUITY) for name in names]
    days = info.duration / pd.Timedelta(days=1)
    calmar = calmar_ratio(growth, info.depth)
    calmar_note = "no drawdown" if info.depth <= 0.0 else "CAGR undefined"
    return [
        Metric("max_drawdown", info.depth, _percent(info.depth), _drawdown_context(info)),
        Metric("max_drawdown_duration_days", days, f"{days:.2f} days"),
        _metric("calmar_ratio", calmar, _number(calmar), calmar_note),
    ]


def _profit_factor_metric(pnls: list[float]) -> Metric:
    value = profit_factor(pnls)
    if value == math.inf:
        return Metric("profit_factor", value, "inf", "no losing trades")
    undefined = NO_TRADES if not pnls else "no winning or losing trades (all PnLs are zero)"
    return _metric("profit_factor", value, _number(value), undefined)


def _trade_metrics(trades: list[Trade], equity: pd.Series) -> list[Metric]:
    pnls = [trade.pnl for trade in trades]
    rate = win_rate(pnls)
    mean_pnl = expectancy(pnls)
    best = max(pnls) if pnls else None
    worst = min(pnls) if pnls else None
    durations = [pd.Timestamp(t.exit_time) - pd.Timestamp(t.entry_time) for t in trades]
    mean_duration = pd.Series(durations).mean() if durations else None
    hours = None if mean_duration is None else mean_duration / pd.Timedelta(hours=1)
    duration_display = "n/a" if hours is None else f"{hours:.1f} h"
    index = equity.index if isinstance(equity.index, pd.DatetimeIndex) else pd.DatetimeIndex([])
    share = exposure(trades, index)
    return [
        Metric("trade_count", float(len(trades)), str(len(trades))),
        _metric("win_rate", rate, _percent(rate), NO_TRADES),
        _profit_factor_metric(pnls),
        _metric("expectancy", mean_pnl, _number(mean_pnl), NO_TRADES),
        _metric("average_trade_duration_hours", hours, duration_display, NO_TRADES),
        _metric("best_trade_pnl", best, _number(best), NO_TRADES),
        _metric("worst_trade_pnl", worst, _number(worst), NO_TRADES),
        _metric("exposure", share, _percent(share), EMPTY_EQUITY),
    ]


def _profit_factor_note(value: float | None, trade_count: int) -> str | None:
    if value == math.inf:
        return "no losing trades"
    if value is None:
        return NO_TRADES if trade_count == 0 else "all PnLs are zero"
    return None


def _candle_times(frame: pd.DataFrame) -> pd.DatetimeIndex | None:
    times = frame["date"] if "date" in frame.columns else frame.index
    if not pd.api.types.is_datetime64_any_dtype(times):
        return None
    index = pd.DatetimeIndex(times)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def symbol_buy_and_hold(frame: pd.DataFrame | None, equity: pd.Series) -> float | None:
    """Return close of the last candle over open of the first, minus 1, within the run's span.

    Candles outside the equity index (a warm-up period, for example) are left out when both
    carry times. Returns None for a missing or empty frame.
    """
    if frame is None or frame.empty:
        return None
    times = _candle_times(frame)
    if times is not None and isinstance(equity.index, pd.DatetimeIndex) and not equity.empty:
        index = equity.index
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        frame = frame[(times >= index[0]) & (times <= index[-1])]
        if frame.empty:
            return None
    return float(frame["close"].iloc[-1]) / float(frame["open"].iloc[0]) - 1.0


def per_symbol_table(result: BacktestResult) -> list[dict[str, Any]]:
    """Summarise trades per symbol: count, win rate, PnL, fees, profit factor, buy and hold.

    ``profit_factor`` may be ``math.inf``; ``profit_factor_note`` is then "no losing trades".
    Symbols that traded but are missing from ``result.symbols`` are appended in trade order.
    """
    symbols = list(dict.fromkeys([*result.symbols, *(t.symbol for t in result.trades)]))
    rows: list[dict[str, Any]] = []
    for symbol in symbols:
        trades = [trade for trade in result.trades if trade.symbol == symbol]
        pnls = [trade.pnl for trade in trades]
        factor = profit_factor(pnls)
        rows.append(
            {
                "symbol": symbol,
                "trades": len(trades),
                "win_rate": win_rate(pnls),
                "pnl": float(sum(pnls)),
                "fees": float(sum(trade.fees for trade in trades)),
                "funding": float(sum(trade.funding for trade in trades)),
                "profit_factor": factor,
                "profit_factor_note": _profit_factor_note(factor, len(trades)),
                "buy_and_hold_return": symbol_buy_and_hold(
                    result.candles.get(symbol), result.equity
                ),
            }
        )
    return rows
