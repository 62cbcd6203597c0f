"""The selection layer: Universe OS, OpportunityRanker, Model Supervisor and MSC AI in the pipeline.

A candidate entry passes, in this order: the Universe OS (is the market tradable?), the
OpportunityRanker (is it among the best current opportunities?), the Model Supervisor (for the
ML ensemble's candidates: is the ensemble healthy and unbiased?) and MSC AI (is the strategy
profile that produced it active?). MSC AI also scales the risk of admitted candidates by the
risk mode. Each subsystem records its own decisions; enforced ones bind.

Every input is causal: statistics are read at the candidate's row, selections are made at the
last cadence boundary at or before the candidate's step, and MSC AI sees only closed trades.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from quantum_trader.core.types import PositionSide, Trade
from quantum_trader.engine.decisions import DecisionLog
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.errors import SkipCycle
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.subsystems.base import Subsystem
from quantum_trader.subsystems.market_stats import MarketStats, compute_market_stats, snapshot
from quantum_trader.subsystems.meta_strategy import (
    MEAN_REVERSION,
    ML_ENSEMBLE,
    AccountStats,
    MetaSettings,
    MetaStrategyController,
    classify_regime,
)
from quantum_trader.subsystems.model_supervisor import (
    ModelSupervisor,
    SupervisionArrays,
    SupervisorSettings,
)
from quantum_trader.subsystems.opportunity_ranker import (
    OpportunityRanker,
    RankerSettings,
    RankInput,
)
from quantum_trader.subsystems.universe import UniverseOS, UniverseSettings

logger = logging.getLogger(__name__)

# Per-candle log-return volatility above which the market counts as volatile, for 1h candles;
# other timeframes scale it by the square root of their length in hours.
VOLATILE_PER_HOUR = 0.02


@dataclass(frozen=True)
class Admission:
    """The selection layer's verdict on one candidate: admitted or not, and its risk scale."""

    admitted: bool
    risk_scale: float
    blocked_by: str | None = None


