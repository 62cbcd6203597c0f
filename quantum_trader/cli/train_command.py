"""``quantum-trader train``: train the ensemble walk-forward and save the last fold's models."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from quantum_trader.backtest.runner import load_market_data
from quantum_trader.config import Settings, load_settings, model_settings_for
from quantum_trader.errors import ConfigurationError, QuantumTraderError
from quantum_trader.models.results import WalkForwardResult
from quantum_trader.models.store import save_models
from quantum_trader.models.walk_forward import walk_forward_predict

DEFAULT_OUTPUT = Path("models/store")


def _parse_symbols(symbols: str | None) -> tuple[str, ...] | None:
    if symbols is None:
        return None
    parsed = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
    for symbol in parsed:
        if "/" not in symbol:
            raise ConfigurationError(
                f"invalid symbol {symbol!r}: write it as BASE/QUOTE, for example BTC/USDT"
            )
    return parsed


def _settings(config: Path | None, **data: Any) -> Settings:
    """Load the settings file and override its data section with the options given."""
    overrides = {key: value for key, value in data.items() if value is not None}
    return load_settings(config, {"data": overrides} if overrides else None)


def _walk_forward_with_progress(settings: Settings, console: Console) -> WalkForwardResult:
    candles = load_market_data(settings).candles
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bars:
        task = bars.add_task("Training models (walk-forward folds)", total=None)

        def on_fold(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        model = model_settings_for(settings.model, settings.data.timeframe)
        return walk_forward_predict(candles, model, settings.data.timeframe, on_fold)


def _create_model_folder(output: Path, timeframe: str) -> Path:
    """Create ``<output>/<UTC date>-<timeframe>``, adding -2, -3, ... when it exists."""
    name = f"{dt.datetime.now(dt.UTC):%Y-%m-%d}-{timeframe}"
    output.mkdir(parents=True, exist_ok=True)
    candidate, suffix = output / name, 1
    while True:
        try:
            # mkdir without exist_ok claims the name atomically, so no earlier save is replaced.
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = output / f"{name}-{suffix}"


def scores_table(result: WalkForwardResult) -> Table:
    """Build the table of pooled out-of-sample scores per member and for the ensemble."""
    trained = sum(1 for fold in result.folds if fold.scores)
    table = Table(
        title=f"Out-of-sample scores, {result.timeframe}, {trained} of {len(result.folds)} "
        "folds trained"
    )
    for header in ("model", "rows", "AUC", "Brier", "hit rate", "log loss"):
        table.add_column(header, justify="left" if header == "model" else "right")
    for name, scores in result.pooled_scores().items():
        values = (scores.auc, scores.brier, scores.hit_rate, scores.log_loss)
        cells = ["n/a" if value is None else f"{value:.4f}" for value in values]
        table.add_row(name, f"{scores.rows:,}", *cells)
    return table


def train(
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT.")
    ] = None,
    timeframe: Annotated[str | None, typer.Option(help="Candle timeframe, e.g. 5m or 1h.")] = None,
    datadir: Annotated[Path | None, typer.Option(help="Candle folder (freqtrade layout).")] = None,
    start: Annotated[
        str | None, typer.Option(help="First candle open time, UTC (2025-01-01).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last candle open time, UTC.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML settings file; its model section sets the training.")
    ] = None,
    output: Annotated[
        Path, typer.Option(help="Folder for model folders, named <UTC date>-<timeframe>.")
    ] = DEFAULT_OUTPUT,
) -> None:
    """Train the model ensemble walk-forward and save the last fold's models."""
    console = Console()
    try:
        settings = _settings(
            config,
            symbols=_parse_symbols(symbols),
            timeframe=timeframe,
            datadir=datadir,
            start=start,
            end=end,
        )
        result = _walk_forward_with_progress(settings, console)
        if result.models is None:
            raise ConfigurationError(
                "no walk-forward fold had enough rows to train, so there is nothing to save; "
                "load more history or lower model.train_window"
            )
        folder = _create_model_folder(output, settings.data.timeframe)
        manifest = save_models(result, folder)
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(scores_table(result))
    console.print(f"Models:   {folder}")
    console.print(f"Manifest: {manifest}")
