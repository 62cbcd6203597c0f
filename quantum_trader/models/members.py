"""Ensemble members: classifiers that return the probability of the up label.

Every member is deterministic for a given seed and training set. A training set with a single
class cannot fit a classifier, so each member then predicts that class's rate (0 or 1) and logs
a warning.

The tree members stop early when given ``early_stopping_rounds`` and a validation set: they
stop adding trees once the validation log loss has not improved for that many rounds, and
predict with the best number of trees. The linear member ignores the validation set.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from quantum_trader.errors import ConfigurationError, MissingDependencyError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Validation = tuple[npt.ArrayLike, npt.ArrayLike]
MEMBER_NAMES = ("lightgbm", "linear", "xgboost")
DEFAULT_THREADS = 2

# Member name -> (module imported, package a user installs with pip).
_MEMBER_PACKAGES = {
    "lightgbm": ("lightgbm", "lightgbm"),
    "linear": ("sklearn", "scikit-learn"),
    "xgboost": ("xgboost", "xgboost-cpu"),
}


def require_member_package(name: str) -> None:
    """Raise MissingDependencyError naming the package when member ``name`` cannot be built."""
    if name not in _MEMBER_PACKAGES:
        raise ConfigurationError(f"unknown model member {name!r}; choose one of {MEMBER_NAMES}")
    module, package = _MEMBER_PACKAGES[name]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, f"the {name} ensemble member") from exc


def require_packages(names: Iterable[str]) -> None:
    """Check the packages of every member in ``names`` and scikit-learn, which calibrates them."""
    for name in names:
        require_member_package(name)
    try:
        importlib.import_module("sklearn")
    except ImportError as exc:
        raise MissingDependencyError("scikit-learn", "probability calibration") from exc


@runtime_checkable
class ModelMember(Protocol):
    """A binary classifier of the up label (1 = the close rises over the horizon)."""

    name: str

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803 (scikit-learn names the feature matrix X)
        y: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
        validation: Validation | None = None,
    ) -> None: ...

    def predict_proba(self, X: npt.ArrayLike) -> FloatArray: ...  # noqa: N803


class _SklearnStyleMember:
    """Shared fit/predict logic around an estimator with the scikit-learn interface."""

    name = "member"

    def __init__(self, early_stopping_rounds: int | None = None) -> None:
        if early_stopping_rounds is not None and early_stopping_rounds < 1:
            raise ConfigurationError(
                f"early_stopping_rounds={early_stopping_rounds} is invalid; use an integer >= 1 "
                "or None to train every tree"
            )
        self.estimator: Any = None
        self.constant: float | None = None
        self.early_stopping_rounds = early_stopping_rounds

    def _build(self) -> Any:
        raise NotImplementedError

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803 (scikit-learn names the feature matrix X)
        y: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
        validation: Validation | None = None,
    ) -> None:
        features = np.asarray(X, dtype=np.float32)
        labels = np.asarray(y, dtype=np.int64)
        if len(labels) == 0:
            raise ConfigurationError(f"model member {self.name} got an empty training set")
        classes = np.unique(labels)
        if len(classes) < 2:
            logger.warning(
                "Member %s saw only label %d in %d rows; it predicts that label's rate.",
                self.name,
                int(classes[0]),
                len(labels),
            )
            self.constant = float(classes[0])
            self.estimator = None
            return

        self.constant = None
        self.estimator = self._build()
        if validation is None or self.early_stopping_rounds is None:
            self._fit_estimator(features, labels, sample_weight)
            return
        eval_set = [
            (
                np.asarray(validation[0], dtype=np.float32),
                np.asarray(validation[1], dtype=np.int64),
            )
        ]
        self._fit_early_stopping(features, labels, sample_weight, eval_set)

    def _fit_estimator(
        self,
        X: npt.NDArray[np.float32],  # noqa: N803
        y: npt.NDArray[np.int64],
        weight: npt.ArrayLike | None,
    ) -> None:
        self.estimator.fit(X, y, sample_weight=weight)

    def _fit_early_stopping(
        self,
        X: npt.NDArray[np.float32],  # noqa: N803
        y: npt.NDArray[np.int64],
        weight: npt.ArrayLike | None,
        eval_set: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    ) -> None:
        # Members without early stopping (the linear model) train on the fit rows alone.
        self._fit_estimator(X, y, weight)

    def predict_proba(
        self,
        X: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        features = np.asarray(X, dtype=np.float32)
        if self.constant is not None:
            return np.full(len(features), self.constant)
        if self.estimator is None:
            raise ConfigurationError(f"model member {self.name} is used before fit()")
        return np.asarray(self.estimator.predict_proba(features)[:, 1], dtype=np.float64)


class _BoostedTreesMember(_SklearnStyleMember):
    """The seed, thread count, tree count and early stopping shared by the boosted members."""

    def __init__(
        self,
        seed: int,
        threads: int = DEFAULT_THREADS,
        n_estimators: int = 200,
        early_stopping_rounds: int | None = None,
    ) -> None:
        super().__init__(early_stopping_rounds)
        require_member_package(self.name)
        self.seed = seed
        self.threads = threads
        self.n_estimators = n_estimators


class LightGBMMember(_BoostedTreesMember):
    """Gradient-boosted trees (LightGBM) with modest, regularised parameters.

    ``deterministic=True`` with row-wise histograms makes results repeatable for a fixed
    number of threads. Missing values are handled natively.
    """

    name = "lightgbm"

    def _fit_early_stopping(
        self,
        X: npt.NDArray[np.float32],  # noqa: N803
        y: npt.NDArray[np.int64],
        weight: npt.ArrayLike | None,
        eval_set: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    ) -> None:
        import lightgbm

        assert self.early_stopping_rounds is not None  # fit() checks it before calling
        stop = lightgbm.early_stopping(self.early_stopping_rounds, verbose=False)
        # LightGBM 4.7 renamed eval_set to eval_X and eval_y and deprecates the old name;
        # older versions (the package allows 4.3 and later) know eval_set only.
        evaluation: dict[str, Any] = {"eval_set": eval_set}
        if "eval_X" in inspect.signature(self.estimator.fit).parameters:
            evaluation = {"eval_X": (eval_set[0][0],), "eval_y": (eval_set[0][1],)}
        self.estimator.fit(
            X,
            y,
            sample_weight=weight,
            eval_metric="binary_logloss",
            callbacks=[stop],
            **evaluation,
        )

    def _build(self) -> Any:
        import lightgbm

        return lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators,
            num_leaves=15,
            learning_rate=0.05,
            min_child_samples=100,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.seed,
            n_jobs=self.threads,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )


class LinearMember(_SklearnStyleMember):
    """Logistic regression (C=0.1) on standardised features.

    Missing values are replaced by the training medians; an all-missing column becomes 0.
    """

    name = "linear"

    def __init__(self, seed: int) -> None:
        super().__init__()
        require_member_package(self.name)
        self.seed = seed

    def _build(self) -> Any:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("logistic", LogisticRegression(C=0.1, max_iter=1000, random_state=self.seed)),
            ]
        )

    def _fit_estimator(
        self,
        X: npt.NDArray[np.float32],  # noqa: N803
        y: npt.NDArray[np.int64],
        weight: npt.ArrayLike | None,
    ) -> None:
        self.estimator.fit(X, y, logistic__sample_weight=weight)

    def predict_proba(
        self,
        X: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Apply the fitted imputer, scaler and logistic model directly with numpy.

        The same arithmetic as the scikit-learn pipeline, without its per-call input checks,
        which cost about ten times the computation on large matrices.
        """
        if self.constant is not None or self.estimator is None:
            return super().predict_proba(X)
        imputer = self.estimator.named_steps["impute"]
        scaler = self.estimator.named_steps["scale"]
        logistic = self.estimator.named_steps["logistic"]
        # float32 in place, as the pipeline computes on float32 input; new large temporaries
        # cost more in page faults than the arithmetic itself.
        features = np.array(X, dtype=np.float32)
        missing = np.isnan(features)
        if missing.any():
            medians = np.broadcast_to(imputer.statistics_.astype(np.float32), features.shape)
            np.copyto(features, medians, where=missing)
        features -= scaler.mean_.astype(np.float32)
        features /= scaler.scale_.astype(np.float32)
        # Column by column rather than a BLAS product: BLAS kernels may sum a row in a different
        # order depending on the number of rows, and a row's probability must not change when
        # later rows are added or dropped.
        logit = np.full(len(features), float(logistic.intercept_[0]))
        for column, weight in enumerate(logistic.coef_[0]):
            logit += features[:, column] * float(weight)
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


