from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantum_trader.errors import DataError
from quantum_trader.features.matrix import FEATURE_COLUMNS, build_features

BTC_1H = Path(__file__).resolve().parents[2] / "data" / "binance" / "BTC_USDT-1h.feather"


def _candles(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="1h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.uniform(10, 20, rows),
            "synthetic": np.zeros(rows, dtype=bool),
        }
    )


def test_features_shape_dtype_and_order() -> None:
    candles = _candles(300)
    candles.index = pd.RangeIndex(1000, 1300)
    features = build_features(candles)
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert len(features) == 300
    assert features.index.equals(candles.index)
    assert set(features.dtypes) == {np.dtype("float32")}


def test_features_complete_after_warm_up() -> None:
    features = build_features(_candles(300))
    # the slowest inputs are the 96-candle EMA and the 96-return volatility (row 96)
    assert features.iloc[96:].notna().all().all()
    assert features["volatility_96"].isna().iloc[95]
    assert features["log_return_1"].isna().iloc[0]


def test_features_are_scale_free() -> None:
    candles = _candles(300)
    scaled = candles.copy()
    for column in ("open", "high", "low", "close", "volume"):
        scaled[column] = scaled[column] * 1000.0
    base = build_features(candles).to_numpy()
    other = build_features(scaled).to_numpy()
    assert np.allclose(base, other, rtol=1e-4, atol=1e-5, equal_nan=True)


def test_hour_features_encode_time_of_day() -> None:
    features = build_features(_candles(30))
    six_am = features.iloc[6]
    assert six_am["hour_sin"] == pytest.approx(1.0)
    assert six_am["hour_cos"] == pytest.approx(0.0, abs=1e-6)
    midnight = features.iloc[24]
    assert midnight["hour_sin"] == pytest.approx(0.0, abs=1e-6)
    assert midnight["hour_cos"] == pytest.approx(1.0)


def test_higher_timeframe_columns_get_prefix() -> None:
    candles = _candles(50)
    higher = pd.DataFrame({"higher_trend": np.linspace(-1, 1, 50), "htf_close": np.ones(50)})
    features = build_features(candles, higher)
    assert list(features.columns[-2:]) == ["htf_higher_trend", "htf_close"]
    assert features["htf_higher_trend"].iloc[-1] == pytest.approx(1.0)
    assert list(features.columns[: len(FEATURE_COLUMNS)]) == list(FEATURE_COLUMNS)


def test_higher_timeframe_length_mismatch_rejected() -> None:
    with pytest.raises(DataError, match="49 rows"):
        build_features(_candles(50), pd.DataFrame({"trend": np.zeros(49)}))


def test_missing_column_rejected() -> None:
    with pytest.raises(DataError, match="volume"):
        build_features(_candles(20).drop(columns=["volume"]))


@pytest.mark.parametrize("cut", [150, 2000, 9001])
def test_truncation_keeps_earlier_features(cut: int) -> None:
    candles = pd.read_feather(BTC_1H)
    full = build_features(candles).to_numpy()
    truncated = build_features(candles.iloc[:cut]).to_numpy()
    assert truncated.shape[0] == cut
    assert np.array_equal(full[:cut], truncated, equal_nan=True)
