"""Saving and loading the last fold's models of a walk-forward run.

A model folder contains one joblib file per member and per calibrator,
``ensemble_calibrator.joblib`` and ``model.json`` (feature columns, horizon, purge, the fold
windows in ISO 8601 UTC, the scores of every fold, the ensemble weights and the library
versions). Joblib files are pickles, so load only folders you wrote yourself or trust.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib

from quantum_trader.errors import ConfigurationError
from quantum_trader.models.walk_forward import FittedEnsemble, FoldReport, WalkForwardResult

MANIFEST = "model.json"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "xgboost-cpu", "xgboost", "joblib")


@dataclass
class StoredModels:
    """A loaded model folder: the fitted ensemble and the contents of ``model.json``."""

    ensemble: FittedEnsemble
    manifest: dict[str, Any]


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _fold_record(fold: FoldReport) -> dict[str, Any]:
    windows = ("train_start", "train_end", "calibration_start", "calibration_end")
    record: dict[str, Any] = {
        key: getattr(fold, key).isoformat() for key in (*windows, "test_start", "test_end")
    }
    record.update(
        index=fold.index,
        train_rows=fold.train_rows,
        calibration_rows=fold.calibration_rows,
        test_rows=fold.test_rows,
        scores={name: scores.to_dict() for name, scores in fold.scores.items()},
    )
    return record


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
        "calibration": ensemble.ensemble_calibrator.method,
        "feature_columns": list(ensemble.feature_columns),
        "horizon": settings.horizon,
        "purge": settings.purge_candles,
        "train_window": settings.train_window,
        "retrain_every": settings.retrain_every,
        "seed": settings.seed,
        "fold": _fold_record(fold),
        "folds": [_fold_record(f) for f in result.folds],
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
    )
    return StoredModels(ensemble=ensemble, manifest=manifest)
