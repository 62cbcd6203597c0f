import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantum_trader.errors import ConfigurationError
from quantum_trader.features import indicators as ind


def test_rsi_all_gains_is_100() -> None:
    result = ind.rsi([10, 11, 12, 13, 14], 2)
    assert np.isnan(result[:2]).all()
    assert result[2:].tolist() == [100.0, 100.0, 100.0]


def test_rsi_flat_series_is_50() -> None:
    result = ind.rsi([10, 10, 10, 10, 10], 2)
    assert np.isnan(result[:2]).all()
    assert result[2:].tolist() == [50.0, 50.0, 50.0]


def test_rsi_wilder_smoothing_mixed_changes() -> None:
    result = ind.rsi([10, 11, 10.5, 11.5, 11], 2)
    assert np.isnan(result[:2]).all()
    # gains/losses: first averages 0.5/0.25, then 0.75/0.125, then 0.375/0.3125
    assert round(result[2], 3) == 66.667
    assert round(result[3], 3) == 85.714
    assert round(result[4], 3) == 54.545


def test_rsi_all_losses_is_0() -> None:
    result = ind.rsi([14, 13, 12, 11], 2)
    assert result[2:].tolist() == [0.0, 0.0]


def test_true_range_first_row_is_high_minus_low() -> None:
    tr = ind.true_range([10, 11, 13], [9, 10, 10.5], [9.5, 10.8, 12])
    assert tr.tolist() == [1.0, 1.5, 2.5]


def test_atr_first_value_is_mean_of_first_true_ranges() -> None:
    result = ind.atr([10, 11, 13], [9, 10, 10.5], [9.5, 10.8, 12], 2)
    assert np.isnan(result[0])
    assert result[1] == pytest.approx(1.25)
    assert result[2] == pytest.approx(1.875)


@settings(max_examples=50, deadline=None)
@given(
    data=st.lists(st.floats(1.0, 100.0), min_size=12, max_size=40),
    cut=st.integers(5, 11),
    shift=st.floats(-50.0, 50.0),
)
def test_atr_ignores_later_rows(data: list[float], cut: int, shift: float) -> None:
    close = np.array(data)
    high, low = close * 1.01, close * 0.99
    changed = close.copy()
    changed[cut:] = np.maximum(changed[cut:] + shift, 0.5)
    before = ind.atr(high, low, close, 3)
    after = ind.atr(np.maximum(high, changed * 1.01), np.minimum(low, changed * 0.99), changed, 3)
    assert np.array_equal(before[:cut], after[:cut], equal_nan=True)


def test_ema_seeded_with_simple_mean() -> None:
    # alpha = 2/3: seed 1.5, then 2/3*3 + 1/3*1.5 = 2.5, then 2/3*4 + 1/3*2.5 = 3.5
    result = ind.ema([1.0, 2.0, 3.0, 4.0], 2)
    assert np.isnan(result[0])
    assert result[1:] == pytest.approx([1.5, 2.5, 3.5])


def test_ema_skips_leading_nan() -> None:
    result = ind.ema([np.nan, 1.0, 3.0, 3.0], 2)
    assert np.isnan(result[:2]).all()
    assert result[2] == pytest.approx(2.0)
    assert result[3] == pytest.approx(8.0 / 3.0)


def test_sma_window_mean() -> None:
    result = ind.sma([1.0, 2.0, 3.0, 4.0], 2)
    assert np.isnan(result[0])
    assert result[1:].tolist() == [1.5, 2.5, 3.5]


def test_macd_constant_prices_is_zero() -> None:
    line, signal, hist = ind.macd(np.full(6, 5.0), fast=2, slow=3, signal=2)
    assert np.isnan(line[:2]).all()
    assert line[2:].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert np.isnan(signal[:3]).all()
    assert signal[3:].tolist() == [0.0, 0.0, 0.0]
    assert hist[3:].tolist() == [0.0, 0.0, 0.0]


def test_macd_fast_not_below_slow_rejected() -> None:
    with pytest.raises(ConfigurationError, match="fast=26"):
        ind.macd(np.ones(50), fast=26, slow=12)


def test_bollinger_uses_population_std() -> None:
    mid, upper, lower = ind.bollinger([1.0, 2.0, 3.0], 3, 2.0)
    std = math.sqrt(2.0 / 3.0)
    assert mid[2] == pytest.approx(2.0)
    assert upper[2] == pytest.approx(2.0 + 2 * std)
    assert lower[2] == pytest.approx(2.0 - 2 * std)
    assert np.isnan(mid[:2]).all()


def test_log_returns_over_periods() -> None:
    result = ind.log_returns([100.0, 110.0, 121.0], 2)
    assert np.isnan(result[:2]).all()
    assert result[2] == pytest.approx(math.log(1.21))


def test_rolling_volatility_sample_std() -> None:
    # log returns ln(1.1) and ln(1/1.1): sample std = ln(1.1) * sqrt(2)
    result = ind.rolling_volatility([100.0, 110.0, 100.0], 2)
    assert np.isnan(result[:2]).all()
    assert result[2] == pytest.approx(math.log(1.1) * math.sqrt(2))


def test_volume_zscore_values() -> None:
    result = ind.volume_zscore([1.0, 2.0, 3.0, 3.0, 3.0, 3.0], 3)
    assert np.isnan(result[:2]).all()
    assert result[2] == pytest.approx(1.0 / math.sqrt(2.0 / 3.0))
    assert result[5] == 0.0


def test_invalid_period_rejected() -> None:
    with pytest.raises(ConfigurationError, match="period=0"):
        ind.rsi([1.0, 2.0], 0)
