"""Causal model health statistics for the Model Supervisor, vectorised over whole series.

For each member and for the ensemble of one symbol, at every row ``i``:

- Resolved predictions: the label of row ``j`` compares ``close[j + horizon]`` with ``close[j]``,
  so it is known at the close of row ``j + horizon``. At row ``i`` the predictions of rows
  ``j <= i - horizon`` with a finite probability and a finite label are resolved.
- Hit rate and Brier score over the last ``window`` resolved predictions. A probability above
  0.5 is an up call and any other a down call, and the call hits when it matches the label.
  Brier score = mean of ``(p - label)^2``.
- Directional bias: the share of long calls (``p > 0.5``) and of short calls (``p < 0.5``) among
  the last ``bias_window`` calls up to and including row ``i``. A NaN or exactly 0.5 is no call.
  No label is needed, so the current row counts.
- Flags (``VetoReason`` bits): a series is biased once ``min_samples`` calls were seen and one
  side's share exceeds ``max_bias``. It is decayed once ``min_samples`` resolved predictions are
  in the window and the hit rate is below ``min_hit_rate`` or the Brier score above
  ``max_brier``.

Weights: a member with any flag is unhealthy and gets weight 0. With ``K`` healthy members,
``skill = max(hit_rate - 0.5, 0)`` and ``f = weight_floor``, a healthy member gets
``w = f / K + (1 - f) * skill / sum(skill)``, so the weights sum to 1 and none falls below
``f / K`` (``f`` is a share of the equal weight ``1 / K``). While a healthy member has fewer
than ``min_samples`` resolved predictions, or no member has skill, the healthy members share
equally. With no healthy member the weights stay equal and the row is vetoed.

The reweighted probability is ``sum(w_m * vote_m)``, NaN where a member with a positive weight
has no vote. With ``cadence > 1``, statistics, flags and weights are computed at rows that are a
multiple of ``cadence`` and held until the next one, while votes stay current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.core.types import PositionSide
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
FlagArray = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
ENSEMBLE = "ensemble"


class SupervisorSettings(BaseModel):
    """Model Supervisor settings, with windows and counts in rows (candles) or predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(1, ge=1, le=10_000, description="Candles between weight updates.")
    window: int = Field(200, ge=1, le=1_000_000, description="Resolved predictions per statistic.")
    min_samples: int = Field(50, ge=1, le=1_000_000, description="Samples before any veto.")
    bias_window: int = Field(50, ge=1, le=1_000_000, description="Last calls in the bias share.")
    max_bias: float = Field(0.85, gt=0.5, le=1.0, description="Max share of one side's calls.")
    min_hit_rate: float = Field(0.48, ge=0.0, le=1.0, description="Decayed below this hit rate.")
    max_brier: float = Field(0.27, gt=0.0, le=1.0, description="Decayed above this Brier score.")
    # None by default: on the shipped candles a 200-row PSI of autocorrelated features stayed
    # above 0.25 for most rows, so a drift veto blocked nearly every candidate. Drift then only
    # raises retraining requests (retrain_psi).
    psi_threshold: float | None = Field(
        None, gt=0.0, description="Veto above this feature PSI; None: drift never vetoes."
    )
    psi_bins: int = Field(10, ge=2, le=100, description="Quantile bins of the PSI.")
    drift_window: int = Field(200, ge=10, le=1_000_000, description="Recent rows per PSI.")
    weight_floor: float = Field(0.1, ge=0.0, le=1.0, description="Min weight / equal weight.")
    retrain_psi: float = Field(0.2, gt=0.0, description="Request retraining above this PSI.")
    retrain_on_decay: bool = Field(True, description="Request retraining of a decayed member.")

    @model_validator(mode="after")
    def _check_samples(self) -> SupervisorSettings:
        if self.min_samples > self.window:
            raise ValueError(
                f"supervisor.min_samples={self.min_samples} exceeds supervisor.window="
                f"{self.window}, so the decay rule could never apply; lower min_samples"
            )
        return self


class VetoReason(IntFlag):
    """Bit flags of the rules a model or a row breaks; several bits may be set."""

    NONE = 0
    BIASED_LONG = 1
    BIASED_SHORT = 2
    LOW_HIT_RATE = 4
    HIGH_BRIER = 8
    FEATURE_DRIFT = 16
    NO_HEALTHY_MEMBER = 32


DECAYED = VetoReason.LOW_HIT_RATE | VetoReason.HIGH_BRIER
_BIASED_LONG = int(VetoReason.BIASED_LONG)
_BIASED_SHORT = int(VetoReason.BIASED_SHORT)
_LOW_HIT_RATE = int(VetoReason.LOW_HIT_RATE)
_HIGH_BRIER = int(VetoReason.HIGH_BRIER)
_FEATURE_DRIFT = int(VetoReason.FEATURE_DRIFT)
_NO_HEALTHY_MEMBER = int(VetoReason.NO_HEALTHY_MEMBER)


