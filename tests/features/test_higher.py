import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantum_trader.features.higher import (
    HIGHER_COLUMNS,
    build_model_features,
    higher_context,
    higher_timeframe_features,
    uses_higher_timeframe,
)
from quantum_trader.features.matrix import FEATURE_COLUMNS

BTC_5M = Path(__file__).resolve().parents[2] / "data" / "binance" / "BTC_USDT-5m.feather"
JUMP_HOUR = pd.Timestamp("2024-01-02 10:00", tz="UTC")


def _quarter_hours() -> pd.DataFrame:
    """15m candles from 2024-01-01 00:00 to 2024-01-02 12:00 UTC, close 100 up to the 10:30
    candle of 2024-01-02 and 110 from the 10:45 candle on, so the 1h candle opened 10:00 is
    the first to close at 110."""
    dates = pd.date_range("2024-01-01 00:00", "2024-01-02 12:00", freq="15min", tz="UTC")
    close = np.where(dates >= JUMP_HOUR + pd.Timedelta(minutes=45), 110.0, 100.0)
    return pd.DataFrame(
        {
            "date": dates,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.ones(len(dates)),
        }
    )


def _row(frame: pd.DataFrame, candles: pd.DataFrame, minutes: int) -> pd.Series:
    position = candles.index[candles["date"] == JUMP_HOUR + pd.Timedelta(minutes=minutes)][0]
    return frame.loc[position]


def test_hour_reaches_base_candle_closing_with_it() -> None:
    candles = _quarter_hours()
    context = higher_timeframe_features(candles, "15m", "1h")
    # Before the 10:00 hour closes, the 09:00 hour is the latest: a flat 100 for 34 hours gives
    # trend 100 / 100 - 1 = 0, RSI of a flat window 50 (0.5) and volatility 0.
    for minutes in (0, 15, 30):
        row = _row(context, candles, minutes)
        assert row["htf_trend_24"] == pytest.approx(0.0)
        assert row["htf_rsi_14"] == pytest.approx(0.5)
        assert row["htf_volatility_24"] == pytest.approx(0.0)


def test_closed_hour_values_from_10_45() -> None:
    candles = _quarter_hours()
    context = higher_timeframe_features(candles, "15m", "1h")
    # The 10:00 hour closes at 110: EMA(24) = 100 * 23/25 + 110 * 2/25 = 100.8, so the trend is
    # 110 / 100.8 - 1. Wilder's averages: gain 10 / 14 > 0, loss 0, so the RSI is 100 (1.0).
    # Returns: 23 zeros and ln(1.1); sample std = ln(1.1) / sqrt(24).
    for minutes in (45, 60):
        row = _row(context, candles, minutes)
        assert row["htf_trend_24"] == pytest.approx(110.0 / 100.8 - 1.0)
        assert row["htf_rsi_14"] == pytest.approx(1.0)
        assert row["htf_volatility_24"] == pytest.approx(math.log(1.1) / math.sqrt(24.0))


def test_rows_before_first_hour_close_are_nan() -> None:
    context = higher_timeframe_features(_quarter_hours(), "15m", "1h")
    # the 00:00 hour closes with the 00:45 candle (row 3); rows 0 to 2 see no closed hour
    assert context["htf_trend_24"].iloc[:3].isna().all()
    assert list(context.columns) == list(HIGHER_COLUMNS)


def test_uses_higher_timeframe_only_when_longer() -> None:
    assert uses_higher_timeframe("5m", "1h")
    assert uses_higher_timeframe("15m", "1h")
    assert not uses_higher_timeframe("1h", "1h")
    assert not uses_higher_timeframe("4h", "1h")
    assert not uses_higher_timeframe("5m", None)


def test_context_skipped_for_hourly_base() -> None:
    assert higher_context({"BTC/USDT": _quarter_hours()}, "1h", "1h") is None
    assert higher_context({"BTC/USDT": _quarter_hours()}, "15m", None) is None


def test_model_features_add_context_columns() -> None:
    candles = _quarter_hours()
    with_context = build_model_features(candles, "15m", "1h")
    without = build_model_features(candles, "15m", None)
    assert list(with_context.columns) == [*FEATURE_COLUMNS, *HIGHER_COLUMNS]
    assert list(without.columns) == list(FEATURE_COLUMNS)


@pytest.mark.parametrize("cut", [300, 5003, 12347, 19999])
def test_truncation_keeps_earlier_context(cut: int) -> None:
    candles = pd.read_feather(BTC_5M).iloc[:20_000]
    full = higher_timeframe_features(candles, "5m", "1h").to_numpy()
    truncated = higher_timeframe_features(candles.iloc[:cut], "5m", "1h").to_numpy()
    assert truncated.shape == (cut, len(HIGHER_COLUMNS))
    assert np.array_equal(full[:cut], truncated, equal_nan=True)


def test_real_context_is_filled_after_warm_up() -> None:
    candles = pd.read_feather(BTC_5M).iloc[:20_000]
    context = higher_timeframe_features(candles, "5m", "1h")
    # 25 closed hours (300 candles of 5m) feed the 24-return volatility
    assert context.iloc[300:].notna().all().all()
