"""The ``serve`` command: run the paper-trading API with uvicorn on one host and port."""

from __future__ import annotations

import hashlib
import logging
import socket
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from quantum_trader.config import Settings, load_settings
from quantum_trader.errors import ConfigurationError, QuantumTraderError

logger = logging.getLogger(__name__)


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind. Keep 127.0.0.1 unless a proxy fronts it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8000,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Replay speed in candle times per second.")
    ] = 1.0,
    config: Annotated[
        Path | None,
        typer.Option(help="TOML settings file. Without it, the environment and defaults apply."),
    ] = None,
    memory: Annotated[
        bool,
        typer.Option("--memory", help="Keep the state in memory instead of the SQLite journal."),
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Paper-trade closed candles from the exchange (through ccxt) instead of "
            "replaying the shipped files. Reads public market data only; needs ccxt.",
        ),
    ] = False,
    exchange: Annotated[
        str | None,
        typer.Option(help="ccxt exchange id for --live, for example binance (the default)."),
    ] = None,
) -> None:
    """Paper-trade the configured candles and serve the HTTP API until interrupted."""
    # Imported here so the other commands work without the service dependencies installed.
    import uvicorn

    from quantum_trader.api.app import create_app
    from quantum_trader.api.auth import configured_api_key
    from quantum_trader.live.trader import LiveTrader
    from quantum_trader.paper.trader import PaperTrader

    overrides: dict[str, Any] = {}
    if live or exchange is not None:
        overrides["live"] = {"enabled": True} if live else {}
        if exchange is not None:
            overrides["live"]["exchange"] = exchange
    console = Console(stderr=True)
    try:
        settings = load_settings(config, overrides)
        if exchange is not None and not settings.live.enabled:
            raise ConfigurationError("--exchange applies to live candles only; add --live")
        _check_port_free(host, port)
        if settings.service.database_url is None and not memory:
            settings = _with_default_journal(settings)
        # Prepared and started before uvicorn, so that a bad setting, an unreachable exchange
        # or a journal that does not match ends the command with its message alone.
        trader = (LiveTrader if settings.live.enabled else PaperTrader)(settings)
        trader.prepare()
        trader.start()
    except QuantumTraderError as exc:
        console.print(f"[bold red]Error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    if configured_api_key() is None:
        logger.warning(
            "No API key is set (QT_API_KEY or QT_API_KEY_FILE), so mode changes, ESS trips and "
            "resets and backtest starts are refused until one is."
        )
    app = create_app(settings, lambda _: trader, speed=speed)
    logger.info("Serving the API on http://%s:%d", host, port)
    try:
        uvicorn.run(app, host=host, port=port, log_config=None)
    finally:
        trader.stop()


def _check_port_free(host: str, port: int) -> None:
    """Raise ConfigurationError when ``host``:``port`` cannot be bound (checked before the
    start, which may take a while; another process can still take the port in between)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn does, so that connections of a previous run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror}): stop the process using the "
                "port or pass another --port"
            ) from exc


def _with_default_journal(settings: Settings) -> Settings:
    """Journal to SQLite under user_data/, one file per distinct set of settings.

    The same settings resume the same replay after a restart. Changed settings start a new
    file, so a journal written by other settings never fails the start.
    """
    fingerprint = hashlib.sha256(
        settings.model_dump_json(exclude={"service"}).encode("utf-8")
    ).hexdigest()[:10]
    folder = Path("user_data")
    folder.mkdir(exist_ok=True)
    kind = "live" if settings.live.enabled else "paper"
    url = f"sqlite:///{folder / f'{kind}-{fingerprint}.db'}"
    logger.info("Journaling to %s.", url)
    service = settings.service.model_copy(update={"database_url": url})
    return settings.model_copy(update={"service": service})
