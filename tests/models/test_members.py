import sys

import numpy as np
import pytest

from quantum_trader.errors import ConfigurationError, MissingDependencyError
from quantum_trader.models.members import (
    LinearMember,
    ModelMember,
    XGBoostMember,
    make_member,
    require_packages,
)


def _separable(rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(rows, 4))
    y = (X[:, 0] > 0).astype(float)
    return X, y


@pytest.mark.parametrize("name", ["lightgbm", "linear", "xgboost"])
def test_member_learns_separable_labels(name: str) -> None:
    X, y = _separable()
    member = make_member(name, seed=7, threads=1)
    member.fit(X, y)
    p = member.predict_proba(X)
    assert isinstance(member, ModelMember)
    assert member.name == name
    assert p.shape == (600,)
    assert ((p >= 0) & (p <= 1)).all()
    assert np.mean((p > 0.5) == (y == 1)) > 0.9


@pytest.mark.parametrize("name", ["lightgbm", "linear", "xgboost"])
def test_member_is_deterministic(name: str) -> None:
    X, y = _separable()
    noisy = np.where(np.random.default_rng(1).random(len(y)) < 0.3, 1 - y, y)
    first = make_member(name, seed=7, threads=1)
    second = make_member(name, seed=7, threads=1)
    first.fit(X, noisy)
    second.fit(X, noisy)
    assert np.array_equal(first.predict_proba(X), second.predict_proba(X))


def test_single_class_predicts_its_rate() -> None:
    member = make_member("lightgbm", seed=1)
    member.fit(np.ones((10, 2)), np.ones(10))
    assert member.predict_proba(np.zeros((3, 2))).tolist() == [1.0, 1.0, 1.0]


def test_linear_imputes_missing_values() -> None:
    X, y = _separable()
    X[::3, 1] = np.nan
    X[:, 3] = np.nan
    member = LinearMember(seed=1)
    member.fit(X, y)
    p = member.predict_proba(X)
    assert np.isfinite(p).all()


def test_unknown_member_rejected() -> None:
    with pytest.raises(ConfigurationError, match="'forest'"):
        make_member("forest", seed=1)


def test_predict_before_fit_rejected() -> None:
    with pytest.raises(ConfigurationError, match="before fit"):
        LinearMember(seed=1).predict_proba(np.zeros((2, 2)))


def test_missing_xgboost_names_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(MissingDependencyError, match="xgboost-cpu"):
        XGBoostMember(seed=1)


def test_missing_lightgbm_names_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(MissingDependencyError, match="'lightgbm'"):
        make_member("lightgbm", seed=1)


def test_missing_sklearn_names_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingDependencyError, match="scikit-learn"):
        make_member("linear", seed=1)


def test_require_packages_checks_each_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xgboost", None)
    require_packages(["lightgbm", "linear"])
    with pytest.raises(MissingDependencyError, match="xgboost ensemble member"):
        require_packages(["lightgbm", "xgboost", "linear"])


@pytest.mark.parametrize("name", ["lightgbm", "xgboost"])
def test_early_stopping_on_noise_stops_early(name: str) -> None:
    # labels independent of the features: the validation loss stops improving within a few
    # trees, so far fewer than the 200 configured trees are kept
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 4))
    y = rng.integers(0, 2, 2000).astype(float)
    member = make_member(name, seed=7, threads=1, early_stopping_rounds=5)
    member.fit(X[:1500], y[:1500], validation=(X[1500:], y[1500:]))
    estimator = member.estimator
    best = estimator.best_iteration_ if name == "lightgbm" else estimator.best_iteration + 1
    assert best < 100


def test_early_stopping_ignored_without_validation() -> None:
    X, y = _separable()
    member = make_member("lightgbm", seed=7, threads=1, early_stopping_rounds=5)
    member.fit(X, y)
    assert member.estimator.n_estimators_ == 200


def test_invalid_early_stopping_rejected() -> None:
    with pytest.raises(ConfigurationError, match="early_stopping_rounds=0"):
        make_member("xgboost", seed=1, early_stopping_rounds=0)


def test_linear_fast_predict_matches_pipeline() -> None:
    """The numpy path gives the pipeline's probabilities, within float32 rounding.

    The pipeline computes in the input's float32; the numpy path in float64.
    """
    rng = np.random.default_rng(3)
    features = rng.normal(size=(400, 5)).astype(np.float32)
    features[::7, 2] = np.nan
    labels = (features[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(np.int64)
    member = LinearMember(seed=1)
    member.fit(features, labels)
    expected = member.estimator.predict_proba(features)[:, 1]
    assert np.allclose(member.predict_proba(features), expected, rtol=0, atol=1e-6)
