"""Performance metrics: hand-derived values, undefined cases and properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantum_trader.backtest.metrics import (
    Metric,
    cagr,
    calmar_ratio,
    compute_metrics,
    daily_returns,
    expectancy,
    exposure,
    max_drawdown,
    metrics_to_dict,
    per_period_rate,
    per_symbol_table,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
)
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.core.types import ExitReason, PositionSide, Trade
from quantum_trader.errors import ConfigurationError

START = pd.Timestamp("2024-01-01", tz="UTC")
DAILY_RETURNS = [0.01, -0.005, 0.02, 0.0, -0.01]


def make_trade(
    symbol: str,
    pnl: float,
    entry: pd.Timestamp,
    exit_: pd.Timestamp,
    side: PositionSide = PositionSide.LONG,
    fees: float = 0.0,
) -> Trade:
    return Trade(
        symbol=symbol,
        side=side,
        entry_time=entry,
        entry_price=100.0,
        exit_time=exit_,
        exit_price=100.0 + pnl,
        quantity=1.0,
        fees=fees,
        funding=0.0,
        pnl=pnl,
        pnl_ratio=pnl / 100.0,
        leverage=1.0,
        exit_reason=ExitReason.EXIT_SIGNAL,
    )


def make_result(
    values: list[float],
    freq: str = "1D",
    trades: list[Trade] | None = None,
    initial_capital: float = 100.0,
    candles: dict[str, pd.DataFrame] | None = None,
) -> BacktestResult:
    index = pd.date_range(START, periods=len(values), freq=freq)
    return BacktestResult(
        run_id="test",
        strategy="test",
        timeframe=freq,
        market_type="spot",
        symbols=["BTC/USDT", "ETH/USDT"],
        initial_capital=initial_capital,
        equity=pd.Series(values, index=index, dtype=float),
        benchmark_equity=pd.Series(initial_capital * 1.5, index=index),
        orders=[],
        fills=[],
        trades=trades or [],
        decisions=[],
        candles=candles or {},
        fees_paid=3.0,
        funding_paid=-1.0,
    )


def by_name(metrics: list[Metric]) -> dict[str, Metric]:
    return {metric.name: metric for metric in metrics}


def test_profit_factor_is_gross_profit_over_gross_loss() -> None:
    assert profit_factor([10, -5, 20, -10]) == 2.0


def test_profit_factor_without_losses_is_infinite() -> None:
    assert profit_factor([10, 5]) == math.inf


def test_profit_factor_without_trades_is_undefined() -> None:
    assert profit_factor([]) is None


def test_profit_factor_of_only_losers_is_zero() -> None:
    assert profit_factor([-1, -2]) == 0.0


def test_profit_factor_of_zero_pnls_is_undefined() -> None:
    assert profit_factor([0.0, 0.0]) is None


def test_profit_factor_rejects_nan_pnl() -> None:
    with pytest.raises(ConfigurationError, match="nan"):
        profit_factor([1.0, float("nan")])


def test_sharpe_daily_crypto_calendar() -> None:
    # mean 0.003, sample std 0.0120416, 0.249136 * sqrt(365) = 4.7597
    assert round(sharpe_ratio(DAILY_RETURNS) or 0.0, 4) == 4.7597


def test_sharpe_converts_annual_risk_free_per_period() -> None:
    # 1% a year is 1.01 ** (1 / 365) - 1 = 2.7262e-5 a day, not 0.01 a day.
    assert round(sharpe_ratio(DAILY_RETURNS, risk_free_annual=0.01) or 0.0, 4) == 4.7165


def test_per_period_rate_compounds() -> None:
    assert per_period_rate(0.01, 365) == pytest.approx(2.7262e-5, rel=1e-4)


def test_sharpe_constant_returns_is_undefined() -> None:
    assert sharpe_ratio([0.001] * 250) is None


def test_sharpe_needs_two_returns() -> None:
    assert sharpe_ratio([0.01]) is None


@given(
    st.floats(-0.5, 0.5, allow_subnormal=False),
    st.integers(min_value=2, max_value=400),
)
def test_sharpe_of_any_constant_series_is_undefined(value: float, count: int) -> None:
    assert sharpe_ratio([value] * count) is None


def test_sortino_downside_over_all_periods() -> None:
    # downside deviation sqrt((0.005**2 + 0.01**2) / 5) = 0.005, 0.003 / 0.005 * sqrt(365)
    assert round(sortino_ratio(DAILY_RETURNS) or 0.0, 4) == 11.4630


def test_sortino_without_negative_returns_is_infinite() -> None:
    assert sortino_ratio([0.01, 0.02, 0.0]) == math.inf


def test_sortino_constant_returns_is_undefined() -> None:
    assert sortino_ratio([0.002] * 30) is None


def test_max_drawdown_unrecovered() -> None:
    equity = pd.Series(
        [100, 110, 99, 105, 120, 90, 95.0], index=pd.date_range(START, periods=7, freq="D")
    )
    info = max_drawdown(equity)
    assert info is not None
    assert info.depth == pytest.approx(0.25)
    assert info.peak_time == START + pd.Timedelta(days=4)
    assert info.trough_time == START + pd.Timedelta(days=5)
    assert info.recovery_time is None
    assert info.duration == pd.Timedelta(days=2)


def test_max_drawdown_recovery_from_last_peak() -> None:
    equity = pd.Series([100, 100, 80, 100.0], index=pd.date_range(START, periods=4, freq="h"))
    info = max_drawdown(equity)
    assert info is not None
    assert info.depth == pytest.approx(0.2)
    assert info.peak_time == START + pd.Timedelta(hours=1)
    assert info.recovery_time == START + pd.Timedelta(hours=3)
    assert info.duration == pd.Timedelta(hours=2)


def test_max_drawdown_of_rising_equity_is_zero() -> None:
    info = max_drawdown(pd.Series([1.0, 2.0, 3.0], index=pd.date_range(START, periods=3)))
    assert info is not None
    assert info.depth == 0.0
    assert info.recovery_time is None


def test_max_drawdown_of_empty_curve_is_undefined() -> None:
    assert max_drawdown(pd.Series([], dtype=float)) is None


@given(st.lists(st.floats(0.01, 1e9, allow_subnormal=False), min_size=1, max_size=200))
def test_max_drawdown_in_unit_interval(values: list[float]) -> None:
    info = max_drawdown(pd.Series(values, index=pd.date_range(START, periods=len(values))))
    assert info is not None
    assert 0.0 <= info.depth <= 1.0


@given(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), max_size=100))
def test_profit_factor_never_negative(pnls: list[float]) -> None:
    value = profit_factor(pnls)
    assert value is None or value == math.inf or value >= 0.0


def test_cagr_two_years() -> None:
    # 730 daily candles span 730 days from the first open to the last close: 1.21 ** 0.5 = 1.1
    values = [100.0] * 729 + [121.0]
    equity = pd.Series(values, index=pd.date_range(START, periods=730, freq="D"))
    assert cagr(equity, initial_capital=100.0) == pytest.approx(0.10)


def test_cagr_of_short_run_is_undefined() -> None:
    equity = pd.Series([100.0, 150.0], index=pd.date_range(START, periods=2, freq="D"))
    assert cagr(equity, initial_capital=100.0) is None


def test_cagr_of_wiped_out_account_is_minus_one() -> None:
    equity = pd.Series([50.0] * 39 + [0.0], index=pd.date_range(START, periods=40, freq="D"))
    assert cagr(equity, initial_capital=100.0) == -1.0


def test_calmar_is_cagr_over_drawdown() -> None:
    assert calmar_ratio(0.1, 0.25) == pytest.approx(0.4)


def test_calmar_without_drawdown_is_undefined() -> None:
    assert calmar_ratio(0.1, 0.0) is None


def test_daily_returns_take_last_value_per_utc_day() -> None:
    values = [150.0, 50.0, 110.0, 70.0, 130.0, 99.0]
    index = pd.date_range(START + pd.Timedelta(hours=20), periods=6, freq="2h")
    returns = daily_returns(pd.Series(values, index=index), initial_capital=100.0)
    # 20:00, 22:00 fall on day 1 (last 50), 00:00 .. 06:00 on day 2 (last 99)
    assert returns.tolist() == pytest.approx([-0.5, 0.98])


def test_win_rate_counts_positive_pnls() -> None:
    assert win_rate([10, -5, 20, -10, 0]) == pytest.approx(0.4)


def test_expectancy_is_mean_pnl() -> None:
    assert expectancy([10, -5, 20, -10]) == pytest.approx(3.75)


def test_exposure_counts_candles_with_an_open_position() -> None:
    index = pd.date_range(START, periods=10, freq="h")
    hour = pd.Timedelta(hours=1)
    trades = [
        make_trade("BTC/USDT", 1.0, START + 2 * hour, START + 5 * hour),
        make_trade("ETH/USDT", 1.0, START + 3 * hour, START + 4 * hour),
        make_trade("BTC/USDT", 1.0, START + 8 * hour, START + 8 * hour),
    ]
    # candles 2, 3, 4 from the first two (overlapping) trades and candle 8 from the third
    assert exposure(trades, index) == pytest.approx(0.4)


def test_metric_json_writes_infinity_as_null_with_note() -> None:
    metric = Metric("profit_factor", math.inf, "inf", "no losing trades")
    encoded = json.loads(json.dumps(metric.to_json(), allow_nan=False))
    assert encoded["value"] is None
    assert encoded["note"] == "infinite: no losing trades"


def test_compute_metrics_sharpe_uses_daily_closes() -> None:
    day_ends = [101.0, 100.495, 102.5049, 102.5049, 101.479851]
    # Hourly equity with wild intraday values; only each day's last hour counts.
    values = [v for end in day_ends for v in [*(50.0 + i for i in range(23)), end]]
    metrics = by_name(compute_metrics(make_result(values, freq="h")))
    assert round(metrics["sharpe_ratio"].value or 0.0, 4) == 4.7597


def test_compute_metrics_without_trades() -> None:
    metrics = by_name(compute_metrics(make_result([100.0, 101.0, 102.0])))
    assert metrics["trade_count"].value == 0
    assert metrics["win_rate"].value is None
    assert metrics["win_rate"].note == "no trades"
    assert metrics["profit_factor"].value is None
    assert metrics["profit_factor"].note == "no trades"
    assert metrics["exposure"].value == 0.0


def test_compute_metrics_only_winners() -> None:
    trades = [make_trade("BTC/USDT", 5.0, START, START + pd.Timedelta(days=1))]
    metrics = by_name(compute_metrics(make_result([100.0, 105.0], trades=trades)))
    encoded = json.loads(json.dumps(metrics_to_dict(list(metrics.values())), allow_nan=False))
    assert metrics["profit_factor"].value == math.inf
    assert metrics["profit_factor"].note == "no losing trades"
    assert encoded["profit_factor"]["value"] is None
    assert encoded["profit_factor"]["note"] == "infinite: no losing trades"


def test_compute_metrics_only_losers() -> None:
    day = pd.Timedelta(days=1)
    trades = [
        make_trade("BTC/USDT", -2.0, START, START + day),
        make_trade("BTC/USDT", -3.0, START + day, START + 2 * day),
    ]
    metrics = by_name(compute_metrics(make_result([98.0, 95.0, 95.0], trades=trades)))
    assert metrics["profit_factor"].value == 0.0
    assert metrics["win_rate"].value == 0.0
    assert metrics["expectancy"].value == pytest.approx(-2.5)
    assert metrics["best_trade_pnl"].value == -2.0
    assert metrics["worst_trade_pnl"].value == -3.0
    assert metrics["average_trade_duration_hours"].value == pytest.approx(24.0)
    assert metrics["exposure"].value == pytest.approx(2 / 3)


def test_compute_metrics_constant_equity() -> None:
    metrics = by_name(compute_metrics(make_result([100.0] * 40)))
    assert metrics["total_return"].value == 0.0
    assert metrics["cagr"].value == 0.0
    assert metrics["sharpe_ratio"].value is None
    assert metrics["sharpe_ratio"].note == "zero volatility"
    assert metrics["sortino_ratio"].note == "zero volatility"
    assert metrics["max_drawdown"].value == 0.0
    assert metrics["calmar_ratio"].value is None
    assert metrics["calmar_ratio"].note == "no drawdown"


def test_compute_metrics_three_candle_run() -> None:
    metrics = by_name(compute_metrics(make_result([100.0, 99.0, 101.0], freq="5min")))
    assert metrics["total_return"].value == pytest.approx(0.01)
    assert metrics["buy_and_hold_return"].value == pytest.approx(0.5)
    assert metrics["sharpe_ratio"].value is None
    assert metrics["sharpe_ratio"].note == "run shorter than one day"
    assert metrics["cagr"].value is None
    assert (metrics["cagr"].note or "").startswith("run shorter than 30 days")
    assert metrics["max_drawdown"].value == pytest.approx(0.01)
    assert metrics["fees_paid"].value == 3.0
    assert metrics["funding_paid"].value == -1.0


def test_compute_metrics_empty_equity_is_labelled() -> None:
    metrics = compute_metrics(make_result([]))
    encoded = json.dumps(metrics_to_dict(metrics), allow_nan=False)
    assert by_name(metrics)["total_return"].note == "empty equity curve"
    assert by_name(metrics)["max_drawdown"].note == "empty equity curve"
    assert "NaN" not in encoded


def test_per_symbol_table_rows() -> None:
    day = pd.Timedelta(days=1)
    trades = [
        make_trade("BTC/USDT", 10.0, START, START + day, fees=1.0),
        make_trade("BTC/USDT", -5.0, START + day, START + 2 * day, fees=0.5),
        make_trade("ETH/USDT", 4.0, START, START + day, PositionSide.SHORT),
    ]
    frame = pd.DataFrame(
        {
            "date": pd.date_range(START - day, periods=4, freq="D"),
            "open": [1.0, 100.0, 105.0, 110.0],
            "close": [2.0, 104.0, 108.0, 120.0],
        }
    )
    result = make_result([100.0, 105.0, 109.0], trades=trades, candles={"BTC/USDT": frame})
    btc, eth = per_symbol_table(result)
    assert btc["trades"] == 2
    assert btc["win_rate"] == 0.5
    assert btc["pnl"] == 5.0
    assert btc["fees"] == 1.5
    assert btc["profit_factor"] == 2.0
    # The warm-up candle before the run is left out: 120 / 100 - 1
    assert btc["buy_and_hold_return"] == pytest.approx(0.2)
    assert eth["profit_factor"] == math.inf
    assert eth["profit_factor_note"] == "no losing trades"
    assert eth["buy_and_hold_return"] is None


def test_drawdown_rejects_non_positive_start() -> None:
    with pytest.raises(ConfigurationError, match="start positive"):
        max_drawdown(pd.Series([0.0, 1.0], index=pd.date_range(START, periods=2)))


def test_sharpe_rejects_infinite_return() -> None:
    with pytest.raises(ConfigurationError, match="inf"):
        sharpe_ratio(np.array([0.01, np.inf]))
