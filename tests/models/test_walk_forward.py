import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantum_trader.config import ModelSettings
from quantum_trader.errors import ConfigurationError, MissingDependencyError
from quantum_trader.features.higher import HIGHER_COLUMNS
from quantum_trader.features.matrix import FEATURE_COLUMNS
from quantum_trader.models.walk_forward import (
    ENSEMBLE,
    make_labels,
    timeframe_delta,
    walk_forward_predict,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "binance"
SMALL = ModelSettings(models=("linear",), horizon=4, train_window=400, retrain_every=200)
PAIR = ModelSettings(models=("lightgbm", "linear"), horizon=4, train_window=400, retrain_every=200)


def _candles(rows: int, seed: int) -> pd.DataFrame:
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


def _market(rows: int = 1200) -> dict[str, pd.DataFrame]:
    return {"BTC/USDT": _candles(rows, 1), "ETH/USDT": _candles(rows, 2)}


def test_labels_mark_rises_and_end() -> None:
    labels = make_labels([10.0, 11.0, 10.0, 10.0], 1)
    assert labels[:3].tolist() == [1.0, 0.0, 0.0]
    assert np.isnan(labels[3])


def test_timeframe_delta_units() -> None:
    assert timeframe_delta("5m") == pd.Timedelta(minutes=5)
    assert timeframe_delta("4h") == pd.Timedelta(hours=4)
    assert timeframe_delta("1d") == pd.Timedelta(days=1)


def test_timeframe_invalid_rejected() -> None:
    with pytest.raises(ConfigurationError, match="'1M'"):
        timeframe_delta("1M")


def test_first_fold_windows_and_rows() -> None:
    result = walk_forward_predict(_market(), SMALL, "1h")
    fold = result.folds[0]
    utc = "UTC"
    # test starts 400 candles after the first; calibration = round(0.2 * (400 - 4)) = 79 candles
    assert fold.test_start == pd.Timestamp("2024-01-17 16:00", tz=utc)
    assert fold.test_end == pd.Timestamp("2024-01-26 00:00", tz=utc)
    assert fold.calibration_end == pd.Timestamp("2024-01-17 12:00", tz=utc)
    assert fold.calibration_start == pd.Timestamp("2024-01-14 05:00", tz=utc)
    assert fold.train_end == pd.Timestamp("2024-01-14 01:00", tz=utc)
    assert fold.train_start == pd.Timestamp("2024-01-01 00:00", tz=utc)
    # 313 training candles minus 96 warm-up rows, per symbol
    assert fold.train_rows == 2 * 217
    assert fold.calibration_rows == 2 * 79
    assert fold.test_rows == 2 * 200


def test_fold_count_and_scores() -> None:
    result = walk_forward_predict(_market(), PAIR, "1h", threads=1)
    assert [f.index for f in result.folds] == [0, 1, 2, 3]
    assert set(result.folds[0].scores) == {"lightgbm", "linear", ENSEMBLE}
    assert result.folds[0].scores[ENSEMBLE].rows == 400
    # the last fold has 4 rows per symbol without a label
    assert result.folds[3].scores[ENSEMBLE].rows == 2 * 196
    assert set(result.pooled_scores()) == {"lightgbm", "linear", ENSEMBLE}
    assert result.pooled_scores()[ENSEMBLE].rows == 2 * 796


def test_probabilities_start_at_first_fold() -> None:
    result = walk_forward_predict(_market(), SMALL, "1h")
    for symbol in ("BTC/USDT", "ETH/USDT"):
        p = result.probability[symbol]
        assert len(p) == 1200
        assert np.isnan(p[:400]).all()
        assert np.isfinite(p[400:]).all()
        assert ((p[400:] >= 0) & (p[400:] <= 1)).all()
        assert set(result.votes[symbol]) == {"linear"}
        assert np.isfinite(result.votes[symbol]["linear"][400:]).all()


def test_walk_forward_is_deterministic() -> None:
    first = walk_forward_predict(_market(), SMALL, "1h")
    second = walk_forward_predict(_market(), SMALL, "1h")
    for symbol in first.probability:
        assert np.array_equal(first.probability[symbol], second.probability[symbol], equal_nan=True)


def test_truncation_keeps_earlier_probabilities() -> None:
    full = walk_forward_predict(_market(), SMALL, "1h")
    cut = {s: frame.iloc[:700] for s, frame in _market().items()}
    truncated = walk_forward_predict(cut, SMALL, "1h")
    for symbol in full.probability:
        before = full.probability[symbol][:700]
        assert np.array_equal(before, truncated.probability[symbol], equal_nan=True)


def test_progress_reports_each_fold() -> None:
    calls: list[tuple[int, int]] = []
    walk_forward_predict(_market(), SMALL, "1h", lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_weights_change_ensemble() -> None:
    equal = walk_forward_predict(_market(800), PAIR, "1h", threads=1)
    linear_only = walk_forward_predict(
        _market(800), PAIR, "1h", threads=1, weights={"lightgbm": 0.0, "linear": 1.0}
    )
    p_equal = equal.probability["BTC/USDT"][400:]
    p_linear = linear_only.probability["BTC/USDT"][400:]
    assert not np.array_equal(p_equal, p_linear)


def test_unknown_weight_rejected() -> None:
    with pytest.raises(ConfigurationError, match="lightgbm"):
        walk_forward_predict(_market(), SMALL, "1h", weights={"lightgbm": 1.0})


def test_too_little_history_rejected() -> None:
    with pytest.raises(ConfigurationError, match="train_window=400"):
        walk_forward_predict(_market(300), SMALL, "1h")


def test_no_candles_rejected() -> None:
    with pytest.raises(ConfigurationError, match="no candles"):
        walk_forward_predict({}, SMALL, "1h")


def _real(symbols: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return {f"{s}/USDT": pd.read_feather(DATA / f"{s}_USDT-1h.feather") for s in symbols}


@pytest.mark.slow
def test_real_data_truncation_inside_third_fold() -> None:
    settings = ModelSettings()
    candles = _real(("BTC", "ETH"))
    full = walk_forward_predict(candles, settings, "1h")
    # the third fold tests [first + 4000 + 1440, first + 4000 + 2160) candles
    cut_time = full.folds[2].test_start + pd.Timedelta(hours=300)
    cut = {s: frame[frame["date"] < cut_time] for s, frame in candles.items()}
    truncated = walk_forward_predict(cut, settings, "1h")
    for symbol, frame in cut.items():
        rows = len(frame)
        assert np.isfinite(truncated.probability[symbol][rows - 100 :]).all()
        before = full.probability[symbol][:rows]
        assert np.array_equal(before, truncated.probability[symbol], equal_nan=True)


def test_training_rows_thinned_to_cap() -> None:
    # per symbol: span 2000 - 4 = 1996, calibration round(0.2 * 1996) = 399, fit 1996 - 399 - 4
    # = 1593 candles, minus 96 warm-up rows = 1497; pooled 2994 rows, k = ceil(2994 / 1000) = 3
    settings = SMALL.model_copy(update={"train_window": 2000, "max_train_rows": 1000})
    result = walk_forward_predict(_market(2300), settings, "1h")
    assert result.folds[0].train_rows == 998


def test_summary_is_plain_json() -> None:
    result = walk_forward_predict(_market(), PAIR, "1h", threads=1)
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))
    assert set(summary["pooled"]) == {"lightgbm", "linear", ENSEMBLE}
    assert set(summary["pooled"][ENSEMBLE]) == {"rows", "auc", "brier", "hit_rate", "log_loss"}
    assert summary["pooled"][ENSEMBLE]["rows"] == 2 * 796
    assert len(summary["folds"]) == 4
    assert summary["folds"][0]["test_start"] == "2024-01-17T16:00:00+00:00"
    assert set(summary["folds"][0]["scores"]) == {"lightgbm", "linear", ENSEMBLE}
    assert summary["agreement_floor"] == 0.5
    assert summary["higher_timeframe"] is None


def _five_minute_market(rows: int) -> dict[str, pd.DataFrame]:
    market = {}
    for symbol, frame in _market(rows).items():
        dates = pd.date_range("2024-01-01", periods=rows, freq="5min", tz="UTC")
        market[symbol] = frame.assign(date=dates)
    return market


def test_five_minute_run_adds_hourly_context() -> None:
    result = walk_forward_predict(_five_minute_market(1200), SMALL, "5m")
    assert result.higher_timeframe == "1h"
    assert result.models is not None
    assert result.models.feature_columns[-3:] == HIGHER_COLUMNS
    assert np.isfinite(result.probability["BTC/USDT"][400:]).all()


def test_context_off_keeps_base_features() -> None:
    settings = SMALL.model_copy(update={"higher_timeframe": None})
    result = walk_forward_predict(_five_minute_market(1200), settings, "5m")
    assert result.higher_timeframe is None
    assert result.models is not None
    assert result.models.feature_columns == FEATURE_COLUMNS


def test_fold_models_carry_agreement_floor() -> None:
    settings = SMALL.model_copy(update={"agreement_floor": 0.25})
    result = walk_forward_predict(_market(), settings, "1h")
    assert result.models is not None
    assert result.models.agreement_floor == 0.25


def test_missing_member_package_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(MissingDependencyError, match="lightgbm"):
        walk_forward_predict(_market(), PAIR, "1h")


@pytest.mark.slow
def test_real_5m_truncation_keeps_probabilities_with_context() -> None:
    settings = ModelSettings(horizon=12, train_window=8640, retrain_every=2016)
    candles = {
        f"{s}/USDT": pd.read_feather(DATA / f"{s}_USDT-5m.feather").iloc[:20_000]
        for s in ("BTC", "ETH")
    }
    full = walk_forward_predict(candles, settings, "5m")
    assert full.higher_timeframe == "1h"
    # cut 1000 candles into the third fold, in the middle of an hour
    cut_time = full.folds[2].test_start + pd.Timedelta(minutes=5 * 1000 + 25)
    cut = {s: frame[frame["date"] < cut_time] for s, frame in candles.items()}
    truncated = walk_forward_predict(cut, settings, "5m")
    for symbol, frame in cut.items():
        rows = len(frame)
        assert np.isfinite(truncated.probability[symbol][rows - 500 :]).all()
        before = full.probability[symbol][:rows]
        assert np.array_equal(before, truncated.probability[symbol], equal_nan=True)
