import numpy as np
import numpy.typing as npt
import pytest

from quantum_trader.errors import ConfigurationError
from quantum_trader.models.calibration import Calibrator
from quantum_trader.models.ensemble import FittedEnsemble, agreement_factor, combine_votes

EQUAL = {"lightgbm": 1.0, "xgboost": 1.0, "linear": 1.0}


def _votes(*values: float) -> dict[str, np.ndarray]:
    names = ("lightgbm", "xgboost", "linear")
    return {name: np.array([value]) for name, value in zip(names, values, strict=False)}


def test_unanimous_vote_keeps_mean() -> None:
    # all three vote up: agreement 1, consensus 1, factor 1; p = (0.7 + 0.6 + 0.65) / 3
    p = combine_votes(_votes(0.7, 0.6, 0.65), EQUAL, agreement_floor=0.5)
    assert p[0] == pytest.approx(0.65)


def test_two_to_one_split_shrinks_edge() -> None:
    # p = 1.65 / 3 = 0.55; agreement 2/3, consensus 1/3, factor 0.5 + 0.5 / 3 = 2/3
    # p' = 0.5 + 0.05 * 2/3 = 0.533333...
    p = combine_votes(_votes(0.7, 0.6, 0.35), EQUAL, agreement_floor=0.5)
    assert p[0] == pytest.approx(0.5 + 0.05 * 2.0 / 3.0)


def test_split_with_unequal_weights() -> None:
    # p = (2 * 0.7 + 0.6 + 0.35) / 4 = 0.5875; up weight 3 of 4: agreement 0.75,
    # consensus 0.5, factor 0.75; p' = 0.5 + 0.0875 * 0.75 = 0.565625
    weights = {"lightgbm": 2.0, "xgboost": 1.0, "linear": 1.0}
    p = combine_votes(_votes(0.7, 0.6, 0.35), weights, agreement_floor=0.5)
    assert p[0] == pytest.approx(0.565625)


def test_floor_one_is_weighted_mean() -> None:
    p = combine_votes(_votes(0.7, 0.6, 0.35), EQUAL, agreement_floor=1.0)
    assert p[0] == pytest.approx(0.55)


def test_floor_zero_even_split_gives_half() -> None:
    # one up, one down with equal weight: agreement 0.5, consensus 0, factor 0
    votes = {"lightgbm": np.array([0.7]), "linear": np.array([0.4])}
    p = combine_votes(votes, {"lightgbm": 1.0, "linear": 1.0}, agreement_floor=0.0)
    assert p[0] == pytest.approx(0.5)


def test_vote_at_half_abstains() -> None:
    # 0.5 calls neither side, so the two callers are unanimous: p = 1.8 / 3 = 0.6 is kept
    p = combine_votes(_votes(0.7, 0.5, 0.6), EQUAL, agreement_floor=0.5)
    assert p[0] == pytest.approx(0.6)


def test_per_row_weights() -> None:
    votes = {"lightgbm": np.array([0.8, 0.8]), "linear": np.array([0.6, 0.6])}
    weights = {"lightgbm": np.array([1.0, 0.0]), "linear": 1.0}
    p = combine_votes(votes, weights, agreement_floor=0.5)
    assert p[0] == pytest.approx(0.7)  # both count, both up
    assert p[1] == pytest.approx(0.6)  # only the linear vote counts


def test_zero_total_weight_gives_nan() -> None:
    votes = {"lightgbm": np.array([0.8, 0.8]), "linear": np.array([0.6, 0.6])}
    weights = {"lightgbm": np.array([0.0, 1.0]), "linear": np.array([0.0, 0.0])}
    p = combine_votes(votes, weights, agreement_floor=0.5)
    assert np.isnan(p[0])
    assert p[1] == pytest.approx(0.8)