def reasons_for_side(flags: int, side: PositionSide) -> VetoReason:
    """Keep the bias bit of ``side`` only: a long bias vetoes long entries, not short ones."""
    other = VetoReason.BIASED_SHORT if side is PositionSide.LONG else VetoReason.BIASED_LONG
    return VetoReason(int(flags) & ~int(other))


@dataclass(frozen=True)
class SupervisionArrays:
    """One symbol's supervision, one value per candle row.

    ``hit_rate``, ``brier``, ``samples`` (resolved predictions in the window), ``long_share``,
    ``short_share`` and ``flags`` are keyed by member name and ``"ensemble"``. The ensemble's
    flags also carry ``FEATURE_DRIFT`` and ``NO_HEALTHY_MEMBER``. ``veto_reason`` keeps the bias
    bit of the ensemble's own side at that row (none where it makes no call), and ``veto`` is
    ``veto_reason != 0``. ``drift`` is the feature PSI given to ``supervise``, else NaN.
    """

    members: tuple[str, ...]
    hit_rate: dict[str, FloatArray]
    brier: dict[str, FloatArray]
    samples: dict[str, IntArray]
    long_share: dict[str, FloatArray]
    short_share: dict[str, FloatArray]
    flags: dict[str, FlagArray]
    weights: dict[str, FloatArray]
    ensemble: FloatArray
    reweighted: FloatArray
    drift: FloatArray
    veto: BoolArray
    veto_reason: FlagArray

    def __len__(self) -> int:
        return len(self.ensemble)


def _window_sums(
    contributions: list[FloatArray], valid: BoolArray, lag: int, window: int
) -> tuple[list[FloatArray], IntArray]:
    """Sum each contribution over the last ``window`` valid rows at or before row ``i - lag``."""
    rows = len(valid)
    counted = np.cumsum(valid, dtype=np.int64)
    upto = np.zeros(rows, dtype=np.int64)
    if rows > lag:
        upto[lag:] = counted[: rows - lag]
    start = np.maximum(upto - window, 0)
    sums = []
    for values in contributions:
        # Prefix sums over the valid rows only, so a window counts predictions, not rows.
        prefix = np.concatenate(([0.0], np.cumsum(values[valid])))
        sums.append(prefix[upto] - prefix[start])
    return sums, upto - start


@dataclass(frozen=True)
class _SeriesStats:
    hit_rate: FloatArray
    brier: FloatArray
    samples: IntArray
    long_share: FloatArray
    short_share: FloatArray
    flags: FlagArray

    def held(self, rows: IntArray) -> _SeriesStats:
        return _SeriesStats(
            self.hit_rate[rows],
            self.brier[rows],
            self.samples[rows],
            self.long_share[rows],
            self.short_share[rows],
            self.flags[rows],
        )


