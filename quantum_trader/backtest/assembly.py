"""Assemble the fourteen subsystems of the AI pipeline for one backtest, and their registry.

The registry starts them in dependency order before the simulation and stops them in reverse
order after it; its status snapshot goes into the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.backtest.signal_set import SignalSet
from quantum_trader.config import Settings
from quantum_trader.engine.clock import SimulatedClock
from quantum_trader.engine.decisions import DecisionLog
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.engine.gates import ExecutionGate, PortfolioGate
from quantum_trader.engine.oversight import OversightLayer
from quantum_trader.engine.position_manager import PositionManager
from quantum_trader.engine.selection import SelectionLayer
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.subsystems.ai_engine import AITradingEngine
from quantum_trader.subsystems.base import Subsystem
from quantum_trader.subsystems.emergency_stop import EmergencyStop
from quantum_trader.subsystems.execution import ExecutionManager
from quantum_trader.subsystems.market_stats import compute_market_stats
from quantum_trader.subsystems.orchestrator import OrchestratorPolicy
from quantum_trader.subsystems.portfolio_balancer import PortfolioBalancer
from quantum_trader.subsystems.position_intelligence import PositionIntelligence
from quantum_trader.subsystems.profit_amplification import ProfitAmplifier
from quantum_trader.subsystems.registry import SubsystemRegistry
from quantum_trader.subsystems.self_healing import SelfHealing
from quantum_trader.subsystems.sizing import TradingMathematician
from quantum_trader.subsystems.supervisor_os import HedgeFundOS, HfosSettings

# Each subsystem's short name and the short names it depends on, in pipeline order.
DEPENDENCIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Universe OS", ()),
    ("OpportunityRanker", ("Universe OS",)),
    ("AI Trading Engine", ()),
    ("Model Supervisor", ("AI Trading Engine",)),
    ("MSC AI", ()),
    ("AI-HFOS", ()),
    ("Orchestrator Policy", ("MSC AI", "AI-HFOS")),
    ("Trading Mathematician", ()),
    ("PBA", ("Trading Mathematician",)),
    ("ESS", ()),
    ("AELM", ("ESS",)),
    ("PIL", ()),
    ("PAL", ("PIL", "PBA")),
    ("Self-Healing", ("ESS",)),
)


@dataclass
class Stack:
    selection: SelectionLayer | None
    oversight: OversightLayer
    portfolio: PortfolioGate
    execution: ExecutionGate
    positions: PositionManager
    ai_engine: AITradingEngine
    healing: SelfHealing
    registry: SubsystemRegistry


def round_trip_cost(settings: Settings) -> float:
    exchange = settings.exchange
    return 2 * exchange.taker_rate + 2 * exchange.slippage.fixed_bps / 10_000


def build_stack(
    *,
    settings: Settings,
    candles: dict[str, pd.DataFrame],
    feed: CandleFeed,
    markets: dict[str, MarketRules],
    signals: SignalSet,
    exchange: SimulatedExchange,
    atr: dict[str, npt.NDArray[np.float64]],
    sizing: TradingMathematician,
    emergency_stop: EmergencyStop,
    clock: SimulatedClock,
    log: DecisionLog,
    selection: SelectionLayer | None,
) -> Stack:
    """Create every subsystem with its dependencies passed in, and register all fourteen."""
    ai_engine = AITradingEngine(settings.model.mode, signals.model, log)
    oversight = OversightLayer(
        hfos=HedgeFundOS(_hfos_settings(settings), log),
        policy=OrchestratorPolicy(settings.policy, log),
        emergency_stop=emergency_stop,
        selection=selection,
        subsystems=[],
        risk=settings.risk,
        model=settings.model,
        round_trip_cost=round_trip_cost(settings),
    )
    balancer = PortfolioBalancer(settings.balancer, settings.exchange.market_type, log)
    portfolio = PortfolioGate(
        balancer, exchange, feed, markets, settings.balancer.correlation_window
    )
    manager = ExecutionManager(
        settings.execution, settings.exchange.slippage, markets, feed.timeframe_ns, log
    )
    trend = _trend(selection, candles)
    positions = PositionManager(
        exchange=exchange,
        feed=feed,
        markets=markets,
        atr=atr,
        trend=trend,
        pil=PositionIntelligence(settings.positions, log),
        pal=ProfitAmplifier(settings.amplifier, log),
        max_position_share=settings.risk.max_position_share,
    )
    healing = SelfHealing(
        settings.healing,
        trip=lambda reason: _trip(emergency_stop, clock, reason),
        log=log,
    )
    members: list[Subsystem] = [
        ai_engine, oversight.hfos, oversight.policy, sizing, balancer, emergency_stop,
        manager, positions.pil, positions.pal, healing,
    ]  # fmt: skip
    if selection is not None:
        members += list(selection.subsystems().values())
    oversight.subsystems = members
    return Stack(
        selection=selection,
        oversight=oversight,
        portfolio=portfolio,
        execution=ExecutionGate(manager, feed, atr),
        positions=positions,
        ai_engine=ai_engine,
        healing=healing,
        registry=_registry(members),
    )


def _registry(members: list[Subsystem]) -> SubsystemRegistry:
    by_name = {member.short_name: member for member in members}
    registry = SubsystemRegistry()
    for name, depends_on in DEPENDENCIES:
        if name in by_name:
            present = tuple(d for d in depends_on if d in by_name)
            registry.register(by_name[name], depends_on=present)
    return registry


def _hfos_settings(settings: Settings) -> HfosSettings:
    """AI-HFOS's confidence floor and position cap follow the model and risk settings."""
    return settings.hfos.model_copy(
        update={
            "confidence_floor": settings.model.entry_confidence,
            "max_positions": settings.risk.max_open_positions,
        }
    )


def _trend(
    selection: SelectionLayer | None, candles: dict[str, pd.DataFrame]
) -> dict[str, npt.NDArray[np.int8]]:
    if selection is not None:
        return {symbol: stats.trend_direction for symbol, stats in selection.stats.items()}
    return {
        symbol: compute_market_stats(frame, 288).trend_direction
        for symbol, frame in candles.items()
    }


def _trip(emergency_stop: EmergencyStop, clock: SimulatedClock, reason: str) -> None:
    emergency_stop.trip_manual(clock.now_ns(), reason)
