"""Rich progress bars around a backtest run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from quantum_trader.backtest.report import RunPaths, write_run
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.backtest.runner import Progress as RunProgress
from quantum_trader.backtest.runner import run_backtest
from quantum_trader.config import Settings
from quantum_trader.errors import ConfigurationError


def prepare_output_dir(folder: Path) -> None:
    """Create the output folder now, so a bad path fails before the run, not after it."""
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"output folder {folder} is a file; pass --output FOLDER")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the output folder {folder}: {exc.strerror}; pass a writable --output"
        ) from exc


def run_with_progress(settings: Settings, console: Console) -> tuple[BacktestResult, RunPaths]:
    """Run the backtest with one bar for model training and one for the simulation."""
    prepare_output_dir(settings.backtest.output_dir)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bars:
        training = bars.add_task("Training models (walk-forward folds)", total=None, visible=False)
        simulation = bars.add_task("Simulating candles", total=None)

        def on_training(done: int, total: int) -> None:
            bars.update(training, completed=done, total=total, visible=True)

        def on_simulation(done: int, total: int) -> None:
            bars.update(simulation, completed=done, total=total)

        result = run_backtest(settings, RunProgress(training=on_training, simulation=on_simulation))
    paths = write_run(result, settings.backtest.output_dir)
    return result, paths
