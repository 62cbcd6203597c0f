"""Feature drift measured by the population stability index (PSI).

With ``e_k`` the share of the expected (training) sample and ``a_k`` the share of the actual
(recent) sample in bin ``k``::

    PSI = sum over k of (a_k - e_k) * ln(a_k / e_k)

The bins are quantile bins of the expected sample: the interior edges are its quantiles at
``1/bins, 2/bins, ..., (bins-1)/bins`` (numpy's linear interpolation), and bin ``k`` contains the
values ``x`` with ``edge[k-1] <= x < edge[k]``, and the outer bins are open. Repeated edges (a
feature with few distinct values) are merged, so fewer bins remain. An empty bin would make the
logarithm infinite, so each share is raised to at least ``PSI_EPSILON`` before the sum, without
renormalising. NaN values are dropped.

Common reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a large shift. For a
normal feature and 10 bins, a shift of the mean by 2 standard deviations gives a population PSI
of 0.205 when a quarter of the recent sample has shifted, 0.281 at 30% and 3.31 at 100%.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError

FloatArray = npt.NDArray[np.float64]
PSI_EPSILON = 1e-4
MIN_EXPECTED_VALUES = 20


class FoldWindows(Protocol):
    """The training and test spans of one walk-forward fold (UTC, end exclusive)."""

    @property
    def train_start(self) -> pd.Timestamp: ...
    @property
    def train_end(self) -> pd.Timestamp: ...
    @property
    def test_start(self) -> pd.Timestamp: ...
    @property
    def test_end(self) -> pd.Timestamp: ...


def _finite(sample: npt.ArrayLike, label: str) -> FloatArray:
    values = np.asarray(sample, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ConfigurationError(f"the {label} sample has no finite values; pass a non-empty one")
    return values


def _check_bins(bins: int) -> None:
    if bins < 2:
        raise ConfigurationError(f"PSI needs at least 2 bins, got bins={bins}")


def quantile_edges(expected: npt.ArrayLike, bins: int = 10) -> FloatArray:
    """Return the distinct interior bin edges: the quantiles of ``expected`` at k/bins."""
    _check_bins(bins)
    values = _finite(expected, "expected")
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.unique(np.quantile(values, levels))


def bin_shares(sample: FloatArray, edges: FloatArray) -> FloatArray:
    """Return the share of ``sample`` (finite values) in each bin that ``edges`` delimit."""
    index = np.searchsorted(edges, sample, side="right")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return counts / len(sample)


def psi_from_shares(actual: FloatArray, expected: FloatArray) -> FloatArray:
    """Sum ``(a - e) ln(a / e)`` over the last axis, with both shares floored at the epsilon."""
    a = np.maximum(actual, PSI_EPSILON)
    e = np.maximum(expected, PSI_EPSILON)
    return np.asarray(np.sum((a - e) * np.log(a / e), axis=-1), dtype=np.float64)


def population_stability_index(
    expected: npt.ArrayLike, actual: npt.ArrayLike, bins: int = 10
) -> float:
    """Return the PSI of ``actual`` against quantile bins of ``expected``; see the module doc."""
    edges = quantile_edges(expected, bins)
    expected_shares = bin_shares(_finite(expected, "expected"), edges)
    actual_shares = bin_shares(_finite(actual, "actual"), edges)
    return float(psi_from_shares(actual_shares, expected_shares))


def feature_drift(
    train_features: npt.ArrayLike,
    recent_features: npt.ArrayLike,
    names: Sequence[str],
    bins: int = 10,
) -> dict[str, float]:
    """Return the PSI of each feature column of ``recent_features`` against ``train_features``."""
    train = np.asarray(train_features, dtype=np.float64)
    recent = np.asarray(recent_features, dtype=np.float64)
    if train.ndim != 2 or recent.ndim != 2:
        raise ConfigurationError(
            f"feature drift needs 2-D arrays (rows x features), got {train.ndim}-D training "
            f"and {recent.ndim}-D recent features"
        )
    if train.shape[1] != len(names) or recent.shape[1] != len(names):
        raise ConfigurationError(
            f"feature drift got {len(names)} names for {train.shape[1]} training and "
            f"{recent.shape[1]} recent feature columns; pass one name per column"
        )
    return {
        name: population_stability_index(train[:, k], recent[:, k], bins)
        for k, name in enumerate(names)
    }


def psi_series(
    expected: npt.ArrayLike, series: npt.ArrayLike, window: int, bins: int = 10
) -> FloatArray:
    """Return, for each row ``i``, the PSI of ``series[i-window+1 .. i]`` against ``expected``.

    Causal: row ``i`` reads rows ``<= i`` only. NaN while the window is not full or contains a NaN.
    """
    if window < 1:
        raise ConfigurationError(f"the PSI window must be at least 1 row, got {window}")
    edges = quantile_edges(expected, bins)
    expected_shares = bin_shares(_finite(expected, "expected"), edges)
    values = np.asarray(series, dtype=np.float64).ravel()
    return _rolling_psi(values[:, None], [edges], [expected_shares], window)[:, 0]


def _rolling_psi(
    values: FloatArray, edges: list[FloatArray], expected: list[FloatArray], window: int
) -> FloatArray:
    """PSI of the last ``window`` rows of each column of ``values`` (rows x features)."""
    rows, columns = values.shape
    result = np.full((rows, columns), np.nan)
    if rows < window:
        return result
    for k in range(columns):
        column = values[:, k]
        finite = np.isfinite(column)
        bins = len(edges[k]) + 1
        index = np.searchsorted(edges[k], np.where(finite, column, 0.0), side="right")
        # One-hot counts per bin, cumulated, give every window's histogram by one subtraction.
        onehot = np.zeros((rows + 1, bins))
        onehot[np.arange(1, rows + 1)[finite], index[finite]] = 1.0
        cumulated = np.cumsum(onehot, axis=0)
        missing = np.concatenate(([0], np.cumsum(~finite)))
        counts = cumulated[window:] - cumulated[:-window]
        full = (missing[window:] - missing[:-window]) == 0
        psi = psi_from_shares(counts / window, expected[k])
        result[window - 1 :, k] = np.where(full, psi, np.nan)
    return result


def drift_by_fold(
    features: npt.ArrayLike,
    times: npt.ArrayLike,
    folds: Sequence[FoldWindows],
    window: int,
    bins: int = 10,
) -> FloatArray:
    """Return the highest feature PSI per row, each fold's test rows against its training rows.

    ``folds`` are the walk-forward ``FoldReport``s (any object with the four timestamps works).
    ``features`` is one symbol's matrix (rows x features) and ``times`` its candle open times in
    int64 nanoseconds. For a row in the test window of a fold, each feature's last ``window``
    rows are compared with that symbol's rows in the fold's training span ``[train_start,
    train_end)``. Rows outside every test window, folds with fewer than 20 finite training
    values in a feature, and windows that contain a NaN give NaN for that feature.

    NOTE: with a 200-row window, unshifted normal noise reached a PSI of 0.21 in 1 of 10 random
    seeds, and autocorrelated market features drift more, so the veto rate on real data is
    unmeasured.
    """
    matrix = np.asarray(features, dtype=np.float64)
    stamps = np.asarray(times, dtype=np.int64)
    if matrix.ndim != 2 or len(matrix) != len(stamps):
        raise ConfigurationError(
            f"drift_by_fold needs a rows x features matrix with one time per row, got shape "
            f"{matrix.shape} and {len(stamps)} times"
        )
    _check_bins(bins)
    if window < 1:
        raise ConfigurationError(f"the PSI window must be at least 1 row, got {window}")
    result = np.full(len(matrix), np.nan)
    for fold in folds:
        train = (stamps >= fold.train_start.value) & (stamps < fold.train_end.value)
        test = np.flatnonzero((stamps >= fold.test_start.value) & (stamps < fold.test_end.value))
        if len(test) == 0:
            continue
        first = max(int(test[0]) - window + 1, 0)
        psi = _fold_psi(matrix[train], matrix[first : int(test[-1]) + 1], window, bins)
        # fmax skips NaN and stays NaN only where every feature is NaN.
        highest = np.fmax.reduce(psi, axis=1)
        result[test] = highest[test - first]
    return result


def _fold_psi(train: FloatArray, recent: FloatArray, window: int, bins: int) -> FloatArray:
    edges: list[FloatArray] = []
    expected: list[FloatArray] = []
    usable: list[bool] = []
    for k in range(train.shape[1]):
        column = train[:, k]
        finite = column[np.isfinite(column)]
        usable.append(len(finite) >= MIN_EXPECTED_VALUES)
        if usable[-1]:
            edges.append(quantile_edges(finite, bins))
            expected.append(bin_shares(finite, edges[-1]))
        else:
            edges.append(np.zeros(0))
            expected.append(np.ones(1))
    psi = _rolling_psi(recent, edges, expected, window)
    psi[:, ~np.asarray(usable, dtype=bool)] = np.nan
    return psi
