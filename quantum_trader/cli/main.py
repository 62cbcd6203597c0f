"""The ``quantum-trader`` command line."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler

from quantum_trader.cli.data_commands import data_app
from quantum_trader.cli.ess_commands import ess_app
from quantum_trader.cli.progress import run_with_progress
from quantum_trader.cli.serve_command import serve
from quantum_trader.cli.tables import (
    contributions_table,
    emergency_stop_summary,
    metrics_table,
    symbols_table,
)
from quantum_trader.cli.train_command import train
from quantum_trader.config import load_settings
from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError, QuantumTraderError

app = typer.Typer(
    help="Quantum Trader: backtest, paper-trade and trade crypto with an AI ensemble.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(ess_app, name="ess")
app.command(help="Train the ensemble walk-forward and store the models.")(train)
app.command(help="Serve the API and paper-trade the shipped candles.")(serve)
console = Console()
logger = logging.getLogger("quantum_trader")

STRATEGIES = ("ai", "ema-cross")


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
) -> None:
    handler = RichHandler(console=Console(stderr=True), show_path=False)
    service = ctx.invoked_subcommand == "serve"
    if not verbose and not service:
        # A backtest can trip and reset the ESS many times; the summary counts the trips.
        handler.addFilter(_QuietEmergencyStop())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
    )
    if service:
        # A service logs its starts, stops, retries and trips; other libraries stay at WARNING.
        logging.getLogger("quantum_trader").setLevel(logging.INFO)


class _QuietEmergencyStop(logging.Filter):
    """Drop the ESS's per-trip warnings from the console; errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "quantum_trader.subsystems.emergency_stop"
            and record.levelno < logging.ERROR
        )


def _split_symbols(symbols: str | None) -> tuple[str, ...] | None:
    if symbols is None:
        return None
    parsed = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())
    for symbol in parsed:
        if "/" not in symbol:
            raise ConfigurationError(
                f"invalid symbol {symbol!r}: write it as BASE/QUOTE, for example BTC/USDT"
            )
    return parsed


def _overrides(**values: Any) -> dict[str, Any]:
    """Build a nested settings dict from CLI options, leaving out options not given."""
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        if value is None:
            continue
        section, key = dotted.split("__")
        sections.setdefault(section, {})[key] = value
    return sections


# Names accepted by --subsystem and the settings section holding each one's mode.
SUBSYSTEM_SECTIONS = {
    "ai_engine": "model",
    "model_supervisor": "supervisor",
    "universe": "universe",
    "ranker": "ranker",
    "msc": "meta",
    "hfos": "hfos",
    "policy": "policy",
    "pba": "balancer",
    "pil": "positions",
    "pal": "amplifier",
    "aelm": "execution",
    "self_healing": "healing",
}
MODES = ("off", "observe", "advisory", "enforced")


def _subsystem_modes(values: list[str]) -> dict[str, Any]:
    """Parse repeated NAME=MODE options into settings overrides."""
    sections: dict[str, Any] = {}
    for value in values:
        name, separator, mode = value.partition("=")
        name, mode = name.strip().lower().replace("-", "_"), mode.strip().lower()
        if not separator or not mode:
            raise ConfigurationError(
                f"invalid --subsystem {value!r}: missing mode; write NAME=MODE, as in {name}=off"
            )
        if name in ("ess", "emergency_stop", "trading_mathematician", "sizing"):
            raise ConfigurationError(
                f"invalid --subsystem {value!r}: the ESS and the Trading Mathematician are "
                "always enforced (every order needs a size and passes the last gate); change "
                "their limits in the emergency_stop and risk settings instead"
            )
        if name not in SUBSYSTEM_SECTIONS:
            raise ConfigurationError(
                f"invalid --subsystem {value!r}: unknown subsystem {name!r}; "
                f"use one of {', '.join(SUBSYSTEM_SECTIONS)}"
            )
        if mode not in MODES:
            raise ConfigurationError(
                f"invalid --subsystem {value!r}: unknown mode {mode!r}; use one of "
                f"{', '.join(MODES)}, as in {name}=off"
            )
        sections[SUBSYSTEM_SECTIONS[name]] = {"mode": mode}
    return sections


