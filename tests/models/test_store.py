import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantum_trader.config import ModelSettings
from quantum_trader.errors import ConfigurationError
from quantum_trader.features.matrix import FEATURE_COLUMNS, build_features
from quantum_trader.models.store import load_models, save_models
from quantum_trader.models.walk_forward import walk_forward_predict

SETTINGS = ModelSettings(models=("lightgbm", "linear"), train_window=400, retrain_every=200)


def _candles(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="1h", tz="UTC"),
            "open": close,
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
            "volume": rng.uniform(10, 20, rows),
        }
    )


def test_saved_models_round_trip(tmp_path: Path) -> None:
    candles = {"BTC/USDT": _candles(800, 1), "ETH/USDT": _candles(800, 2)}
    result = walk_forward_predict(candles, SETTINGS, "1h", threads=1)
    manifest_path = save_models(result, tmp_path / "run")
    loaded = load_models(tmp_path / "run")

    X = build_features(candles["BTC/USDT"]).to_numpy()[600:]
    assert result.models is not None
    expected, _ = result.models.predict(X)
    actual, votes = loaded.ensemble.predict(X)
    assert np.array_equal(expected, actual)
    assert set(votes) == {"lightgbm", "linear"}
    assert manifest_path == tmp_path / "run" / "model.json"


def test_manifest_records_training_facts(tmp_path: Path) -> None:
    candles = {"BTC/USDT": _candles(800, 1)}
    result = walk_forward_predict(candles, SETTINGS, "1h", threads=1)
    save_models(result, tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    assert manifest["feature_columns"] == list(FEATURE_COLUMNS)
    assert manifest["horizon"] == 4
    assert manifest["purge"] == 4
    # the last of two folds tests from candle 600 (2024-01-26 00:00 UTC)
    assert manifest["fold"]["test_start"] == "2024-01-26T00:00:00+00:00"
    assert manifest["fold"]["train_start"] == "2024-01-09T08:00:00+00:00"
    assert len(manifest["folds"]) == 2
    assert manifest["versions"]["lightgbm"] is not None
    assert (tmp_path / "member_lightgbm.joblib").exists()
    assert (tmp_path / "calibrator_linear.joblib").exists()


def test_load_without_manifest_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"model\.json"):
        load_models(tmp_path)


def test_manifest_records_agreement_and_context(tmp_path: Path) -> None:
    settings = SETTINGS.model_copy(update={"agreement_floor": 0.3})
    result = walk_forward_predict({"BTC/USDT": _candles(800, 1)}, settings, "1h", threads=1)
    save_models(result, tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    assert manifest["agreement_floor"] == 0.3
    assert manifest["higher_timeframe"] is None  # 1h candles need no 1h context
    assert load_models(tmp_path).ensemble.agreement_floor == 0.3


def test_manifest_without_agreement_loads_plain_mean(tmp_path: Path) -> None:
    result = walk_forward_predict({"BTC/USDT": _candles(800, 1)}, SETTINGS, "1h", threads=1)
    path = save_models(result, tmp_path)
    manifest = json.loads(path.read_text())
    del manifest["agreement_floor"]
    path.write_text(json.dumps(manifest))
    assert load_models(tmp_path).ensemble.agreement_floor == 1.0


def test_feature_matrix_matches_training_columns(tmp_path: Path) -> None:
    candles = {"BTC/USDT": _candles(800, 1)}
    result = walk_forward_predict(candles, SETTINGS, "1h", threads=1)
    save_models(result, tmp_path)
    stored = load_models(tmp_path)
    matrix = stored.feature_matrix(candles["BTC/USDT"])
    assert matrix.shape == (800, len(FEATURE_COLUMNS))
    expected, _ = stored.ensemble.predict(build_features(candles["BTC/USDT"]).to_numpy())
    actual, _ = stored.ensemble.predict(matrix)
    assert np.array_equal(expected, actual, equal_nan=True)
