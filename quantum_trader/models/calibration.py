"""Probability calibration and the scores used to judge forecasts out of sample.

A calibrator is fitted on a held-out slice at the end of each training window, after a purge
gap, so it is never fitted on the rows its model was trained on. The scores skip rows whose
probability or label is NaN and return None when they are undefined (no rows, or one class only
for the AUC).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
CalibrationMethod = Literal["isotonic", "platt"]
PROBABILITY_CLIP = 1e-15


class Calibrator:
    """A monotone map from raw to calibrated probabilities (isotonic or Platt scaling).

    When the calibration slice contains a single class, no map can be learned and the calibrator
    returns its input unchanged (``method`` becomes ``"identity"``).
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        if method not in ("isotonic", "platt"):
            raise ConfigurationError(
                f"calibration method {method!r} is unknown; use isotonic or platt"
            )
        self.method: str = method
        self.estimator: Any = None

    def fit(self, probability: npt.ArrayLike, label: npt.ArrayLike) -> Calibrator:
        p, y = _finite_pairs(probability, label)
        if len(np.unique(y)) < 2:
            logger.warning(
                "Calibration slice has %d rows with fewer than two classes; "
                "probabilities pass through uncalibrated.",
                len(y),
            )
            self.method = "identity"
            return self

        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.estimator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.estimator.fit(p, y)
        else:
            from sklearn.linear_model import LogisticRegression

            self.estimator = LogisticRegression(C=1e6, max_iter=1000)
            self.estimator.fit(_logit(p).reshape(-1, 1), y)
        return self

    def transform(self, probability: npt.ArrayLike) -> FloatArray:
        """Map raw probabilities to calibrated ones; NaN stays NaN."""
        p = np.asarray(probability, dtype=np.float64)
        if self.method == "identity":
            return p.copy()
        if self.estimator is None:
            raise ConfigurationError("the calibrator is used before fit()")

        out = np.full(len(p), np.nan)
        finite = np.isfinite(p)
        if not finite.any():
            return out
        if self.method == "isotonic":
            out[finite] = self.estimator.predict(p[finite])
        else:
            out[finite] = self.estimator.predict_proba(_logit(p[finite]).reshape(-1, 1))[:, 1]
        return out


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.asarray(np.log(clipped / (1.0 - clipped)), dtype=np.float64)


def _finite_pairs(
    probability: npt.ArrayLike, label: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    if p.shape != y.shape:
        raise ConfigurationError(f"{len(p)} probabilities but {len(y)} labels; pass equal lengths")
    keep = np.isfinite(p) & np.isfinite(y)
    return p[keep], y[keep]


def auc(probability: npt.ArrayLike, label: npt.ArrayLike) -> float | None:
    """Area under the ROC curve; None when fewer than two classes are present."""
    p, y = _finite_pairs(probability, label)
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def brier(probability: npt.ArrayLike, label: npt.ArrayLike) -> float | None:
    """Brier score: mean squared difference of probability and label; None without rows."""
    p, y = _finite_pairs(probability, label)
    if len(y) == 0:
        return None
    return float(np.mean((p - y) ** 2))


def hit_rate(probability: npt.ArrayLike, label: npt.ArrayLike) -> float | None:
    """Share of correct directional calls: p > 0.5 calls up, p < 0.5 calls down.

    A probability of exactly 0.5 makes no call and is left out; None when no call was made.
    """
    p, y = _finite_pairs(probability, label)
    called = p != 0.5
    if not called.any():
        return None
    predicted_up = p[called] > 0.5
    return float(np.mean(predicted_up == (y[called] == 1.0)))


def log_loss(probability: npt.ArrayLike, label: npt.ArrayLike) -> float | None:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15]; None
    without rows."""
    p, y = _finite_pairs(probability, label)
    if len(y) == 0:
        return None
    clipped = np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return float(-np.mean(y * np.log(clipped) + (1.0 - y) * np.log(1.0 - clipped)))


@dataclass(frozen=True)
class Scores:
    """Out-of-sample scores of one forecast series; ``rows`` counts rows with a probability
    and a label."""

    rows: int
    auc: float | None
    brier: float | None
    hit_rate: float | None
    log_loss: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def score(probability: npt.ArrayLike, label: npt.ArrayLike) -> Scores:
    """Compute every score of one forecast series."""
    p, y = _finite_pairs(probability, label)
    return Scores(
        rows=len(y),
        auc=auc(p, y),
        brier=brier(p, y),
        hit_rate=hit_rate(p, y),
        log_loss=log_loss(p, y),
    )
