import sys

import numpy as np
import pytest

from quantum_trader.errors import ConfigurationError, MissingDependencyError
from quantum_trader.models.members import (
    LinearMember,
    ModelMember,
    XGBoostMember,
    make_member,
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
