"""The ``serve`` command: run the paper-trading API with uvicorn on one host and port."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from quantum_trader.config import Settings, load_settings

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

    overrides: dict[str, Any] = {}
    if live or exchange is not None:
        overrides["live"] = {"enabled": True} if live else {}
        if exchange is not None:
            overrides["live"]["exchange"] = exchange
    settings = load_settings(config, overrides)
    if exchange is not None and not settings.live.enabled:
        raise typer.BadParameter("--exchange applies to live candles only; add --live")
    if settings.service.database_url is None and not memory:
        settings = _with_default_journal(settings)
    app = create_app(settings, speed=speed)
    logger.info("Serving the API on http://%s:%d", host, port)
    uvicorn.run(app, host=host, port=port, log_config=None)


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
    logger.info("Journaling the paper replay to %s.", url)
    service = settings.service.model_copy(update={"database_url": url})
    return settings.model_copy(update={"service": service})
