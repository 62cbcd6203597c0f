import math

import numpy as np
import pytest

from quantum_trader.errors import ConfigurationError
from quantum_trader.models.calibration import (
    Calibrator,
    auc,
    brier,
    hit_rate,
    log_loss,
    score,
)


def test_auc_counts_ordered_pairs() -> None:
    # pairs (pos, neg): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1) yes, (0.8, 0.4) yes
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auc_one_class_is_none() -> None:
    assert auc([0.2, 0.7], [1, 1]) is None


def test_brier_mean_squared_error() -> None:
    assert brier([1.0, 0.0], [1, 1]) == pytest.approx(0.5)


def test_hit_rate_skips_even_odds() -> None:
    # 0.6 calls up (right), 0.4 calls down (wrong), 0.5 makes no call
    assert hit_rate([0.6, 0.4, 0.5], [1, 1, 0]) == pytest.approx(0.5)


def test_hit_rate_without_calls_is_none() -> None:
    assert hit_rate([0.5], [1]) is None


def test_log_loss_of_even_odds_is_ln2() -> None:
    assert log_loss([0.5, 0.5], [0, 1]) == pytest.approx(math.log(2))


def test_log_loss_certain_miss_is_finite() -> None:
    assert log_loss([0.0], [1]) == pytest.approx(-math.log(1e-15))


def test_scores_skip_nan_rows() -> None:
    result = score([np.nan, 0.8, 0.2], [1, 1, np.nan])
    assert result.rows == 1
    assert result.brier == pytest.approx(0.04)
    assert result.auc is None


def test_empty_scores_are_none() -> None:
    result = score([], [])
    assert result.rows == 0
    assert result.brier is None
    assert result.log_loss is None
    assert result.hit_rate is None


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ConfigurationError, match="2 probabilities but 1 labels"):
        brier([0.1, 0.2], [1])


def test_isotonic_clips_out_of_range() -> None:
    calibrator = Calibrator("isotonic").fit([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1])
    result = calibrator.transform([0.0, 0.15, 0.35, 0.9, np.nan])
    assert result[:4].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert np.isnan(result[4])


def test_platt_is_monotone() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 500)
    y = (rng.uniform(0, 1, 500) < p).astype(float)
    result = Calibrator("platt").fit(p, y).transform([0.2, 0.5, 0.8])
    assert result[0] < result[1] < result[2]


def test_one_class_calibration_passes_through() -> None:
    calibrator = Calibrator().fit([0.3, 0.6], [1, 1])
    assert calibrator.method == "identity"
    assert calibrator.transform([0.3, 0.7]).tolist() == [0.3, 0.7]


def test_unknown_method_rejected() -> None:
    with pytest.raises(ConfigurationError, match="'beta'"):
        Calibrator("beta")  # type: ignore[arg-type]
