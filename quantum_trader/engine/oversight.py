"""The oversight layer: AI-HFOS sets the global mode and directives, and the Orchestrator Policy
turns them, with the regime, costs and MSC AI's output, into the trading policy of the cycle.

Both are evaluated lazily at their cadence, when a candidate arrives, from data known at that
candle. In a backtest, subsystem health ignores the heartbeat age, because wall-clock age says
nothing about a simulation that runs faster than real time; a subsystem counts as failed only
when it stopped with an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantum_trader.config import ModelSettings, RiskSettings
from quantum_trader.core.types import Trade
from quantum_trader.engine.selection import SelectionLayer
from quantum_trader.errors import SkipCycle
from quantum_trader.subsystems.base import Health, Subsystem
from quantum_trader.subsystems.emergency_stop import EmergencyStop
from quantum_trader.subsystems.meta_strategy import PROFILES, RANGING, AccountStats, RiskMode
from quantum_trader.subsystems.orchestrator import OrchestratorPolicy, PolicyInputs
from quantum_trader.subsystems.supervisor_os import HedgeFundOS, SystemSnapshot

# Lookback of closed trades for the win rate and profit factor AI-HFOS reads.
RECENT_TRADES = 30


@dataclass(frozen=True)
class OversightVerdict:
    admitted: bool
    risk_scale: float
    leverage_cap: float | None


class OversightLayer:
    """Owns AI-HFOS and the Orchestrator Policy for one run."""

    def __init__(
        self,
        *,
        hfos: HedgeFundOS,
        policy: OrchestratorPolicy,
        emergency_stop: EmergencyStop,
        selection: SelectionLayer | None,
        subsystems: list[Subsystem],
        risk: RiskSettings,
        model: ModelSettings,
        round_trip_cost: float,
    ) -> None:
        self.hfos = hfos
        self.policy = policy
        self.emergency_stop = emergency_stop
        self.selection = selection
        self.subsystems = subsystems
        self.risk = risk
        self.model = model
        self.round_trip_cost = round_trip_cost
        self._hfos_step = -(10**12)
        self._policy_step = -(10**12)

    def admit(
        self,
        *,
        step: int,
        time_ns: int,
        symbol: str,
        confidence: float,
        trades: list[Trade],
        open_positions: int,
        equity_peak: float,
        equity: float,
    ) -> OversightVerdict:
        """Refresh the directives and policy when due, then ask the policy about a candidate."""
        if self.hfos.active and step - self._hfos_step >= self.hfos.cadence:
            self._hfos_step = step
            snapshot = self._snapshot(step, trades, open_positions, equity_peak, equity)
            self.hfos.evaluate(time_ns, snapshot)
        if not self.policy.active:
            return OversightVerdict(True, 1.0, None)
        if step - self._policy_step >= self.policy.cadence:
            self._policy_step = step
            self.policy.decide(time_ns, self._policy_inputs(step))
        allowed = self.policy.allows(time_ns, symbol, confidence, open_positions=open_positions)
        if not allowed:
            return OversightVerdict(False, 1.0, None)
        scale = self.policy.scale_risk(time_ns, symbol, 1.0)
        policy = self.policy.policy
        return OversightVerdict(True, scale, policy.leverage_cap if policy is not None else None)

    def _snapshot(
        self,
        step: int,
        trades: list[Trade],
        open_positions: int,
        equity_peak: float,
        equity: float,
    ) -> SystemSnapshot:
        health = {s.short_name: s.health(max_age=math.inf) for s in self.subsystems if s.running}
        failed = sum(1 for state in health.values() if state is Health.FAILED)
        stats = AccountStats.from_trades(trades, equity_peak, equity, lookback=RECENT_TRADES)
        ess = self.emergency_stop.to_dict()
        day_start = float(ess.get("day_start_equity") or equity)
        daily_loss = max(0.0, (day_start - equity) / day_start) if day_start > 0 else 0.0
        return SystemSnapshot(
            health=health,
            ess_state=str(ess.get("state", "active")),
            drawdown=stats.drawdown,
            daily_loss=daily_loss,
            recent_win_rate=stats.win_rate,
            recent_profit_factor=stats.judged_profit_factor,
            ensemble_hit_rate=self._ensemble_hit_rate(step),
            msc_risk_mode=self._risk_mode().value,
            failed_subsystems=failed,
            open_positions=open_positions,
        )

    def _policy_inputs(self, step: int) -> PolicyInputs:
        selection = self.selection
        regime, volatility, volatile = RANGING, math.nan, math.nan
        universe: list[str] = []
        active = frozenset(PROFILES)
        if selection is not None:
            try:
                regime = selection.regime(step)
            except SkipCycle:
                regime = RANGING
            volatility = selection.mean_volatility(step)
            volatile = selection.volatile_threshold
            universe = sorted(selection.tradable_symbols())
            active = selection.meta.decision.active_profiles
        return PolicyInputs(
            regime=regime,
            volatility=volatility,
            volatility_high=volatile,
            risk_mode=self._risk_mode(),
            msc_active_profiles=active,
            ensemble_quality=self._ensemble_hit_rate(step),
            round_trip_cost=self.round_trip_cost,
            directives=self.hfos.directives if self.hfos.active else None,
            base_min_confidence=self.model.entry_confidence,
            base_risk_per_trade=self.risk.risk_per_trade,
            base_max_positions=self.risk.max_open_positions,
            universe=universe,
        )

    def _risk_mode(self) -> RiskMode:
        if self.selection is None or not self.selection.meta.active:
            return RiskMode.NORMAL
        return self.selection.meta.decision.risk_mode

    def _ensemble_hit_rate(self, step: int) -> float | None:
        if self.selection is None:
            return None
        rates = self.selection.ensemble_hit_rates(step)
        finite = [rate for rate in rates if math.isfinite(rate)]
        return float(np.mean(finite)) if finite else None
