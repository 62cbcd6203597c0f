"""The result of a walk-forward run: out-of-sample probabilities, fold reports and scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.config import ModelSettings
from quantum_trader.models.calibration import Scores, score
from quantum_trader.models.ensemble import FittedEnsemble

FloatArray = npt.NDArray[np.float64]
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class FoldReport:
    """One walk-forward fold: its windows (UTC, end exclusive), row counts and OOS scores.

    ``scores`` maps each member name and ``"ensemble"`` to its scores on the test window; it is
    empty when the fold was skipped for lack of training rows.
    """

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    calibration_start: pd.Timestamp
    calibration_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    train_rows: int
    calibration_rows: int
    test_rows: int
    scores: dict[str, Scores] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the fold as plain JSON types, with times in ISO 8601 UTC."""
        windows = (
            "train_start",
            "train_end",
            "calibration_start",
            "calibration_end",
            "test_start",
            "test_end",
        )
        record: dict[str, Any] = {"index": self.index}
        record.update({key: getattr(self, key).isoformat() for key in windows})
        record.update(
            train_rows=self.train_rows,
            calibration_rows=self.calibration_rows,
            test_rows=self.test_rows,
            scores={name: scores.to_dict() for name, scores in self.scores.items()},
        )
        return record


@dataclass
class WalkForwardResult:
    """Out-of-sample probabilities of the up label per symbol, the folds and the last models.

    ``votes[symbol][member]`` is that member's calibrated probability; ``labels[symbol]`` the
    labels the scores use. ``higher_timeframe`` is the timeframe of the context features the
    run built, or None when they were off or the caller passed its own context frames.
    """

    probability: dict[str, FloatArray]
    votes: dict[str, dict[str, FloatArray]]
    labels: dict[str, FloatArray]
    folds: list[FoldReport]
    models: FittedEnsemble | None
    settings: ModelSettings
    timeframe: str
    higher_timeframe: str | None = None

    def pooled_scores(self) -> dict[str, Scores]:
        """Scores of every member and the ensemble over all out-of-sample rows, pooled."""
        symbols = sorted(self.probability)
        if not symbols:
            return {}
        labels = np.concatenate([self.labels[s] for s in symbols])
        pooled: dict[str, FloatArray] = {}
        for name in self.settings.models:
            pooled[name] = np.concatenate([self.votes[s][name] for s in symbols])
        pooled[ENSEMBLE] = np.concatenate([self.probability[s] for s in symbols])
        return {name: score(p, labels) for name, p in pooled.items()}

    def summary(self) -> dict[str, Any]:
        """Return the model report as plain JSON types (ISO 8601 UTC times, None for
        undefined scores).

        ``pooled`` maps each member and ``"ensemble"`` to its rows, AUC, Brier score, hit rate
        and log loss over all out-of-sample rows; ``folds`` lists every fold's windows, row
        counts and scores.
        """
        return {
            "timeframe": self.timeframe,
            "higher_timeframe": self.higher_timeframe,
            "members": list(self.settings.models),
            "agreement_floor": self.settings.agreement_floor,
            "horizon": self.settings.horizon,
            "pooled": {name: s.to_dict() for name, s in self.pooled_scores().items()},
            "folds": [fold.to_dict() for fold in self.folds],
        }
