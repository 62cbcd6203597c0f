"""Causal market statistics: rolling volume, volatility, ATR ratio, trend and efficiency."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.market_stats import (
    compute_market_stats,
    efficiency_ratio,
    snapshot,
)


def make_candles(
    close: list[float] | np.ndarray, half_range: float = 0.5, volume: float = 1.0
) -> pd.DataFrame:
    prices = np.asarray(close, dtype=np.float64)
    return pd.DataFrame(
        {
            "open": prices,
            "high": prices + half_range,
            "low": prices - half_range,
            "close": prices,
            "volume": np.full(len(prices), volume),
        }
    )


def ramp(rows: int, step: float) -> pd.DataFrame:
    """Closes 100, 100 + step, ... with high/low 0.5 away from the close."""
    return make_candles(100.0 + step * np.arange(rows))


def test_quote_volume_sums_close_times_volume() -> None:
    # close x volume = [10, 22, 36, 52], and the sums over 2 candles are [-, 32, 58, 88].
    frame = make_candles([10.0, 11.0, 12.0, 13.0])
    frame["volume"] = [1.0, 2.0, 3.0, 4.0]
    stats = compute_market_stats(frame, 2, fast=2, slow=3, atr_period=2)
    assert math.isnan(stats.quote_volume[0])
    assert stats.quote_volume[1] == pytest.approx(32.0)
    assert stats.quote_volume[2] == pytest.approx(58.0)
    assert stats.quote_volume[3] == pytest.approx(88.0)


def test_volatility_is_sample_std_of_log_returns() -> None:
    # Returns ln(1.1) = 0.0953102 and ln(0.9) = -0.1053605. The sample std of two values is
    # |a - b| / sqrt(2) = 0.2006707 x 0.7071068 = 0.1418956. Row 2 is the first with 2 returns.
    frame = make_candles([100.0, 110.0, 99.0, 108.9])
    stats = compute_market_stats(frame, 2, fast=2, slow=3, atr_period=2)
    assert math.isnan(stats.volatility[0])
    assert math.isnan(stats.volatility[1])
    assert stats.volatility[2] == pytest.approx(0.1418956, rel=1e-6)
    assert stats.volatility[3] == pytest.approx(0.1418956, rel=1e-6)


def test_efficiency_ratio_hand_values() -> None:
    # Closes 10, 11, 10, 12, 13 over 2 changes: row 2 |10-10|/(1+1) = 0,
    # row 3 |12-11|/(1+2) = 1/3, row 4 |13-10|/(2+1) = 1.
    values = efficiency_ratio([10.0, 11.0, 10.0, 12.0, 13.0], 2)
    assert math.isnan(values[0])
    assert math.isnan(values[1])
    assert values[2] == pytest.approx(0.0)
    assert values[3] == pytest.approx(1.0 / 3.0)
    assert values[4] == pytest.approx(1.0)


def test_efficiency_ratio_of_flat_window_is_zero() -> None:
    values = efficiency_ratio([5.0, 5.0, 5.0], 2)
    assert values[2] == 0.0


def test_atr_ratio_of_constant_range() -> None:
    # Every true range is 2 (high - low, and 1 from the previous close), so ATR(14) = 2 from
    # row 13 and the ratio is 2 / 100 = 0.02.
    frame = make_candles(np.full(30, 100.0), half_range=1.0)
    stats = compute_market_stats(frame, 5)
    assert math.isnan(stats.atr_ratio[12])
    assert stats.atr_ratio[13] == pytest.approx(0.02)
    assert stats.atr_ratio[29] == pytest.approx(0.02)


def test_trend_strength_of_rising_ramp() -> None:
    # An EMA seeded with the SMA tracks a linear ramp exactly (period - 1) / 2 steps behind,
    # so EMA20 - EMA50 = 24.5 - 9.5 = 15 from row 49. True ranges are 1 in row 0 and 1.5 after,
    # because each high is 0.5 above a close 1 above the previous one. By row 299 the ATR is 1.5
    # to within 0.036 x (13/14)^286, about 1e-10. Strength 15 / 1.5 = 10, ATR ratio 1.5 / 399.
    stats = compute_market_stats(ramp(300, 1.0), 20)
    assert math.isnan(stats.trend_strength[48])
    assert stats.trend_direction[48] == 0
    assert stats.trend_strength[299] == pytest.approx(10.0, rel=1e-8)
    assert stats.trend_direction[299] == 1
    assert stats.atr_ratio[299] == pytest.approx(1.5 / 399.0, rel=1e-8)


def test_trend_direction_of_falling_ramp() -> None:
    stats = compute_market_stats(ramp(300, -0.1), 20)
    assert stats.trend_direction[299] == -1
    assert stats.trend_strength[299] > 0


def test_flat_prices_have_zero_trend_strength() -> None:
    # A flat market has ATR 0 and an EMA gap of 0, and its strength is 0, not NaN.
    frame = make_candles(np.full(60, 100.0), half_range=0.0)
    stats = compute_market_stats(frame, 5)
    assert stats.trend_strength[59] == 0.0
    assert stats.trend_direction[59] == 0
    assert stats.efficiency[59] == 0.0


def test_history_counts_rows() -> None:
    stats = compute_market_stats(ramp(4, 1.0), 2, fast=2, slow=3, atr_period=2)
    assert stats.history.tolist() == [1, 2, 3, 4]


def test_truncation_keeps_earlier_values() -> None:
    rng = np.random.default_rng(11)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 400)))
    frame = make_candles(close, half_range=0.3)
    frame["volume"] = rng.uniform(1.0, 5.0, 400)
    full = compute_market_stats(frame, 30)
    cut = compute_market_stats(frame.iloc[:250], 30)
    for name in ("quote_volume", "volatility", "atr_ratio", "trend_strength", "efficiency"):
        np.testing.assert_allclose(
            getattr(cut, name), getattr(full, name)[:250], rtol=1e-12, equal_nan=True
        )
    np.testing.assert_array_equal(cut.trend_direction, full.trend_direction[:250])


def test_snapshot_reads_one_row() -> None:
    stats = compute_market_stats(ramp(300, 1.0), 20)
    shot = snapshot(stats, 299, "SOL/USDT", 0.01, spread=0.0004)
    assert shot.symbol == "SOL/USDT"
    assert shot.price == 399.0
    assert shot.tick_size == 0.01
    # 20 candles of close x 1: closes 380..399 sum to 20 x 389.5 = 7790.
    assert shot.quote_volume == pytest.approx(7790.0)
    assert shot.history == 300
    assert shot.spread == 0.0004
    assert shot.trend_direction == 1
    assert shot.efficiency == pytest.approx(1.0)


def test_snapshot_during_warm_up_has_unknown_volatility() -> None:
    stats = compute_market_stats(ramp(300, 1.0), 20)
    shot = snapshot(stats, 5, "SOL/USDT", 0.01)
    assert shot.volatility is None
    assert shot.quote_volume is not None
    assert math.isnan(shot.quote_volume)
    assert shot.spread is None


def test_snapshot_row_outside_raises() -> None:
    stats = compute_market_stats(ramp(10, 1.0), 2, fast=2, slow=3, atr_period=2)
    with pytest.raises(IndexError, match="row 10"):
        snapshot(stats, 10, "SOL/USDT", 0.01)


def test_missing_column_is_rejected() -> None:
    frame = ramp(10, 1.0).drop(columns=["volume"])
    with pytest.raises(ConfigurationError, match="volume"):
        compute_market_stats(frame, 2)


def test_fast_period_must_be_below_slow() -> None:
    with pytest.raises(ConfigurationError, match="fast=50"):
        compute_market_stats(ramp(10, 1.0), 2, fast=50, slow=20)


def test_window_below_two_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="window=1"):
        compute_market_stats(ramp(10, 1.0), 1)
