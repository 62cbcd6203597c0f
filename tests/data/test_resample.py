import numpy as np
import pandas as pd
import pytest

from quantum_trader.data.resample import merge_higher_timeframe, resample_candles
from quantum_trader.errors import ConfigurationError, DataError


def candles(start: str, freq: str, closes: list[float]) -> pd.DataFrame:
    """Candles with open = close - 1, high = close + 1, low = close - 2, volume 1."""
    close = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "date": pd.date_range(start, periods=len(close), freq=freq, tz="UTC"),
            "open": close - 1,
            "high": close + 1,
            "low": close - 2,
            "close": close,
            "volume": np.ones(len(close)),
            "synthetic": np.zeros(len(close), dtype=bool),
        }
    )


def test_5m_to_15m_aggregates_bucket() -> None:
    base = candles("2024-01-01 00:00", "5min", [10, 12, 11, 20, 21, 22])
    base.loc[1, "synthetic"] = True
    result = resample_candles(base, "5m", "15m")
    assert result["date"].tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 00:15", tz="UTC"),
    ]
    first = result.iloc[0]
    assert first["open"] == 9  # open of 00:00
    assert first["high"] == 13  # max of 11, 13, 12
    assert first["low"] == 8  # min of 8, 10, 9
    assert first["close"] == 11  # close of 00:10
    assert first["volume"] == 3
    assert bool(first["synthetic"]) is False  # only one of three source candles is synthetic
    assert result.index.tolist() == [0, 1]


def test_incomplete_final_bucket_dropped() -> None:
    base = candles("2024-01-01 00:00", "5min", [1, 2, 3, 4, 5])
    result = resample_candles(base, "5m", "15m")
    assert len(result) == 1
    assert result["date"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")


def test_partial_first_bucket_dropped() -> None:
    base = candles("2024-01-01 00:05", "5min", [1, 2, 3, 4, 5])
    result = resample_candles(base, "5m", "15m")
    assert result["date"].tolist() == [pd.Timestamp("2024-01-01 00:15", tz="UTC")]


def test_bucket_with_missing_candle_dropped() -> None:
    base = candles("2024-01-01 00:00", "5min", [1, 2, 3, 4, 5, 6]).drop(index=4)
    result = resample_candles(base.reset_index(drop=True), "5m", "15m")
    assert result["date"].tolist() == [pd.Timestamp("2024-01-01 00:00", tz="UTC")]


def test_synthetic_bucket_when_all_synthetic() -> None:
    base = candles("2024-01-01 00:00", "5min", [1, 1, 1])
    base["synthetic"] = True
    assert bool(resample_candles(base, "5m", "15m")["synthetic"].iloc[0]) is True


def test_weekly_buckets_open_monday() -> None:
    base = candles("2024-01-01", "1D", list(range(1, 15)))  # 2024-01-01 is a Monday
    result = resample_candles(base, "1d", "1w")
    assert result["date"].tolist() == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-08", tz="UTC"),
    ]
    assert result["close"].tolist() == [7, 14]


def test_truncation_never_changes_earlier_buckets() -> None:
    base = candles("2024-01-01 00:00", "5min", list(range(1, 40)))
    full = resample_candles(base, "5m", "1h")
    for cut in range(1, len(base)):
        partial = resample_candles(base.iloc[:cut], "5m", "1h")
        pd.testing.assert_frame_equal(partial, full.iloc[: len(partial)])


def test_target_not_multiple_rejected() -> None:
    base = candles("2024-01-01", "1h", [1, 2])
    with pytest.raises(ConfigurationError, match="whole multiple"):
        resample_candles(base, "1h", "30m")


def test_unsorted_input_rejected() -> None:
    base = candles("2024-01-01", "5min", [1, 2, 3]).iloc[::-1]
    with pytest.raises(DataError, match="validate_candles"):
        resample_candles(base, "5m", "15m")


def test_hour_close_seen_from_10_45_candle() -> None:
    W, X = 50.0, 60.0
    base = candles("2024-01-01 10:00", "15min", [1, 2, 3, 4, 5])
    higher = candles("2024-01-01 09:00", "1h", [W, X])
    merged = merge_higher_timeframe(base, "15m", higher, "1h", ["close"], "h1_")
    assert merged["h1_close"].tolist() == [W, W, W, X, X]
    assert merged["close"].tolist() == [1, 2, 3, 4, 5]


def test_merge_before_first_close_is_nan() -> None:
    base = candles("2024-01-01 09:00", "15min", [1, 2, 3, 4])
    higher = candles("2024-01-01 09:00", "1h", [7])
    merged = merge_higher_timeframe(base, "15m", higher, "1h", ["close", "high"], "h_")
    assert merged["h_close"].isna().tolist() == [True, True, True, False]
    assert merged["h_high"].iloc[3] == 8


def test_merge_resampled_matches_hand_values() -> None:
    base = candles("2024-01-01 00:00", "15min", [1, 2, 3, 4, 5, 6, 7, 8])
    hourly = resample_candles(base, "15m", "1h")
    merged = merge_higher_timeframe(base, "15m", hourly, "1h", ["close"], "h1_")
    assert merged["h1_close"].iloc[:3].isna().tolist() == [True, True, True]
    assert merged["h1_close"].tolist()[3:] == [4, 4, 4, 4, 8]


def test_merge_unknown_column_rejected() -> None:
    base = candles("2024-01-01", "15min", [1])
    higher = candles("2024-01-01", "1h", [1])
    with pytest.raises(ConfigurationError, match="rsi"):
        merge_higher_timeframe(base, "15m", higher, "1h", ["rsi"], "h1_")


def test_merge_lower_timeframe_rejected() -> None:
    base = candles("2024-01-01", "1h", [1])
    lower = candles("2024-01-01", "15min", [1])
    with pytest.raises(ConfigurationError, match="shorter"):
        merge_higher_timeframe(base, "1h", lower, "15m", ["close"], "m15_")