def test_nan_vote_with_weight_gives_nan() -> None:
    votes = {"lightgbm": np.array([np.nan, np.nan]), "linear": np.array([0.6, 0.6])}
    weights = {"lightgbm": np.array([1.0, 0.0]), "linear": 1.0}
    p = combine_votes(votes, weights, agreement_floor=0.5)
    assert np.isnan(p[0])
    assert p[1] == pytest.approx(0.6)  # a NaN vote with weight 0 is left out


def test_agreement_factor_values() -> None:
    factor = agreement_factor([2.0, 3.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0], 0.5)
    # 2 vs 1: 0.5 + 0.5 / 3; unanimous: 1; no member calls a side: 1; even split: the floor
    assert factor.tolist() == pytest.approx([0.5 + 0.5 / 3.0, 1.0, 1.0, 0.5])


def test_negative_weight_rejected() -> None:
    weights = {"lightgbm": np.array([1.0, -0.5]), "linear": 1.0}
    votes = {"lightgbm": np.array([0.6, 0.6]), "linear": np.array([0.6, 0.6])}
    with pytest.raises(ConfigurationError, match=r"lightgbm is -0\.5 in row 1"):
        combine_votes(votes, weights, agreement_floor=0.5)


def test_missing_weight_rejected() -> None:
    with pytest.raises(ConfigurationError, match="no weight for \\['linear'\\]"):
        combine_votes(_votes(0.6, 0.6, 0.6), {"lightgbm": 1.0, "xgboost": 1.0}, agreement_floor=0.5)


def test_weight_length_mismatch_rejected() -> None:
    votes = {"linear": np.array([0.6, 0.6, 0.6])}
    with pytest.raises(ConfigurationError, match=r"shape \(2,\)"):
        combine_votes(votes, {"linear": np.ones(2)}, agreement_floor=0.5)


def test_floor_outside_range_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"agreement_floor=1\.5"):
        combine_votes(_votes(0.6), {"lightgbm": 1.0}, agreement_floor=1.5)


def test_no_votes_rejected() -> None:
    with pytest.raises(ConfigurationError, match="no member votes"):
        combine_votes({}, {}, agreement_floor=0.5)


class _FixedMember:
    def __init__(self, name: str, probability: float) -> None:
        self.name = name
        self.probability = probability

    def fit(
        self, features: object, y: object, sample_weight: object = None, validation: object = None
    ) -> None:
        raise NotImplementedError

    def predict_proba(self, features: npt.ArrayLike) -> np.ndarray:
        return np.full(len(np.asarray(features)), self.probability)


class _ConstantCalibrator(Calibrator):
    """Maps every probability to 0.9, so a test can see whether it was applied."""

    def transform(self, probability: npt.ArrayLike) -> np.ndarray:
        return np.full(len(np.asarray(probability)), 0.9)


def _ensemble() -> FittedEnsemble:
    identity = Calibrator().fit([0.4, 0.6], [1.0, 1.0])  # one class: passes values through
    return FittedEnsemble(
        members={"lightgbm": _FixedMember("lightgbm", 0.7), "linear": _FixedMember("linear", 0.4)},
        member_calibrators={"lightgbm": identity, "linear": identity},
        ensemble_calibrator=_ConstantCalibrator(),
        weights={"lightgbm": 1.0, "linear": 1.0},
        feature_columns=("a",),
        agreement_floor=0.5,
    )


def test_fold_weights_use_ensemble_calibrator() -> None:
    probability, votes = _ensemble().predict(np.zeros((2, 1)))
    assert probability.tolist() == [0.9, 0.9]
    assert votes["lightgbm"].tolist() == [0.7, 0.7]


def test_supervisor_weights_skip_recalibration() -> None:
    # weights 3 and 1: p = (2.1 + 0.4) / 4 = 0.625; agreement 0.75, factor 0.75
    # p' = 0.5 + 0.125 * 0.75 = 0.59375, returned without the ensemble calibrator
    weights = {"lightgbm": np.array([3.0, 3.0]), "linear": 1.0}
    probability, _ = _ensemble().predict(np.zeros((2, 1)), weights=weights)
    assert probability.tolist() == pytest.approx([0.59375, 0.59375])
