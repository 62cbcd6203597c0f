"""Model Supervisor: ensemble weights, vetoes of biased or decayed models, retrain requests.

The statistics and rules live in ``model_health`` (vectorised over whole series, causal) and
``feature_drift`` (PSI). A backtest calls ``supervise`` once per symbol and ``attach``es the
result. A live loop calls ``update`` with its history buffer at each cadence point, which runs
the same ``supervise`` code. At a candidate's candle close ``review`` reads one row.

Counters: ``seen`` counts reviewed candidates in every active mode. ``vetoed`` and ``changed``
count only while enforced, because only then does the verdict alter the outcome. ``changed``
counts candidates whose entry the reweighted probability flips at the entry threshold and that
are not already vetoed. ``flagged`` counts candidates the rules would veto, in any mode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from quantum_trader.core.types import PositionSide
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.feature_drift import feature_drift
from quantum_trader.subsystems.model_health import (
    DECAYED,
    ENSEMBLE,
    SupervisionArrays,
    SupervisorSettings,
    VetoReason,
    reasons_for_side,
    supervise,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Mode",
    "ModelSupervisor",
    "RetrainRequest",
    "SupervisionArrays",
    "SupervisorSettings",
    "SupervisorVerdict",
    "VetoReason",
    "supervise",
]


@dataclass(frozen=True, slots=True)
class SupervisorVerdict:
    """The supervisor's verdict on one candidate.

    ``veto`` is true when the rules block it, and ``changed`` when the reweighted probability
    does not enter where the plain ensemble does (or the reverse). Both bind only when
    ``binding`` is true (enforced mode), so a pipeline must act on ``blocks``.
    """

    veto: bool
    binding: bool
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    changed: bool = False
    reweighted: float = math.nan

    @property
    def blocks(self) -> bool:
        """Whether the pipeline must drop the candidate."""
        return self.binding and (self.veto or self.changed)


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """A request to retrain ``model`` (a member name, or "ensemble" for feature drift)."""

    time_ns: int
    model: str
    reason: str


def _enters(p: float, side: PositionSide, threshold: float) -> bool:
    if not math.isfinite(p):
        return False
    # 1 - p is compared with the threshold, as the AI strategy's short rule does.
    return p >= threshold if side is PositionSide.LONG else 1.0 - p >= threshold


class ModelSupervisor(Subsystem):
    """Holds each symbol's supervision arrays and reviews candidates against them."""

    name = "Model Supervisor"
    short_name = "Model Supervisor"

    def __init__(self, settings: SupervisorSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self.flagged = 0
        self.retrain_requests: list[RetrainRequest] = []
        self._arrays: dict[str, SupervisionArrays] = {}
        self._open_requests: set[tuple[str, str, str]] = set()

    def attach(self, symbol: str, arrays: SupervisionArrays) -> None:
        """Store the supervision arrays that ``review`` reads for ``symbol``."""
        self._arrays[symbol] = arrays

    def update(
        self,
        symbol: str,
        votes: Mapping[str, npt.ArrayLike],
        ensemble: npt.ArrayLike,
        labels: npt.ArrayLike,
        horizon: int,
        *,
        drift: npt.ArrayLike | None = None,
    ) -> SupervisionArrays:
        """Run ``supervise`` on the symbol's history and attach the result (the live path)."""
        arrays = supervise(votes, ensemble, labels, horizon, self.settings, drift=drift)
        self.attach(symbol, arrays)
        self.heartbeat()
        return arrays

    def arrays(self, symbol: str) -> SupervisionArrays:
        """Return the arrays attached for ``symbol``."""
        try:
            return self._arrays[symbol]
        except KeyError:
            raise ConfigurationError(
                f"the Model Supervisor has no arrays for {symbol}; call attach or update first"
            ) from None

    def changes_entry(
        self, symbol: str, row: int, side: PositionSide, entry_confidence: float
    ) -> bool:
        """Return whether the plain and the reweighted ensemble disagree about entering.

        An entry on ``side`` at ``entry_confidence`` follows the AI strategy's rule: long when
        ``p >= entry_confidence``, short when ``1 - p >= entry_confidence``.
        The reweighted probability is the ensemble shifted by the weights' effect on the mean
        vote, so with equal weights the two never disagree.
        """
        arrays = self._row_arrays(symbol, row)
        plain = _enters(float(arrays.ensemble[row]), side, entry_confidence)
        return plain != _enters(float(arrays.reweighted[row]), side, entry_confidence)

    def review(
        self,
        time_ns: int,
        symbol: str,
        row: int,
        side: PositionSide,
        *,
        entry_confidence: float | None = None,
    ) -> SupervisorVerdict:
        """Review a candidate on ``side`` decided at the close of ``row``, and record it.

        With ``entry_confidence`` given, the verdict also reports whether reweighting changes the
        entry decision (see ``changes_entry``). Retrain requests are raised here as a side
        effect, in every active mode.
        """
        if not self.active:
            return SupervisorVerdict(False, False, "the Model Supervisor is off")
        arrays = self._row_arrays(symbol, row)
        reasons = reasons_for_side(int(arrays.flags[ENSEMBLE][row]), side)
        numbers = self._numbers(arrays, row)
        weights = {m: float(arrays.weights[m][row]) for m in arrays.members}
        changed = False
        if entry_confidence is not None:
            changed = self.changes_entry(symbol, row, side, entry_confidence)
        self._request_retraining(time_ns, symbol, arrays, row)

        veto = reasons != VetoReason.NONE
        reason = _describe(reasons, numbers, self.settings) if veto else "models healthy"
        if changed and not veto:
            reason = "the reweighted probability changes the entry decision"
        verdict = SupervisorVerdict(
            veto, self.binding, reason, numbers, weights, changed, numbers["reweighted"]
        )
        self._count_and_record(time_ns, symbol, verdict)
        return verdict

    def check_drift(
        self,
        time_ns: int,
        symbol: str,
        train_features: npt.ArrayLike,
        recent_features: npt.ArrayLike,
        names: Sequence[str],
    ) -> dict[str, float]:
        """Return each feature's PSI and request retraining when one exceeds ``retrain_psi``."""
        psi = feature_drift(train_features, recent_features, names, self.settings.psi_bins)
        drifted = {name: value for name, value in psi.items() if value > self.settings.retrain_psi}
        if drifted and self.active:
            worst = max(drifted, key=drifted.__getitem__)
            detail = (
                f"{len(drifted)} features drifted on {symbol}, the largest {worst} with PSI "
                f"{drifted[worst]:.3f} above retrain_psi {self.settings.retrain_psi}"
            )
            self._request(time_ns, symbol, ENSEMBLE, "drift", detail)
        elif self.active:
            self._open_requests.discard((symbol, ENSEMBLE, "drift"))
        self.heartbeat()
        return psi

    def _row_arrays(self, symbol: str, row: int) -> SupervisionArrays:
        arrays = self.arrays(symbol)
        if not 0 <= row < len(arrays):
            raise ConfigurationError(
                f"row {row} is outside the {len(arrays)} supervised rows of {symbol}; "
                "attach arrays that cover the candle being reviewed"
            )
        return arrays

    @staticmethod
    def _numbers(arrays: SupervisionArrays, row: int) -> dict[str, float]:
        numbers = {
            "ensemble": float(arrays.ensemble[row]),
            "reweighted": float(arrays.reweighted[row]),
            "hit_rate": float(arrays.hit_rate[ENSEMBLE][row]),
            "brier": float(arrays.brier[ENSEMBLE][row]),
            "samples": float(arrays.samples[ENSEMBLE][row]),
            "long_share": float(arrays.long_share[ENSEMBLE][row]),
            "short_share": float(arrays.short_share[ENSEMBLE][row]),
            "drift": float(arrays.drift[row]),
        }
        for member in arrays.members:
            numbers[f"{member}.hit_rate"] = float(arrays.hit_rate[member][row])
            numbers[f"{member}.brier"] = float(arrays.brier[member][row])
            numbers[f"{member}.weight"] = float(arrays.weights[member][row])
        return numbers

    def _count_and_record(self, time_ns: int, symbol: str, verdict: SupervisorVerdict) -> None:
        self.seen += 1
        self.flagged += int(verdict.veto)
        if verdict.binding:
            self.vetoed += int(verdict.veto)
            self.changed += int(verdict.changed and not verdict.veto)
        if verdict.blocks:
            self.record(time_ns, symbol, Action.VETO, verdict.reason, verdict.numbers)
        elif verdict.veto or verdict.changed:
            note = f"would block, not binding: {verdict.reason}"
            self.record(time_ns, symbol, Action.APPROVE, note, verdict.numbers)
        else:
            self.record(time_ns, symbol, Action.APPROVE, verdict.reason, verdict.numbers)

    def _request_retraining(
        self, time_ns: int, symbol: str, arrays: SupervisionArrays, row: int
    ) -> None:
        for member in arrays.members:
            decayed = bool(int(arrays.flags[member][row]) & DECAYED)
            if decayed and self.settings.retrain_on_decay:
                detail = (
                    f"{member} decayed on {symbol}: hit rate "
                    f"{arrays.hit_rate[member][row]:.3f} (min {self.settings.min_hit_rate}), "
                    f"Brier score {arrays.brier[member][row]:.3f} "
                    f"(max {self.settings.max_brier}) over {arrays.samples[member][row]} "
                    "resolved predictions"
                )
                self._request(time_ns, symbol, member, "decay", detail)
            elif not decayed:
                self._open_requests.discard((symbol, member, "decay"))

        psi = float(arrays.drift[row])
        if psi > self.settings.retrain_psi:
            detail = (
                f"feature drift on {symbol}: PSI {psi:.3f} above retrain_psi "
                f"{self.settings.retrain_psi}"
            )
            self._request(time_ns, symbol, ENSEMBLE, "drift", detail)
        elif np.isfinite(psi):
            self._open_requests.discard((symbol, ENSEMBLE, "drift"))

    def _request(self, time_ns: int, symbol: str, model: str, kind: str, detail: str) -> None:
        """Append a retrain request unless the same one is still open (not yet cleared)."""
        key = (symbol, model, kind)
        if key in self._open_requests:
            return
        self._open_requests.add(key)
        self.retrain_requests.append(RetrainRequest(time_ns, model, detail))
        logger.info("Model Supervisor requests retraining of %s: %s.", model, detail)


def _describe(reasons: VetoReason, numbers: Mapping[str, float], s: SupervisorSettings) -> str:
    parts: list[str] = []
    if reasons & VetoReason.BIASED_LONG:
        parts.append(f"long share {numbers['long_share']:.2f} above max_bias {s.max_bias}")
    if reasons & VetoReason.BIASED_SHORT:
        parts.append(f"short share {numbers['short_share']:.2f} above max_bias {s.max_bias}")
    if reasons & VetoReason.LOW_HIT_RATE:
        parts.append(f"hit rate {numbers['hit_rate']:.3f} below {s.min_hit_rate}")
    if reasons & VetoReason.HIGH_BRIER:
        parts.append(f"Brier score {numbers['brier']:.3f} above {s.max_brier}")
    if reasons & VetoReason.FEATURE_DRIFT:
        parts.append(f"feature PSI {numbers['drift']:.3f} above {s.psi_threshold}")
    if reasons & VetoReason.NO_HEALTHY_MEMBER:
        parts.append("every member is biased or decayed")
    return "ensemble vetoed: " + ", ".join(parts)
