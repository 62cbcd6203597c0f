"""Walk-forward training of the ensemble with a purge gap, pooled over symbols.

Label: ``y[i] = 1`` when ``close[i + horizon] / close[i] - 1 > 0``, else 0; the last ``horizon``
rows of a symbol have no label (NaN) and are never trained on.

Folds are anchored in absolute time, so truncating the data never changes an earlier fold. With
``tf`` the candle length, ``t0`` the earliest first candle over all symbols and
``W = train_window``, fold ``k`` tests ``[t0 + W*tf + k*retrain_every*tf, ... + retrain_every*tf)``.
Its training span is ``[test_start - W*tf, test_start - purge*tf)``: the members fit on the first
part, and the last ``calibration_share`` of the span (after a second purge gap) calibrates them.
A training or calibration row is also dropped when its label reads a candle at or after the start
of the next window, which only matters when the data has gaps.

When the pooled training rows of a fold exceed ``max_train_rows``, every k-th row is kept
(k = ceil(rows / max_train_rows)). Neighbouring rows share most of their label horizon, so on
5m candles this loses little information and bounds the time per fold.

The ensemble combines the members' calibrated probabilities by weight and agreement (see
``quantum_trader.models.ensemble``), and the result is calibrated once more on the same slice.
Platt scaling is the default for both steps. On the shipped 1h data of five
symbols with default settings (three members), isotonic calibration raised the pooled
out-of-sample log loss of the ensemble from 0.696 to 0.771, because its steps reach 0 and 1 on
the sparse tails.
Rows before the first fold, and warm-up rows with missing base features, get a NaN probability.

When ``model.higher_timeframe`` is longer than the base timeframe and no ``higher`` frames are
passed, the higher-timeframe context features are built from the candles themselves.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.config import ModelSettings
from quantum_trader.errors import ConfigurationError, DataError
from quantum_trader.features.higher import higher_context
from quantum_trader.features.matrix import FEATURE_COLUMNS, build_features
from quantum_trader.models.calibration import CalibrationMethod, Calibrator, score
from quantum_trader.models.ensemble import FittedEnsemble
from quantum_trader.models.members import (
    DEFAULT_THREADS,
    ModelMember,
    make_member,
    require_packages,
)
from quantum_trader.models.results import ENSEMBLE, FoldReport, WalkForwardResult

__all__ = [
    "ENSEMBLE",
    "FittedEnsemble",
    "FoldReport",
    "ProgressCallback",
    "WalkForwardResult",
    "make_labels",
    "timeframe_delta",
    "walk_forward_predict",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ProgressCallback = Callable[[int, int], None]
MIN_FIT_ROWS = 200
MIN_CALIBRATION_ROWS = 50
_TIMEFRAME = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """Convert a timeframe such as ``5m``, ``1h``, ``1d`` or ``1w`` to its candle length."""
    match = _TIMEFRAME.match(timeframe)
    if match is None or int(match.group(1)) == 0:
        raise ConfigurationError(
            f"timeframe {timeframe!r} is invalid; use a count and a unit m, h, d or w, e.g. 1h"
        )
    return pd.Timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def make_labels(close: npt.ArrayLike, horizon: int) -> FloatArray:
    """Return 1.0 where the close rises over ``horizon`` candles, 0.0 where not, NaN at the end."""
    prices = np.asarray(close, dtype=np.float64)
    labels = np.full(len(prices), np.nan)
    if len(prices) > horizon:
        labels[:-horizon] = (prices[horizon:] / prices[:-horizon] - 1.0 > 0.0).astype(np.float64)
    return labels


@dataclass
class _Pool:
    """All symbols stacked in sorted symbol order; times are int64 ns of the candle open."""

    symbols: list[str]
    offsets: list[int]
    features: npt.NDArray[np.float32]
    labels: FloatArray
    times: npt.NDArray[np.int64]
    label_times: npt.NDArray[np.int64]
    usable: npt.NDArray[np.bool_]
    columns: tuple[str, ...]


def _symbol_arrays(
    symbol: str, frame: pd.DataFrame, horizon: int, higher: pd.DataFrame | None
) -> tuple[pd.DataFrame, FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if "date" not in frame.columns or "close" not in frame.columns:
        raise DataError(f"candles of {symbol} lack a 'date' or 'close' column")
    dates = pd.DatetimeIndex(frame["date"])
    if dates.tz is None:
        raise DataError(f"candle dates of {symbol} are naive; localise them to UTC on load")
    if not dates.is_monotonic_increasing or dates.has_duplicates:
        raise DataError(f"candle dates of {symbol} are unsorted or duplicated; clean them first")

    times = dates.as_unit("ns").asi8
    features = build_features(frame.reset_index(drop=True), higher)
    labels = make_labels(frame["close"].to_numpy(), horizon)
    label_times = np.full(len(times), np.iinfo(np.int64).max, dtype=np.int64)
    label_times[: max(len(times) - horizon, 0)] = times[horizon:]
    return features, labels, times, label_times


def _build_pool(
    candles: Mapping[str, pd.DataFrame], horizon: int, higher: Mapping[str, pd.DataFrame] | None
) -> _Pool:
    symbols = sorted(candles)
    parts = [_symbol_arrays(s, candles[s], horizon, (higher or {}).get(s)) for s in symbols]
    columns = tuple(str(c) for c in parts[0][0].columns)
    for symbol, part in zip(symbols, parts, strict=True):
        if tuple(part[0].columns) != columns:
            raise DataError(f"features of {symbol} have other columns than those of {symbols[0]}")

    features = np.concatenate([p[0].to_numpy(dtype=np.float32) for p in parts])
    base = features[:, : len(FEATURE_COLUMNS)]
    return _Pool(
        symbols=symbols,
        offsets=list(np.cumsum([0] + [len(p[1]) for p in parts])),
        features=features,
        labels=np.concatenate([p[1] for p in parts]),
        times=np.concatenate([p[2] for p in parts]),
        label_times=np.concatenate([p[3] for p in parts]),
        usable=np.isfinite(base).all(axis=1),
        columns=columns,
    )


def _fold_starts(pool: _Pool, settings: ModelSettings, step: int) -> list[int]:
    first = int(pool.times.min())
    last = int(pool.times.max())
    start = first + settings.train_window * step
    if start > last:
        raise ConfigurationError(
            f"the data spans {(last - first) // step + 1} candles, too few for "
            f"model.train_window={settings.train_window}; load more history or lower train_window"
        )
    every = settings.retrain_every * step
    return list(range(start, last + 1, every))


def _window_bounds(test_start: int, settings: ModelSettings, step: int) -> dict[str, int]:
    purge = settings.purge_candles
    span = settings.train_window - purge
    calibration = max(1, round(span * settings.calibration_share))
    fit = span - calibration - purge
    if fit < MIN_FIT_ROWS:
        raise ConfigurationError(
            f"model.train_window={settings.train_window} leaves {fit} candles to fit on after "
            f"purge={purge} twice and the calibration slice; raise train_window"
        )
    calibration_end = test_start - purge * step
    calibration_start = calibration_end - calibration * step
    return {
        "train_start": test_start - settings.train_window * step,
        "train_end": calibration_start - purge * step,
        "calibration_start": calibration_start,
        "calibration_end": calibration_end,
        "test_start": test_start,
        "test_end": test_start + settings.retrain_every * step,
    }


def _rows(pool: _Pool, start: int, end: int, next_window: int) -> npt.NDArray[np.intp]:
    mask = pool.usable & (pool.times >= start) & (pool.times < end) & np.isfinite(pool.labels)
    return np.flatnonzero(mask & (pool.label_times < next_window))


def _thin(rows: npt.NDArray[np.intp], max_rows: int | None) -> npt.NDArray[np.intp]:
    """Keep every k-th row, k = ceil(len(rows) / max_rows), when there are more than max_rows."""
    if max_rows is None or len(rows) <= max_rows:
        return rows
    return rows[:: math.ceil(len(rows) / max_rows)]


def _fit_ensemble(
    pool: _Pool,
    fit_rows: npt.NDArray[np.intp],
    calibration_rows: npt.NDArray[np.intp],
    settings: ModelSettings,
    weights: dict[str, float],
    threads: int,
    method: CalibrationMethod,
) -> FittedEnsemble:
    members: dict[str, ModelMember] = {}
    calibrators: dict[str, Calibrator] = {}
    x_cal = pool.features[calibration_rows]
    y_cal = pool.labels[calibration_rows]
    for name in settings.models:
        member = make_member(name, settings.seed, threads, settings.early_stopping_rounds)
        member.fit(pool.features[fit_rows], pool.labels[fit_rows], validation=(x_cal, y_cal))
        members[name] = member
        calibrators[name] = Calibrator(method).fit(member.predict_proba(x_cal), y_cal)

    ensemble = FittedEnsemble(
        members,
        calibrators,
        Calibrator(method),
        weights,
        pool.columns,
        agreement_floor=settings.agreement_floor,
    )
    mean, _ = ensemble.blend(x_cal)
    ensemble.ensemble_calibrator.fit(mean, y_cal)
    return ensemble


def _resolve_weights(
    settings: ModelSettings, weights: Mapping[str, float] | None
) -> dict[str, float]:
    given = dict(weights or {})
    unknown = sorted(set(given) - set(settings.models))
    if unknown:
        raise ConfigurationError(f"ensemble weights name {unknown}, not in model.models")
    resolved: dict[str, float] = {name: float(given.get(name, 1.0)) for name in settings.models}
    if any(w < 0 or not np.isfinite(w) for w in resolved.values()) or sum(resolved.values()) <= 0:
        raise ConfigurationError(
            f"ensemble weights {resolved} are invalid; use finite weights >= 0 with a positive sum"
        )
    return resolved


def _timestamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(ns, unit="ns", tz="UTC")


def _run_fold(
    index: int,
    test_start: int,
    pool: _Pool,
    context: tuple[ModelSettings, dict[str, float], int, int, CalibrationMethod],
    outputs: dict[str, FloatArray],
) -> tuple[FoldReport, FittedEnsemble | None]:
    settings, weights, threads, step, method = context
    bounds = _window_bounds(test_start, settings, step)
    fit_rows = _rows(pool, bounds["train_start"], bounds["train_end"], bounds["calibration_start"])
    fit_rows = _thin(fit_rows, settings.max_train_rows)
    cal_rows = _rows(
        pool, bounds["calibration_start"], bounds["calibration_end"], bounds["test_start"]
    )
    in_test = (pool.times >= bounds["test_start"]) & (pool.times < bounds["test_end"])
    test_rows = np.flatnonzero(pool.usable & in_test)
    report = FoldReport(
        index=index,
        train_start=_timestamp(bounds["train_start"]),
        train_end=_timestamp(bounds["train_end"]),
        calibration_start=_timestamp(bounds["calibration_start"]),
        calibration_end=_timestamp(bounds["calibration_end"]),
        test_start=_timestamp(bounds["test_start"]),
        test_end=_timestamp(bounds["test_end"]),
        train_rows=len(fit_rows),
        calibration_rows=len(cal_rows),
        test_rows=len(test_rows),
    )

    if len(fit_rows) < MIN_FIT_ROWS or len(cal_rows) < MIN_CALIBRATION_ROWS:
        logger.warning(
            "Fold %d skipped: %d training and %d calibration rows, need %d and %d.",
            index, len(fit_rows), len(cal_rows), MIN_FIT_ROWS, MIN_CALIBRATION_ROWS,
        )  # fmt: skip
        return report, None

    ensemble = _fit_ensemble(pool, fit_rows, cal_rows, settings, weights, threads, method)
    probability, votes = ensemble.predict(pool.features[test_rows])
    outputs[ENSEMBLE][test_rows] = probability
    for name, vote in votes.items():
        outputs[name][test_rows] = vote

    labels = pool.labels[test_rows]
    scores = {name: score(vote, labels) for name, vote in votes.items()}
    scores[ENSEMBLE] = score(probability, labels)
    return replace(report, scores=scores), ensemble


def walk_forward_predict(
    candles: Mapping[str, pd.DataFrame],
    settings: ModelSettings,
    timeframe: str,
    progress: ProgressCallback | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    threads: int = DEFAULT_THREADS,
    higher: Mapping[str, pd.DataFrame] | None = None,
    calibration: CalibrationMethod = "platt",
) -> WalkForwardResult:
    """Train the ensemble walk-forward over all symbols and predict each test window.

    ``weights`` maps member names to ensemble weights (a member not named gets 1.0); the
    ensemble calibrator of each fold is fitted for these weights. ``higher`` maps symbols to
    higher-timeframe context frames, aligned row by row to their candles. When it is None, the
    frames are built for ``model.higher_timeframe`` if that is longer than ``timeframe``.
    ``calibration`` picks the calibration of the members and of the ensemble.
    ``progress(done, total)`` is called after each fold. Raises MissingDependencyError naming
    the package when a configured member cannot be built.
    """
    if not candles:
        raise ConfigurationError("walk-forward training got no candles; pass at least one symbol")
    require_packages(settings.models)
    step = int(timeframe_delta(timeframe).value)
    resolved = _resolve_weights(settings, weights)
    # The result records the context timeframe only when it built the frames itself.
    context_timeframe: str | None = None
    if higher is None:
        higher = higher_context(candles, timeframe, settings.higher_timeframe)
        context_timeframe = None if higher is None else settings.higher_timeframe
    pool = _build_pool(candles, settings.horizon, higher)
    starts = _fold_starts(pool, settings, step)
    outputs = {name: np.full(len(pool.labels), np.nan) for name in (ENSEMBLE, *settings.models)}

    folds: list[FoldReport] = []
    last_models: FittedEnsemble | None = None
    context = (settings, resolved, threads, step, calibration)
    for index, test_start in enumerate(starts):
        report, models = _run_fold(index, test_start, pool, context, outputs)
        folds.append(report)
        last_models = models or last_models
        if progress is not None:
            progress(index + 1, len(starts))

    def split(values: FloatArray) -> dict[str, FloatArray]:
        bounds = zip(pool.offsets[:-1], pool.offsets[1:], strict=True)
        return {s: values[a:b].copy() for s, (a, b) in zip(pool.symbols, bounds, strict=True)}

    member_outputs = {name: split(outputs[name]) for name in settings.models}
    votes: dict[str, dict[str, FloatArray]] = {
        s: {name: member_outputs[name][s] for name in settings.models} for s in pool.symbols
    }
    logger.info("Walk-forward finished: %d folds over %d symbols.", len(folds), len(pool.symbols))
    return WalkForwardResult(
        probability=split(outputs[ENSEMBLE]),
        votes=votes,
        labels=split(pool.labels),
        folds=folds,
        models=last_models,
        settings=settings,
        timeframe=timeframe,
        higher_timeframe=context_timeframe,
    )