class SelectionLayer:
    """Owns the four selection subsystems and the statistics they read."""

    def __init__(
        self,
        *,
        candles: dict[str, pd.DataFrame],
        feed: CandleFeed,
        markets: dict[str, MarketRules],
        universe: UniverseSettings,
        ranker: RankerSettings,
        supervisor: SupervisorSettings,
        meta: MetaSettings,
        supervision: dict[str, SupervisionArrays] | None,
        entry_confidence: float,
        round_trip_cost: float,
        timeframe_hours: float,
        log: DecisionLog,
    ) -> None:
        self.feed = feed
        self.markets = markets
        self.universe = UniverseOS(universe, log)
        self.ranker = OpportunityRanker(ranker, log)
        self.supervisor = ModelSupervisor(supervisor, log)
        self.meta = MetaStrategyController(meta, log)
        self.entry_confidence = entry_confidence
        self.round_trip_cost = round_trip_cost
        self.volatile_threshold = VOLATILE_PER_HOUR * math.sqrt(timeframe_hours)
        self.stats: dict[str, MarketStats] = {
            symbol: compute_market_stats(frame, universe.window)
            for symbol, frame in candles.items()
        }
        if supervision is not None:
            for symbol, arrays in supervision.items():
                self.supervisor.attach(symbol, arrays)
        self._has_supervision = supervision is not None
        self._universe_boundary = -1
        self._ranking_key: tuple[int, str] | None = None
        self._meta_step = -(10**12)

    def subsystems(self) -> dict[str, Subsystem]:
        return {
            "Universe OS": self.universe,
            "OpportunityRanker": self.ranker,
            "Model Supervisor": self.supervisor,
            "MSC AI": self.meta,
        }

    def admit(
        self,
        *,
        step: int,
        time_ns: int,
        symbol: str,
        row: int,
        side: PositionSide,
        profile: str,
        trades: list[Trade],
        equity_peak: float,
        equity: float,
    ) -> Admission:
        """Run one candidate through the four subsystems; the first binding veto stops it."""
        self._refresh_universe(step, time_ns)
        if self.universe.active and not self.universe.allows(symbol, time_ns):
            return Admission(False, 1.0, "Universe OS")
        self._refresh_ranking(step, time_ns, profile)
        if self.ranker.active and not self.ranker.allows(symbol, time_ns):
            return Admission(False, 1.0, "OpportunityRanker")
        if profile == ML_ENSEMBLE and self._has_supervision and self.supervisor.active:
            verdict = self.supervisor.review(
                time_ns, symbol, row, side, entry_confidence=self.entry_confidence
            )
            if verdict.blocks:
                return Admission(False, 1.0, "Model Supervisor")
        if not self.meta.active:
            return Admission(True, 1.0)
        self._refresh_meta(step, time_ns, trades, equity_peak, equity)
        if not self.meta.allows(time_ns, symbol, profile):
            return Admission(False, 1.0, "MSC AI")
        return Admission(True, self.meta.scale_risk(time_ns, symbol, 1.0))

    def on_trade_closed(self, trade: Trade) -> None:
        self.ranker.on_trade_closed(trade.symbol, trade.pnl_ratio)

    def _row_at(self, symbol: str, step: int) -> int:
        """Return the symbol's last candle row at or before ``step``, or -1."""
        steps = self.feed.series[symbol].step_of_row
        return int(np.searchsorted(steps, step, side="right")) - 1

    def _refresh_universe(self, step: int, time_ns: int) -> None:
        if not self.universe.active:
            return
        boundary = step - step % self.universe.cadence
        if boundary == self._universe_boundary:
            return
        self._universe_boundary = boundary
        snapshots = []
        for symbol, stats in self.stats.items():
            row = self._row_at(symbol, boundary)
            if row >= 0:
                snapshots.append(snapshot(stats, row, symbol, self.markets[symbol].tick_size))
        self.universe.select(self.feed.times[boundary], snapshots)

    def _refresh_ranking(self, step: int, time_ns: int, profile: str) -> None:
        if not self.ranker.active:
            return
        style: Literal["trend", "mean_reversion"] = (
            "mean_reversion" if profile == MEAN_REVERSION else "trend"
        )
        boundary = step - step % self.ranker.cadence
        if self._ranking_key == (boundary, style):
            return
        self._ranking_key = (boundary, style)
        inputs = []
        for symbol, stats in self.stats.items():
            row = self._row_at(symbol, boundary)
            if row < 0:
                continue
            market = snapshot(stats, row, symbol, self.markets[symbol].tick_size)
            inputs.append(RankInput.from_snapshot(market, self.round_trip_cost, style=style))
        self.ranker.rank(time_ns, inputs)

    def _refresh_meta(
        self, step: int, time_ns: int, trades: list[Trade], equity_peak: float, equity: float
    ) -> None:
        if step - self._meta_step < self.meta.cadence:
            return
        try:
            regime = self.regime(step)
        except SkipCycle:
            return  # the regime indicators are still warming up; keep the last decision
        self._meta_step = step
        settings = self.meta.settings
        account = AccountStats.from_trades(
            trades, equity_peak, equity, lookback=settings.lookback_trades
        )
        by_profile: dict[str, list[Trade]] = {}
        if settings.record_days is not None:
            cutoff = pd.Timestamp(time_ns, tz="UTC") - pd.Timedelta(days=settings.record_days)
            trades = [trade for trade in trades if trade.exit_time >= cutoff]
        for trade in trades:
            by_profile.setdefault(trade.entry_tag.removeprefix("entry:"), []).append(trade)
        self.meta.update(time_ns, account, regime, by_profile)

    def tradable_symbols(self) -> frozenset[str]:
        """Return the symbols of the last universe selection, or every symbol before one."""
        selection = self.universe.selection
        if not self.universe.active or selection is None:
            return frozenset(self.stats)
        return selection.tradable

    def mean_volatility(self, step: int) -> float:
        values = []
        for symbol, stats in self.stats.items():
            row = self._row_at(symbol, step)
            if row >= 0:
                values.append(float(stats.volatility[row]))
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    def ensemble_hit_rates(self, step: int) -> list[float]:
        """Return the ensemble's rolling hit rate per symbol at ``step`` (supervised runs only)."""
        if not self._has_supervision:
            return []
        rates = []
        for symbol in self.stats:
            row = self._row_at(symbol, step)
            if row >= 0:
                rates.append(float(self.supervisor.arrays(symbol).hit_rate["ensemble"][row]))
        return rates

    def regime(self, step: int) -> str:
        """Classify the market from the mean efficiency and volatility across symbols."""
        efficiencies, volatilities = [], []
        for symbol, stats in self.stats.items():
            row = self._row_at(symbol, step)
            if row >= 0:
                efficiencies.append(float(stats.efficiency[row]))
                volatilities.append(float(stats.volatility[row]))
        if not efficiencies:
            raise SkipCycle("no symbol has a candle yet")
        return classify_regime(
            float(np.mean(efficiencies)),
            float(np.mean(volatilities)),
            self.volatile_threshold,
            self.meta.settings.trending_efficiency,
        )
