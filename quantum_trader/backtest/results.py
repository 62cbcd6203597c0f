"""The result of a finished backtest, as the metrics, the report writer and the tests read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantum_trader.core.types import Fill, Order, Trade
from quantum_trader.engine.decisions import Decision


@dataclass
class BacktestResult:
    """Everything one run produced.

    ``equity`` is indexed by candle open time (UTC); each value is the account equity marked at
    that candle's close, after its fills and funding. ``benchmark_equity`` is an equal-weight
    buy-and-hold of the same symbols from the same capital, on the same index. ``candles`` contains
    the validated frames the run traded on (for the price charts).
    """

    run_id: str
    strategy: str
    timeframe: str
    market_type: str
    symbols: list[str]
    initial_capital: float
    equity: pd.Series
    benchmark_equity: pd.Series
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    decisions: list[Decision]
    candles: dict[str, pd.DataFrame]
    settings: dict[str, Any] = field(default_factory=dict)
    data_reports: list[dict[str, Any]] = field(default_factory=list)
    model_report: dict[str, Any] | None = None
    emergency_stop: dict[str, Any] | None = None
    fees_paid: float = 0.0
    funding_paid: float = 0.0
    open_positions: list[dict[str, Any]] = field(default_factory=list)
    # Per subsystem: mode and how many candidates it saw, changed and vetoed.
    subsystems: list[dict[str, Any]] = field(default_factory=list)
    # The contributions table: the counters plus the ablation effect on return and drawdown.
    contributions: list[dict[str, Any]] = field(default_factory=list)
    # The registry's status snapshot at the end of the run (AI pipeline only).
    health: dict[str, Any] | None = None
