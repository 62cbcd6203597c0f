"""Rich tables for the end-of-run summary."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from quantum_trader.backtest.metrics import compute_metrics, per_symbol_table
from quantum_trader.backtest.results import BacktestResult


def metrics_table(result: BacktestResult) -> Table:
    table = Table(title=f"Backtest {result.strategy} {result.timeframe} ({result.market_type})")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column("Note")
    for metric in compute_metrics(result):
        table.add_row(metric.name, metric.display, metric.note or "")
    return table


def symbols_table(result: BacktestResult) -> Table:
    futures = result.market_type == "futures"
    table = Table(title="Per symbol")
    headers = ["symbol", "trades", "win rate", "net pnl", "fees"]
    headers += ["funding"] if futures else []
    headers += ["profit factor", "buy & hold"]
    for header in headers:
        table.add_column(header, justify="left" if header == "symbol" else "right")
    for row in per_symbol_table(result):
        cells = [
            str(row["symbol"]),
            str(row["trades"]),
            _percent(row["win_rate"]),
            f"{row['pnl']:,.2f}",
            f"{row['fees']:,.2f}",
        ]
        cells += [f"{row['funding']:,.2f}"] if futures else []
        cells += [_factor(row["profit_factor"]), _percent(row["buy_and_hold_return"])]
        table.add_row(*cells)
    return table


def contributions_table(result: BacktestResult) -> Table | None:
    """Return the subsystem contributions table, or None when the run had no ablation."""
    if not result.contributions:
        return _counters_table(result)
    table = Table(title="Subsystem contributions (effect = this run minus the run without it)")
    for header in ("subsystem", "mode", "seen", "changed", "vetoed", "return effect"):
        table.add_column(header, justify="left" if header in ("subsystem", "mode") else "right")
    table.add_column("drawdown effect", justify="right")
    table.add_column("trades without", justify="right")
    for row in result.contributions:
        table.add_row(
            str(row["subsystem"]),
            str(row["mode"]),
            str(row["seen"]),
            str(row["changed"]),
            str(row["vetoed"]),
            _signed_percent(row.get("return_effect")),
            _signed_percent(row.get("drawdown_effect")),
            "n/a" if row.get("trades_without") is None else str(row["trades_without"]),
        )
    return table


def _counters_table(result: BacktestResult) -> Table | None:
    if not result.subsystems:
        return None
    table = Table(title="Subsystems (no ablation runs)")
    for header in ("subsystem", "mode", "seen", "changed", "vetoed"):
        table.add_column(header, justify="left" if header in ("subsystem", "mode") else "right")
    for row in result.subsystems:
        table.add_row(
            str(row["subsystem"]),
            str(row["mode"]),
            str(row["seen"]),
            str(row["changed"]),
            str(row["vetoed"]),
        )
    return table


def _signed_percent(value: Any) -> str:
    return "n/a" if value is None else f"{value:+.2%}"


def emergency_stop_summary(result: BacktestResult) -> str:
    state = result.emergency_stop or {}
    trips = state.get("trips", [])
    if not trips and state.get("state") != "active":
        stored = state.get("trip") or {}
        return (
            f"Emergency stop: {state.get('state')} from the start by a stored "
            f"{stored.get('reason', 'earlier')} trip, so no entry was allowed; "
            "lift it with: quantum-trader ess reset STATE_FILE --by NAME"
        )
    if not trips:
        return "Emergency stop: never tripped."
    first = trips[0]
    return (
        f"Emergency stop: tripped {len(trips)} time(s), first at {first['time']} "
        f"({first['reason']}); state at the end: {state.get('state', 'unknown')}."
    )


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _factor(value: Any) -> str:
    if value is None:
        return "n/a"
    return "inf (no losses)" if math.isinf(value) else f"{value:.2f}"
