"""Saving and loading the last fold's models of a walk-forward run.

A model folder contains one joblib file per member and per calibrator,
``ensemble_calibrator.joblib`` and ``model.json``. The manifest records the feature columns, the
higher timeframe of the context features, horizon, purge, the fold windows in ISO 8601 UTC, the
scores of every fold, the ensemble weights, the agreement floor and the library versions.
Joblib files are pickles, so load only folders you wrote yourself or trust. A manifest without
``agreement_floor`` was written before the agreement rule existed and loads with floor 1 (the
plain weighted mean).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError
from quantum_trader.features.higher import build_model_features
from quantum_trader.models.ensemble import FittedEnsemble
from quantum_trader.models.results import FoldReport, WalkForwardResult

MANIFEST = "model.json"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "xgboost-cpu", "xgboost", "joblib")


@dataclass
class StoredModels:
    """A loaded model folder: the fitted ensemble and the contents of ``model.json``."""

    ensemble: FittedEnsemble
    manifest: dict[str, Any]

    def feature_matrix(self, candles: pd.DataFrame) -> npt.NDArray[np.float32]:
        """Build the features the ensemble was trained on from one symbol's candles, with the
        higher-timeframe context when the models used it.

        Raises ConfigurationError when the columns differ from the saved ``feature_columns``.
        """
        features = build_model_features(
            candles, self.manifest["timeframe"], self.manifest.get("higher_timeframe")
        )
        if tuple(features.columns) != self.ensemble.feature_columns:
            raise ConfigurationError(
                f"features {list(features.columns)} differ from the saved feature columns "
                f"{list(self.ensemble.feature_columns)}; retrain the models with this version"
            )
        return features.to_numpy(dtype=np.float32)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _last_trained_fold(result: WalkForwardResult) -> FoldReport:
    trained = [fold for fold in result.folds if fold.scores]
    if result.models is None or not trained:
        raise ConfigurationError(
            "the walk-forward result has no trained fold to save; train on more data"
        )
    return trained[-1]


def save_models(result: WalkForwardResult, folder: Path) -> Path:
    """Write the last trained fold's ensemble and ``model.json`` into ``folder``.

    The folder is created when missing and files of an earlier save are overwritten. Returns
    the path of ``model.json``.
    """
    fold = _last_trained_fold(result)
    ensemble = result.models
    assert ensemble is not None  # _last_trained_fold rejects a result without models
    folder.mkdir(parents=True, exist_ok=True)

    for name, member in ensemble.members.items():
        joblib.dump(member, folder / f"member_{name}.joblib")
        joblib.dump(ensemble.member_calibrators[name], folder / f"calibrator_{name}.joblib")
    joblib.dump(ensemble.ensemble_calibrator, folder / "ensemble_calibrator.joblib")

    settings = result.settings
    manifest = {
        "format_version": FORMAT_VERSION,
        "timeframe": result.timeframe,
        "members": list(ensemble.members),
        "weights": ensemble.weights,
        "agreement_floor": ensemble.agreement_floor,
        "higher_timeframe": result.higher_timeframe,
        "calibration": ensemble.ensemble_calibrator.method,
        "feature_columns": list(ensemble.feature_columns),
        "horizon": settings.horizon,
        "purge": settings.purge_candles,
        "train_window": settings.train_window,
        "retrain_every": settings.retrain_every,
        "seed": settings.seed,
        "fold": fold.to_dict(),
        "folds": [f.to_dict() for f in result.folds],
        "versions": _versions(),
    }
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def load_models(folder: Path) -> StoredModels:
    """Load a folder written by ``save_models``."""
    path = folder / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"model folder {folder} has no {MANIFEST}; save models first"
        ) from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigurationError(
            f"{path} has format_version {manifest.get('format_version')!r}, "
            f"this version reads {FORMAT_VERSION}; retrain and save the models again"
        )

    members = {name: joblib.load(folder / f"member_{name}.joblib") for name in manifest["members"]}
    calibrators = {
        name: joblib.load(folder / f"calibrator_{name}.joblib") for name in manifest["members"]
    }
    ensemble = FittedEnsemble(
        members=members,
        member_calibrators=calibrators,
        ensemble_calibrator=joblib.load(folder / "ensemble_calibrator.joblib"),
        weights={name: float(w) for name, w in manifest["weights"].items()},
        feature_columns=tuple(manifest["feature_columns"]),
        agreement_floor=float(manifest.get("agreement_floor", 1.0)),
    )
    return StoredModels(ensemble=ensemble, manifest=manifest)