class XGBoostMember(_BoostedTreesMember):
    """Gradient-boosted trees (XGBoost, histogram method); needs the ``xgboost-cpu`` package."""

    name = "xgboost"

    def _fit_early_stopping(
        self,
        X: npt.NDArray[np.float32],  # noqa: N803
        y: npt.NDArray[np.int64],
        weight: npt.ArrayLike | None,
        eval_set: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]],
    ) -> None:
        # XGBoost takes the stopping rule as an estimator parameter, set before fit.
        self.estimator.set_params(
            early_stopping_rounds=self.early_stopping_rounds, eval_metric="logloss"
        )
        self.estimator.fit(X, y, sample_weight=weight, eval_set=eval_set, verbose=False)

    def _build(self) -> Any:
        import xgboost

        return xgboost.XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=4,
            learning_rate=0.05,
            min_child_weight=20,
            subsample=0.8,
            colsample_bytree=0.8,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.threads,
            verbosity=0,
        )


def make_member(
    name: str,
    seed: int,
    threads: int = DEFAULT_THREADS,
    early_stopping_rounds: int | None = None,
) -> ModelMember:
    """Create the ensemble member called ``name`` (lightgbm, linear or xgboost).

    ``early_stopping_rounds`` applies to the tree members when ``fit`` gets a validation set.
    """
    if name == "lightgbm":
        return LightGBMMember(seed, threads, early_stopping_rounds=early_stopping_rounds)
    if name == "linear":
        return LinearMember(seed)
    if name == "xgboost":
        return XGBoostMember(seed, threads, early_stopping_rounds=early_stopping_rounds)
    raise ConfigurationError(f"unknown model member {name!r}; choose one of {MEMBER_NAMES}")
