"""Combining member votes into one probability: weights first, then the agreement rule.

With ``v_m`` the calibrated probability of member ``m`` and ``w_m >= 0`` its weight in a row:

1. ``p = sum(w_m * v_m) / sum(w_m)``, the weighted mean.
2. A member votes up when ``v_m > 0.5`` and down when ``v_m < 0.5``; exactly 0.5 abstains.
   ``agreement = max(up weight, down weight) / (up weight + down weight)``, which lies in
   [0.5, 1]; it is 1 when every weighted member abstains.
3. ``consensus = 2 * agreement - 1`` (0 for an even split, 1 for a unanimous vote) and
   ``factor = floor + (1 - floor) * consensus`` with ``floor`` the setting
   ``model.agreement_floor``.
4. ``p' = 0.5 + (p - 0.5) * factor``: a unanimous vote keeps ``p``, a split pulls it toward 0.5.

Example with three equal weights and floor 0.5: votes 0.7, 0.6, 0.65 are unanimous, so
p' = p = 0.65. Votes 0.7, 0.6, 0.35 split 2 to 1, so agreement = 2/3, consensus = 1/3,
factor = 0.5 + 0.5 / 3 = 2/3 and p' = 0.5 + (0.55 - 0.5) * 2/3 = 0.5333.
A floor of 1 keeps the plain weighted mean.

Calibration: each member's vote is calibrated on its fold's calibration slice before the
combination. With the fold's own weights (``FittedEnsemble.weights``), the combined probability
passes through an ensemble calibrator fitted on the same slice. With weights supplied later (for
example per-row weights from the Model Supervisor), the combination of the calibrated votes is
returned as it is, because the ensemble calibrator was fitted for other weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantum_trader.errors import ConfigurationError
from quantum_trader.models.calibration import Calibrator
from quantum_trader.models.members import ModelMember

FloatArray = npt.NDArray[np.float64]
WeightValue = npt.ArrayLike | float


def agreement_factor(
    up_weight: npt.ArrayLike, down_weight: npt.ArrayLike, agreement_floor: float
) -> FloatArray:
    """Return the factor that scales ``p - 0.5``, from the weight voting up and down per row."""
    _check_floor(agreement_floor)
    up = np.asarray(up_weight, dtype=np.float64)
    down = np.asarray(down_weight, dtype=np.float64)
    called = up + down
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(called > 0.0, np.maximum(up, down) / called, 1.0)
    consensus = 2.0 * agreement - 1.0
    return np.asarray(agreement_floor + (1.0 - agreement_floor) * consensus, dtype=np.float64)


def combine_votes(
    votes: Mapping[str, npt.ArrayLike],
    weights: Mapping[str, WeightValue],
    *,
    agreement_floor: float,
) -> FloatArray:
    """Combine the members' probabilities row by row with the weighted agreement rule.

    ``weights`` maps every member in ``votes`` to a number or to one weight per row. A member
    with weight 0 in a row is left out of that row, even when its vote is NaN. A row gets NaN
    when its weights sum to 0 (no member is trusted) or a member with a positive weight has a
    NaN vote. Raises ConfigurationError on missing or extra names, negative or non-finite
    weights, or arrays of another length.
    """
    _check_floor(agreement_floor)
    names = _check_names(votes, weights)
    arrays = {name: np.asarray(votes[name], dtype=np.float64) for name in names}
    rows = len(arrays[names[0]])

    total = np.zeros(rows)
    weighted_sum = np.zeros(rows)
    up = np.zeros(rows)
    down = np.zeros(rows)
    invalid = np.zeros(rows, dtype=np.bool_)
    for name in names:
        vote = arrays[name]
        if vote.shape != (rows,):
            raise ConfigurationError(
                f"vote of member {name} has shape {vote.shape}, expected ({rows},); "
                "pass one probability per row for every member"
            )
        weight = _row_weights(name, weights[name], rows)
        active = weight > 0.0
        invalid |= active & ~np.isfinite(vote)
        # Rows where this member is inactive or invalid use 0.5 times weight 0, which adds
        # nothing; invalid rows become NaN below.
        safe_vote = np.where(active & np.isfinite(vote), vote, 0.5)
        total += weight
        weighted_sum += weight * safe_vote
        up += np.where(safe_vote > 0.5, weight, 0.0)
        down += np.where(safe_vote < 0.5, weight, 0.0)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = weighted_sum / total
    combined = 0.5 + (mean - 0.5) * agreement_factor(up, down, agreement_floor)
    combined[(total <= 0.0) | invalid] = np.nan
    return np.asarray(combined, dtype=np.float64)


def _check_floor(agreement_floor: float) -> None:
    if not 0.0 <= agreement_floor <= 1.0:
        raise ConfigurationError(
            f"agreement_floor={agreement_floor} is outside [0, 1]; use 1 for a plain weighted "
            "mean and lower values to shrink split votes toward 0.5"
        )


def _check_names(votes: Mapping[str, object], weights: Mapping[str, object]) -> list[str]:
    if not votes:
        raise ConfigurationError("combine_votes got no member votes; pass at least one member")
    missing = sorted(set(votes) - set(weights))
    extra = sorted(set(weights) - set(votes))
    if missing or extra:
        raise ConfigurationError(
            f"weights and votes name different members (no weight for {missing}, "
            f"no vote for {extra}); pass one weight per voting member"
        )
    return list(votes)


def _row_weights(name: str, weight: WeightValue, rows: int) -> FloatArray:
    values = np.asarray(weight, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(rows, float(values))
    if values.shape != (rows,):
        raise ConfigurationError(
            f"weight of member {name} has shape {values.shape}, expected a number or ({rows},)"
        )
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0.0))
    if len(bad):
        raise ConfigurationError(
            f"weight of member {name} is {values[bad[0]]} in row {int(bad[0])}; "
            "weights must be finite and >= 0"
        )
    return values


@dataclass
class FittedEnsemble:
    """The members, calibrators, weights and agreement floor of one walk-forward fold.

    ``agreement_floor`` defaults to 1 (the plain weighted mean) so that models saved before the
    agreement rule existed load with the rule they were trained with.
    """

    members: dict[str, ModelMember]
    member_calibrators: dict[str, Calibrator]
    ensemble_calibrator: Calibrator
    weights: dict[str, float]
    feature_columns: tuple[str, ...]
    agreement_floor: float = 1.0

    def member_votes(
        self,
        X: npt.ArrayLike,  # noqa: N803 (scikit-learn names the feature matrix X)
    ) -> dict[str, FloatArray]:
        """Return each member's calibrated probability of the up label."""
        return {
            name: self.member_calibrators[name].transform(member.predict_proba(X))
            for name, member in self.members.items()
        }

    def blend(
        self,
        X: npt.ArrayLike,  # noqa: N803
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Return the combined probability with the fold's weights, before the ensemble
        calibration, and each member's calibrated probability."""
        votes = self.member_votes(X)
        combined = combine_votes(votes, self.weights, agreement_floor=self.agreement_floor)
        return combined, votes

    def predict(
        self,
        X: npt.ArrayLike,  # noqa: N803
        weights: Mapping[str, WeightValue] | None = None,
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Return the ensemble probability and each member's calibrated probability.

        Without ``weights`` the fold's weights apply and the ensemble calibrator maps the
        result. With ``weights`` (numbers or per-row arrays) the calibrated votes are combined
        with them and not calibrated again.
        """
        if weights is None:
            combined, votes = self.blend(X)
            return self.ensemble_calibrator.transform(combined), votes
        votes = self.member_votes(X)
        return combine_votes(votes, weights, agreement_floor=self.agreement_floor), votes