def _merge_sections(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in extra.items():
        merged[section] = {**merged.get(section, {}), **values}
    return merged


@app.command()
def backtest(
    strategy: Annotated[
        str | None, typer.Option(help="ai (model ensemble, the default) or ema-cross.")
    ] = None,
    signals: Annotated[
        Path | None, typer.Option(help="CSV of external signals; overrides --strategy.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. BTC/USDT,ETH/USDT.")
    ] = None,
    timeframe: Annotated[str | None, typer.Option(help="Candle timeframe, e.g. 5m or 1h.")] = None,
    start: Annotated[
        str | None, typer.Option(help="First candle open time, UTC (2025-01-01).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last candle open time, UTC.")] = None,
    datadir: Annotated[Path | None, typer.Option(help="Candle folder (freqtrade layout).")] = None,
    capital: Annotated[float | None, typer.Option(help="Starting capital, quote currency.")] = None,
    stake: Annotated[
        float | None, typer.Option(help="Fixed stake per trade (quote); default: risk sizing.")
    ] = None,
    fee: Annotated[
        float | None, typer.Option(help="Maker and taker fee rate per fill, e.g. 0.001.")
    ] = None,
    leverage: Annotated[float | None, typer.Option(help="Futures leverage per position.")] = None,
    market_type: Annotated[str | None, typer.Option(help="spot or futures.")] = None,
    fast: Annotated[int | None, typer.Option(help="ema-cross fast EMA period.")] = None,
    slow: Annotated[int | None, typer.Option(help="ema-cross slow EMA period.")] = None,
    stop_pct: Annotated[float | None, typer.Option(help="ema-cross stop, fraction (0.02).")] = None,
    subsystem: Annotated[
        list[str] | None,
        typer.Option(
            help="Set a subsystem's mode, e.g. universe=off or ranker=observe; repeatable. "
            f"Names: {', '.join(SUBSYSTEM_SECTIONS)}. Modes: off, observe, advisory, enforced."
        ),
    ] = None,
    no_ablation: Annotated[
        bool,
        typer.Option("--no-ablation", help="Skip the ablation runs of the contributions table."),
    ] = False,
    config: Annotated[Path | None, typer.Option(help="TOML settings file.")] = None,
    output: Annotated[Path | None, typer.Option(help="Folder for run folders.")] = None,
) -> None:
    """Backtest a strategy over candle files and write an HTML report and result.json."""
    try:
        if strategy is not None and strategy not in STRATEGIES:
            raise ConfigurationError(
                f"invalid --strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}, "
                "or pass --signals FILE"
            )
        if market_type is not None and market_type not in {m.value for m in MarketType}:
            raise ConfigurationError(f"invalid --market-type {market_type!r}; use spot or futures")
        overrides = _overrides(
            strategy__name="signals" if signals is not None else strategy,
            strategy__signals_file=signals,
            strategy__fast_period=fast,
            strategy__slow_period=slow,
            strategy__stop_pct=stop_pct,
            data__symbols=_split_symbols(symbols),
            data__timeframe=timeframe,
            data__start=start,
            data__end=end,
            data__datadir=datadir,
            backtest__initial_capital=capital,
            backtest__output_dir=output,
            risk__sizing="stake" if stake is not None else None,
            risk__stake_amount=stake,
            risk__leverage=leverage,
            exchange__maker_fee=fee,
            exchange__taker_fee=fee,
            exchange__market_type=market_type,
        )
        overrides = _merge_sections(overrides, _subsystem_modes(subsystem or []))
        if no_ablation:
            overrides = _merge_sections(overrides, {"backtest": {"ablation": False}})
        settings = load_settings(config, overrides)
        result, paths = run_with_progress(settings, console)
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(metrics_table(result))
    console.print(symbols_table(result))
    table = contributions_table(result)
    if table is not None:
        console.print(table)
    console.print(emergency_stop_summary(result))
    console.print(f"Run folder: {paths.run_dir}")
    console.print(f"Report:     {paths.report_html}")
    console.print(f"Results:    {paths.result_json}")
