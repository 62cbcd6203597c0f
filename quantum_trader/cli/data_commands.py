"""``quantum-trader data``: list the candle catalog and check candle files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from quantum_trader.data.catalog import DataCatalog
from quantum_trader.data.loaders import read_candle_file
from quantum_trader.data.timeframes import infer_timeframe
from quantum_trader.data.validation import validate_candles
from quantum_trader.errors import DataError, QuantumTraderError

data_app = typer.Typer(help="Inspect and check candle data.", no_args_is_help=True)
console = Console()


@data_app.command("list")
def list_data(
    datadir: Annotated[Path, typer.Option(help="Candle folder (freqtrade layout).")] = Path(
        "data/binance"
    ),
) -> None:
    """List the symbols, timeframes and date ranges in a data folder."""
    try:
        rows = DataCatalog(datadir).describe()
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    table = Table(title=f"Candle data in {datadir}")
    for column in ("symbol", "timeframe", "candle_type", "rows", "start", "end", "path"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for row in rows:
        table.add_row(
            *(
                str(row[column])
                for column in ("symbol", "timeframe", "candle_type", "rows", "start", "end", "path")
            )
        )
    console.print(table)


@data_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Candle file: feather, parquet, csv, json(.gz).")],
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe; default: from the file name or the data.")
    ] = None,
) -> None:
    """Validate a candle file and print each problem with its row. Exit code 1 on an error."""
    try:
        raw = read_candle_file(file)
        frame_timeframe = timeframe or infer_timeframe(file.name, raw["date"])
        _, report = validate_candles(raw, frame_timeframe, source=str(file), fill_gaps=False)
    except DataError as exc:
        console.print(f"[bold red]Invalid:[/] {exc}")
        raise typer.Exit(code=1) from exc
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if report.rows_in == 0:
        console.print(f"[bold red]Invalid:[/] {file} contains no candles; export the data again")
        raise typer.Exit(code=1)
    console.print(f"{file}: {report.rows_in} rows, timeframe {frame_timeframe}")
    if not report.problems:
        console.print("[green]No problems found.[/]")
        return
    table = Table(title="Problems (repaired on load where marked)")
    for column in ("kind", "row", "repaired", "message"):
        table.add_column(column)
    for problem in report.problems:
        row = "" if problem.row is None else str(problem.row)
        table.add_row(problem.kind, row, "yes" if problem.repaired else "no", problem.message)
    console.print(table)
