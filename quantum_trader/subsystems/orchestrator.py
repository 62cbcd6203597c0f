"""Orchestrator Policy: one trading policy per cycle from the market, MSC AI and AI-HFOS.

At each cadence point ``decide`` turns the regime, volatility, trading cost, ensemble quality,
MSC AI's output and AI-HFOS's directives into a ``TradingPolicy``. Between cadence points
``allows`` checks each entry candidate against it. The rules are applied in this order
(default values):

| step | rule                                                  | effect                           |
|------|-------------------------------------------------------|----------------------------------|
| 1    | binding AI-HFOS directives                            | confidence floor, risk x size    |
|      |                                                       | scale, max positions, leverage   |
|      |                                                       | cap; critical: no new trades     |
| 2    | MSC AI has no active profile                          | no new trades                    |
| 3    | regime "volatile" or volatility > volatility_high,    | risk x 0.5, entry style limit    |
|      | or either unknown                                     |                                  |
| 4    | regime "trending"                                     | exit style trailing              |
| 5    | ensemble hit rate < 0.5 (None or NaN: not applied)    | min confidence + 0.02            |
| 6    | round trip cost > 0.5 x volatility, or either unknown | min confidence + 0.02            |
| 7    | combine                                               | see below                        |

Combination: ``min_confidence = max(base, directive floor)`` plus the raises of steps 5 and 6,
capped at 0.95 (a base or floor above the cap stays as it is). ``risk_per_trade = base x
size_scale x volatile scale``. ``max_positions = min(base, directive max positions)``. New
trades stop when max positions is 0 or the universe is empty. Otherwise the entry style is
market and the exit style fixed.

``volatility`` is the per-candle volatility as a fraction of price: the standard deviation of
returns, or the ATR over the close. ``round_trip_cost`` is the fees and slippage of an entry and
an exit as a fraction of notional, so both share one unit. MSC AI's risk mode is
recorded but not applied here, because MSC AI scales the risk per trade itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.meta_inputs import REGIMES, TRENDING, VOLATILE
from quantum_trader.subsystems.meta_strategy import RiskMode
from quantum_trader.subsystems.supervisor_os import Directives, GlobalMode

__all__ = ["OrchestratorPolicy", "PolicyInputs", "PolicySettings", "TradingPolicy"]

logger = logging.getLogger(__name__)

EntryStyle = Literal["market", "limit"]
ExitStyle = Literal["fixed", "trailing"]


class PolicySettings(BaseModel):
    """Settings of the Orchestrator Policy. The module docstring gives the rule table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(24, ge=1, le=10_000, description="Candles between two policies.")
    volatile_risk_scale: float = Field(0.5, gt=0, le=1, description="Risk factor when volatile.")
    poor_hit_rate: float = Field(0.5, ge=0, le=1, description="Ensemble hit rate below this.")
    ensemble_confidence_raise: float = Field(0.02, ge=0, lt=0.5)
    high_cost_ratio: float = Field(
        0.5, gt=0, le=100, description="Round trip cost above this share of volatility is high."
    )
    cost_confidence_raise: float = Field(0.02, ge=0, lt=0.5)
    max_min_confidence: float = Field(0.95, gt=0.5, lt=1, description="Cap on the raises.")


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """The policy's inputs at one cadence point. The module docstring gives the units.

    ``ensemble_quality`` is the ensemble's hit rate, None without an ML ensemble or before
    enough predictions resolved. ``directives`` is AI-HFOS's latest output, or None.
    """

    regime: str
    volatility: float
    volatility_high: float
    risk_mode: RiskMode
    msc_active_profiles: frozenset[str]
    ensemble_quality: float | None
    round_trip_cost: float
    directives: Directives | None
    base_min_confidence: float
    base_risk_per_trade: float
    base_max_positions: int
    universe: Sequence[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TradingPolicy:
    """The policy in force until the next cadence point.

    ``binding`` is True only in enforced mode. ``leverage_cap`` is the binding AI-HFOS cap for
    the sizing, or None when no directive caps the leverage.
    """

    allow_new_trades: bool
    min_confidence: float
    risk_per_trade: float
    max_positions: int
    allowed_symbols: frozenset[str]
    entry_style: EntryStyle
    exit_style: ExitStyle
    reason: str
    binding: bool
    leverage_cap: float | None = None

    def limits(self) -> tuple[object, ...]:
        """Return every field except the reason and the binding flag."""
        return (
            self.allow_new_trades,
            self.min_confidence,
            self.risk_per_trade,
            self.max_positions,
            self.allowed_symbols,
            self.entry_style,
            self.exit_style,
            self.leverage_cap,
        )


@dataclass(slots=True)
class _Draft:
    """A policy under construction, with the notes that become its reason."""

    allow: bool = True
    floor: float = 0.0
    raises: float = 0.0
    size_scale: float = 1.0
    max_positions: int | None = None
    leverage_cap: float | None = None
    entry_style: EntryStyle = "market"
    exit_style: ExitStyle = "fixed"
    notes: list[str] = field(default_factory=list)


def _check_inputs(inputs: PolicyInputs) -> None:
    if inputs.regime not in REGIMES:
        raise ConfigurationError(f"regime {inputs.regime!r} is unknown; use one of {list(REGIMES)}")
    if not 0.0 < inputs.base_min_confidence < 1.0:
        raise ConfigurationError(
            f"base_min_confidence {inputs.base_min_confidence} is invalid; pass a probability "
            "in (0, 1), the strategy's entry confidence"
        )
    if not (math.isfinite(inputs.base_risk_per_trade) and inputs.base_risk_per_trade > 0):
        raise ConfigurationError(
            f"base_risk_per_trade {inputs.base_risk_per_trade} is invalid; pass a share of "
            "equity above 0, such as 0.01"
        )
    if inputs.base_max_positions < 1:
        raise ConfigurationError(
            f"base_max_positions {inputs.base_max_positions} is invalid; pass at least 1"
        )


class OrchestratorPolicy(Subsystem):
    """Sets the trading policy at each cadence point and, when enforced, vetoes entries.

    Call ``decide`` every ``cadence`` candles (where ``due`` returns True), then ``allows``
    once per entry candidate (this counts it as seen) and ``scale_risk`` on the risk per trade
    of a candidate that passes. Before the first ``decide`` there is no policy and every
    candidate passes. Counters: ``seen`` counts candidates checked, ``vetoed`` the ones blocked
    while enforced, ``changed`` the ones whose risk was scaled while enforced.
    """

    name = "orchestrator policy"
    short_name = "Orchestrator Policy"

    def __init__(self, settings: PolicySettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self._policy: TradingPolicy | None = None
        self._base_risk = 1.0

    @property
    def policy(self) -> TradingPolicy | None:
        """The policy in force, or None before the first ``decide``."""
        return self._policy

    def due(self, step: int) -> bool:
        """Return whether ``step`` is a decision point (every ``cadence`` steps from 0)."""
        return step % self.cadence == 0

    def decide(self, time_ns: int, inputs: PolicyInputs) -> TradingPolicy:
        """Apply the rules to ``inputs``, keep the policy and return it.

        Off mode returns the base policy (base values, market entries, fixed exits) without
        recording it. A NaN volatility or cost never raises: the rules read it in the
        conservative direction and name it in the reason. Raises ConfigurationError on an
        unknown regime or an invalid base value.
        """
        _check_inputs(inputs)
        if not self.active:
            return self._build(inputs, _Draft(notes=["off: base policy"]))
        self.heartbeat()

        draft = _Draft()
        self._apply_directives(inputs.directives, draft)
        if not inputs.msc_active_profiles:
            draft.allow = False
            draft.notes.append("MSC AI has no active strategy profile")
        self._apply_market(inputs, draft)
        self._apply_quality(inputs, draft)
        policy = self._build(inputs, draft)

        previous = self._policy
        if previous is None or previous.limits() != policy.limits():
            self._record_change(time_ns, policy, inputs)
        self._policy = policy
        self._base_risk = inputs.base_risk_per_trade
        return policy

    def allows(
        self, time_ns: int, symbol: str, confidence: float, *, open_positions: int | None = None
    ) -> bool:
        """Return whether an entry on ``symbol`` with ``confidence`` may go ahead.

        Blocked when new trades are not allowed, the symbol is not allowed, the confidence is
        NaN or below the minimum, or ``open_positions`` (when given) already reaches the max
        positions. Enforced, a blocked candidate is counted and recorded as a veto. In observe
        or advisory mode the would-be veto is recorded as an approval and the entry goes ahead.
        Off, every candidate passes uncounted.
        """
        if not self.active:
            return True
        self.seen += 1
        policy = self._policy
        if policy is None:
            return True
        reason = self._veto_reason(policy, symbol, confidence, open_positions)
        if reason is None:
            return True

        numbers = {"confidence": confidence, "min_confidence": policy.min_confidence}
        if self.binding:
            self.vetoed += 1
            self.record(time_ns, symbol, Action.VETO, f"entry vetoed: {reason}", numbers)
            return False
        self.record(time_ns, symbol, Action.APPROVE, f"not enforced, would veto: {reason}", numbers)
        return True

    def risk_scale(self) -> float:
        """Return the policy's risk per trade over the base risk when enforced, else 1.0."""
        if self._policy is None or not self.binding:
            return 1.0
        return self._policy.risk_per_trade / self._base_risk

    def scale_risk(self, time_ns: int, symbol: str, risk: float) -> float:
        """Scale ``risk`` by the policy's risk scale, and count and record a resize.

        In observe or advisory mode ``risk`` comes back unchanged, and a scale other than 1 is
        recorded as an approval that names the scale it would apply. Raises ConfigurationError
        on a negative or non-finite ``risk``.
        """
        if not (math.isfinite(risk) and risk >= 0):
            raise ConfigurationError(f"risk {risk} is invalid; pass a finite fraction >= 0")
        if self._policy is None or not self.active:
            return risk
        scale = self._policy.risk_per_trade / self._base_risk
        if scale == 1.0:
            return risk

        numbers = {"risk": risk, "risk_scale": scale, "scaled_risk": risk * scale}
        if self.binding:
            self.changed += 1
            self.record(time_ns, symbol, Action.RESIZE, f"risk scaled by {scale:g}", numbers)
            return risk * scale
        reason = f"not enforced, would scale risk by {scale:g}"
        self.record(time_ns, symbol, Action.APPROVE, reason, numbers)
        return risk

    @staticmethod
    def _apply_directives(directives: Directives | None, draft: _Draft) -> None:
        if directives is None:
            return
        if not directives.binding:
            draft.notes.append(f"AI-HFOS {directives.global_mode} not binding, ignored")
            return
        draft.floor = directives.confidence_floor
        draft.size_scale = directives.size_scale
        draft.max_positions = directives.max_positions
        draft.leverage_cap = directives.leverage_cap
        draft.notes.append(
            f"AI-HFOS {directives.global_mode}: size x{directives.size_scale:g}, confidence "
            f"floor {directives.confidence_floor:g}, max {directives.max_positions} positions"
        )
        if directives.global_mode is GlobalMode.CRITICAL:
            draft.allow = False
            draft.notes.append("no new trades in critical mode")

    def _apply_market(self, inputs: PolicyInputs, draft: _Draft) -> None:
        # Written as "not <=" so that a NaN volatility or threshold reads as volatile.
        calm = inputs.volatility <= inputs.volatility_high
        if inputs.regime == VOLATILE or not calm:
            draft.size_scale *= self.settings.volatile_risk_scale
            draft.entry_style = "limit"
            draft.notes.append(
                f"volatile ({inputs.regime}, volatility {inputs.volatility:.4g} against "
                f"{inputs.volatility_high:.4g}): risk x{self.settings.volatile_risk_scale:g}, "
                "limit entries"
            )
        if inputs.regime == TRENDING:
            draft.exit_style = "trailing"
            draft.notes.append("trending: trailing exits")

    def _apply_quality(self, inputs: PolicyInputs, draft: _Draft) -> None:
        s = self.settings
        quality = inputs.ensemble_quality
        if quality is not None and quality < s.poor_hit_rate:
            draft.raises += s.ensemble_confidence_raise
            draft.notes.append(
                f"ensemble hit rate {quality:.2%} < {s.poor_hit_rate:.2%}: confidence "
                f"+{s.ensemble_confidence_raise:g}"
            )

        cost, volatility = inputs.round_trip_cost, inputs.volatility
        known = math.isfinite(cost) and cost >= 0 and math.isfinite(volatility) and volatility > 0
        if not known:
            draft.raises += s.cost_confidence_raise
            draft.notes.append(
                f"cost {cost} or volatility {volatility} unknown, read as high cost: confidence "
                f"+{s.cost_confidence_raise:g}"
            )
        elif cost > s.high_cost_ratio * volatility:
            draft.raises += s.cost_confidence_raise
            draft.notes.append(
                f"round trip cost {cost:.4g} > {s.high_cost_ratio:g} x volatility "
                f"{volatility:.4g}: confidence +{s.cost_confidence_raise:g}"
            )

    def _build(self, inputs: PolicyInputs, draft: _Draft) -> TradingPolicy:
        start = max(inputs.base_min_confidence, draft.floor)
        min_confidence = min(start + draft.raises, max(start, self.settings.max_min_confidence))
        max_positions = inputs.base_max_positions
        if draft.max_positions is not None:
            max_positions = min(max_positions, draft.max_positions)
        symbols = frozenset(inputs.universe)

        allow = draft.allow
        if max_positions == 0 and allow:
            allow = False
            draft.notes.append("max positions is 0")
        if not symbols and allow:
            allow = False
            draft.notes.append("the universe is empty")
        verdict = "new trades allowed" if allow else "no new trades"
        reason = "; ".join([verdict, *draft.notes]) if draft.notes else verdict
        return TradingPolicy(
            allow_new_trades=allow,
            min_confidence=min_confidence,
            risk_per_trade=inputs.base_risk_per_trade * draft.size_scale,
            max_positions=max_positions,
            allowed_symbols=symbols,
            entry_style=draft.entry_style,
            exit_style=draft.exit_style,
            reason=reason,
            binding=self.binding,
            leverage_cap=draft.leverage_cap,
        )

    @staticmethod
    def _veto_reason(
        policy: TradingPolicy, symbol: str, confidence: float, open_positions: int | None
    ) -> str | None:
        if not policy.allow_new_trades:
            return f"the policy allows no new trades ({policy.reason})"
        if symbol not in policy.allowed_symbols:
            return f"{symbol} is not among the policy's allowed symbols"
        if not confidence >= policy.min_confidence:  # also true for a NaN confidence
            return f"confidence {confidence:.4g} is below the minimum {policy.min_confidence:.4g}"
        if open_positions is not None and open_positions >= policy.max_positions:
            return f"{open_positions} open positions reach the max of {policy.max_positions}"
        return None

    def _record_change(self, time_ns: int, policy: TradingPolicy, inputs: PolicyInputs) -> None:
        numbers = {
            "allow_new_trades": float(policy.allow_new_trades),
            "min_confidence": policy.min_confidence,
            "risk_per_trade": policy.risk_per_trade,
            "max_positions": float(policy.max_positions),
            "allowed_symbols": float(len(policy.allowed_symbols)),
            "volatility": inputs.volatility,
            "round_trip_cost": inputs.round_trip_cost,
        }
        if inputs.ensemble_quality is not None:
            numbers["ensemble_hit_rate"] = inputs.ensemble_quality
        if policy.leverage_cap is not None:
            numbers["leverage_cap"] = policy.leverage_cap
        reason = f"{policy.reason}; MSC AI {inputs.risk_mode}"
        self.record(time_ns, "*", Action.MODE_CHANGE, reason, numbers)
        logger.info("Orchestrator Policy at %d ns (%s): %s", time_ns, self.mode, reason)
