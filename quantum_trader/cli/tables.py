"""Rich tables for the end-of-run summary."""

from __future__ import annotations

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
    rows = per_symbol_table(result)
    table = Table(title="Per symbol")
    if not rows:
        return table
    for column in rows[0]:
        table.add_column(str(column), justify="left" if column == "symbol" else "right")
    for row in rows:
        table.add_row(*(_format(value) for value in row.values()))
    return table


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return "n/a" if value is None else str(value)
