"""The subsystem contributions table: what each subsystem saw, changed and vetoed, and what it
did to return and drawdown, measured by an ablation run with that subsystem off.

The ablation reuses the trained models and the precomputed signals, so only the simulation
runs again. A subsystem whose "effect" is zero on real data is not doing anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from quantum_trader.backtest.results import BacktestResult
from quantum_trader.backtest.signal_set import SignalSet
from quantum_trader.config import Settings
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.meta_strategy import ML_ENSEMBLE

# Display name and the settings section whose ``mode`` switches the subsystem.
SWITCHES: tuple[tuple[str, str], ...] = (
    ("AI Trading Engine", "model"),
    ("Model Supervisor", "supervisor"),
    ("Universe OS", "universe"),
    ("OpportunityRanker", "ranker"),
    ("MSC AI", "meta"),
    ("AI-HFOS", "hfos"),
    ("Orchestrator Policy", "policy"),
    ("Trading Mathematician", "risk"),
    ("PBA", "balancer"),
    ("ESS", "emergency_stop"),
    ("AELM", "execution"),
    ("PIL", "positions"),
    ("PAL", "amplifier"),
    ("Self-Healing", "healing"),
)
# The Trading Mathematician and the ESS cannot be switched off (every order needs a size, and the
# last gate never leaves). Their ablation replaces them with the naive alternative instead: a
# fixed stake of max_position_share of the starting capital, and an ESS whose limits never trip.
ALWAYS_ON = {"risk", "emergency_stop"}

Simulation = Callable[[Settings, SignalSet], BacktestResult]


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Keep the ablation runs' warnings off the console; they would read as the main run's."""
    package = logging.getLogger("quantum_trader")
    level = package.level
    package.setLevel(logging.ERROR)
    try:
        yield
    finally:
        package.setLevel(level)


def headline(result: BacktestResult) -> tuple[float, float]:
    """Return the total return and the max drawdown (both fractions) of a run."""
    equity = result.equity.dropna()
    if equity.empty:
        return 0.0, 0.0
    total_return = float(equity.iloc[-1] / result.initial_capital - 1.0)
    drawdown = float((1.0 - equity / equity.cummax()).max())
    return total_return, drawdown


def switched_off(settings: Settings, section: str) -> Settings:
    """Return the settings of the ablation run without the subsystem of ``section``."""
    if section == "risk":
        stake = settings.backtest.initial_capital * settings.risk.max_position_share
        update: dict[str, object] = {"sizing": "stake", "stake_amount": stake}
    elif section == "emergency_stop":
        update = {
            "max_daily_loss": 0.99,
            "max_drawdown": 0.99,
            "stop_loss_burst_count": None,
            "max_error_rate": None,
        }
    else:
        update = {"mode": Mode.OFF}
    config = getattr(settings, section)
    return settings.model_copy(update={section: config.model_copy(update=update)})


def ablation_signals(signals: SignalSet, section: str) -> SignalSet:
    if section == "model":
        return signals.without(ML_ENSEMBLE)
    if section == "supervisor":
        return SignalSet(signals.profiles, None, signals.model, signals.ai_entries)
    return signals


def contributions(
    settings: Settings,
    signals: SignalSet,
    base: BacktestResult,
    simulate: Simulation,
) -> list[dict[str, Any]]:
    """Run one ablation per active subsystem and return one table row per subsystem."""
    base_return, base_drawdown = headline(base)
    counters = {row["subsystem"]: row for row in base.subsystems}
    rows: list[dict[str, Any]] = []
    for name, section in SWITCHES:
        mode = Mode.ENFORCED if section in ALWAYS_ON else getattr(settings, section).mode
        row: dict[str, Any] = {"subsystem": name, "mode": mode.value, "seen": 0, "changed": 0}
        row["vetoed"] = 0
        row.update({k: v for k, v in counters.get(name, {}).items() if k != "subsystem"})
        if mode is Mode.OFF:
            row.update(return_effect=None, drawdown_effect=None, trades_without=None)
            rows.append(row)
            continue
        with _quiet_logs():
            ablated = simulate(switched_off(settings, section), ablation_signals(signals, section))
        ablated_return, ablated_drawdown = headline(ablated)
        row.update(
            return_effect=base_return - ablated_return,
            drawdown_effect=base_drawdown - ablated_drawdown,
            trades_without=len(ablated.trades),
            trades_differ=ablated.trades != base.trades,
        )
        rows.append(row)
    return rows