def _series_stats(
    p: FloatArray, labels: FloatArray, horizon: int, s: SupervisorSettings
) -> _SeriesStats:
    known = np.isfinite(p)
    resolved = known & np.isfinite(labels)
    up = p > 0.5
    hit = (up == (labels > 0.5)).astype(np.float64)
    squared = np.where(resolved, (p - labels) ** 2, 0.0)
    (hits, errors), samples = _window_sums([hit, squared], resolved, horizon, s.window)

    calls = known & (p != 0.5)
    (longs,), in_window = _window_sums([up.astype(np.float64)], calls, 0, s.bias_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        hit_rate = hits / samples
        brier = errors / samples
        long_share = longs / in_window
        short_share = (in_window - longs) / in_window

    flags = np.zeros(len(p), dtype=np.uint8)
    biased = np.cumsum(calls) >= s.min_samples
    flags[biased & (long_share > s.max_bias)] |= _BIASED_LONG
    flags[biased & (short_share > s.max_bias)] |= _BIASED_SHORT
    ready = samples >= s.min_samples
    flags[ready & (hit_rate < s.min_hit_rate)] |= _LOW_HIT_RATE
    flags[ready & (brier > s.max_brier)] |= _HIGH_BRIER
    return _SeriesStats(hit_rate, brier, samples, long_share, short_share, flags)


def _member_weights(
    stats: Mapping[str, _SeriesStats], members: tuple[str, ...], s: SupervisorSettings
) -> tuple[FloatArray, BoolArray]:
    """Return the weights (members x rows) and the rows without any healthy member."""
    healthy = np.stack([stats[m].flags == 0 for m in members])
    ready = np.stack([stats[m].samples >= s.min_samples for m in members])
    hit_rate = np.stack([stats[m].hit_rate for m in members])
    skill = np.where(healthy & ready, np.maximum(np.nan_to_num(hit_rate) - 0.5, 0.0), 0.0)

    count = healthy.sum(axis=0)
    total = skill.sum(axis=0)
    scored = (ready | ~healthy).all(axis=0) & (total > 0.0)
    equal = healthy / np.maximum(count, 1)
    share = skill / np.where(total > 0.0, total, 1.0)
    weights = np.where(scored, s.weight_floor * equal + (1.0 - s.weight_floor) * share, equal)

    none = count == 0
    weights[:, none] = 1.0 / len(members)
    return weights, none


def _check_inputs(
    votes: Mapping[str, npt.ArrayLike], ensemble: FloatArray, labels: FloatArray, horizon: int
) -> dict[str, FloatArray]:
    if not votes:
        raise ConfigurationError("supervise got no member votes; pass at least one member")
    if horizon < 1:
        raise ConfigurationError(f"the label horizon must be at least 1 candle, got {horizon}")
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in votes.items()}
    for name, values in {**arrays, ENSEMBLE: ensemble, "labels": labels}.items():
        if values.shape != ensemble.shape or values.ndim != 1:
            raise ConfigurationError(
                f"supervise: {name} has shape {values.shape}, the ensemble {ensemble.shape}; "
                "pass one value per candle row for every series"
            )
        finite = values[np.isfinite(values)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            raise ConfigurationError(
                f"supervise: {name} has values outside [0, 1]; pass probabilities and 0/1 labels"
            )
    return arrays


def supervise(
    votes: Mapping[str, npt.ArrayLike],
    ensemble: npt.ArrayLike,
    labels: npt.ArrayLike,
    horizon: int,
    settings: SupervisorSettings,
    *,
    drift: npt.ArrayLike | None = None,
) -> SupervisionArrays:
    """Compute one symbol's supervision by the rules of the module docstring.

    ``drift`` is an optional per-row feature PSI (``drift_by_fold``); a row above
    ``psi_threshold`` is flagged ``FEATURE_DRIFT``.
    """
    p = np.asarray(ensemble, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    member_votes = _check_inputs(votes, p, y, horizon)
    members = tuple(member_votes)
    psi = np.full(len(p), np.nan) if drift is None else np.asarray(drift, dtype=np.float64)
    if psi.shape != p.shape:
        raise ConfigurationError(f"supervise: drift has shape {psi.shape}, expected {p.shape}")

    stats = {name: _series_stats(member_votes[name], y, horizon, settings) for name in members}
    stats[ENSEMBLE] = _series_stats(p, y, horizon, settings)
    weights, none_healthy = _member_weights(stats, members, settings)
    stats[ENSEMBLE].flags[none_healthy] |= _NO_HEALTHY_MEMBER
    if settings.psi_threshold is not None:
        stats[ENSEMBLE].flags[psi > settings.psi_threshold] |= _FEATURE_DRIFT

    held = (np.arange(len(p)) // settings.cadence) * settings.cadence
    stats = {name: table.held(held) for name, table in stats.items()}
    weights = weights[:, held]
    veto_reason = _side_reasons(stats[ENSEMBLE].flags, p)
    return SupervisionArrays(
        members=members,
        hit_rate={name: table.hit_rate for name, table in stats.items()},
        brier={name: table.brier for name, table in stats.items()},
        samples={name: table.samples for name, table in stats.items()},
        long_share={name: table.long_share for name, table in stats.items()},
        short_share={name: table.short_share for name, table in stats.items()},
        flags={name: table.flags for name, table in stats.items()},
        weights={name: weights[k] for k, name in enumerate(members)},
        ensemble=p,
        reweighted=_reweight(member_votes, members, weights, p),
        drift=psi,
        veto=veto_reason != 0,
        veto_reason=veto_reason,
    )


def _reweight(
    votes: Mapping[str, FloatArray], members: tuple[str, ...], w: FloatArray, p: FloatArray
) -> FloatArray:
    """Shift the calibrated ensemble by what the weights change in the members' mean vote.

    ``p + sum((w_m - 1/K) * vote_m)``, clipped to [0, 1]: with equal weights it is exactly the
    ensemble, so a difference comes from the reweighting alone, never from the ensemble's own
    calibration.
    """
    stacked = np.stack([votes[m] for m in members])
    missing = ((w > 0.0) & ~np.isfinite(stacked)).any(axis=0)
    excess = w - 1.0 / len(members)
    excess[np.abs(excess) < 1e-12] = 0.0
    shift = (excess * np.nan_to_num(stacked, nan=0.0)).sum(axis=0)
    return np.where(missing, np.nan, np.clip(p + shift, 0.0, 1.0))


def _side_reasons(flags: FlagArray, p: FloatArray) -> FlagArray:
    """Drop the bias bits of the side the ensemble does not call at each row."""
    reasons = flags.copy()
    reasons[~(p > 0.5)] &= np.uint8(0xFF ^ _BIASED_LONG)
    reasons[~(p < 0.5)] &= np.uint8(0xFF ^ _BIASED_SHORT)
    return reasons
