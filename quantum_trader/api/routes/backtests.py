"""Backtest runs: start one in the background, follow its progress, read its result."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from quantum_trader.api.auth import ApiKey
from quantum_trader.api.deps import invalid_request
from quantum_trader.backtest.metrics import compute_metrics, metrics_to_dict
from quantum_trader.backtest.runner import Progress, run_backtest
from quantum_trader.config import Settings, load_settings
from quantum_trader.core.types import MarketType
from quantum_trader.data.catalog import SPOT, DataCatalog, futures_symbol
from quantum_trader.errors import ConfigurationError, QuantumTraderError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/backtests", tags=["backtests"])

# The app keeps at most this many runs in memory, and drops the oldest run that is not running
# to make room for a new one.
MAX_RUNS = 20
# Runs execute in worker threads of the server process, where they compete with the replay loop
# and the requests for CPU time, so a start beyond this count gets 429.
MAX_CONCURRENT_RUNS = 2


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["ai", "ema-cross"] = "ema-cross"
    timeframe: Literal["5m", "1h"] = "1h"
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"], min_length=1, max_length=5)
    start: str | None = Field(
        None,
        description="First candle open time, ISO 8601, UTC unless it names a zone. Stored as "
        "ISO 8601 UTC.",
    )
    end: str | None = Field(
        None, description="Last candle open time, ISO 8601, after start. Stored as ISO 8601 UTC."
    )

    @field_validator("symbols")
    @classmethod
    def _check_unique(cls, symbols: list[str]) -> list[str]:
        repeated = sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each symbol once")
        return symbols

    @field_validator("start", "end")
    @classmethod
    def _parse_time(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
            # A time without a zone is read as UTC, the zone of every time in this system.
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except (ValueError, OverflowError):
            # OverflowError: a zone offset that moves the time past year 1 or 9999.
            raise ValueError(
                f"{value!r} is not an ISO 8601 time; write it as 2025-01-01 or 2025-01-01T12:00:00Z"
            ) from None
        if info.field_name == "end":
            _check_after_start(moment, info.data.get("start"))
        return moment.isoformat()


def _check_after_start(end: datetime, start: str | None) -> None:
    # ``start`` is validated before ``end``, so it is None (missing or invalid) or ISO 8601 UTC.
    if start is not None and end <= datetime.fromisoformat(start):
        raise ValueError(
            f"end {end.isoformat()} is not after start {start}; pass an end later than the start"
        )


@dataclass
class BacktestRun:
    id: str
    request: dict[str, Any]
    status: str = "running"
    # The fraction of candles simulated, 0..1.
    progress: float = 0.0
    # The fraction of walk-forward folds trained, 0..1. None until the first fold is done, and
    # for the runs that train no model (the ema-cross strategy, the AI engine switched off).
    training_progress: float | None = None
    error: str | None = None
    metrics: dict[str, Any] | None = None
    trades: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request,
            "status": self.status,
            "progress": round(self.progress, 4),
            "training_progress": (
                None if self.training_progress is None else round(self.training_progress, 4)
            ),
            "error": self.error,
            "trades": self.trades,
            "metrics": self.metrics,
        }


def _runs(request: Request) -> dict[str, BacktestRun]:
    runs: dict[str, BacktestRun] | None = getattr(request.app.state, "backtests", None)
    if runs is None:
        runs = {}
        request.app.state.backtests = runs
    return runs


def _settings_for(body: BacktestRequest, base: Settings | None) -> Settings:
    """Build the run's settings from the service's settings and the request, or raise 422.

    Only what the service's settings set explicitly is carried over, so the per-timeframe
    model presets still apply to the requested timeframe.
    """
    carried: dict[str, Any] = (
        {} if base is None else base.model_dump(exclude_unset=True, exclude={"service"})
    )
    request: dict[str, dict[str, Any]] = {
        "strategy": {"name": body.strategy},
        "data": {
            "timeframe": body.timeframe,
            "symbols": tuple(body.symbols),
            "start": body.start,
            "end": body.end,
        },
        "backtest": {"ablation": False},
    }
    for section, values in request.items():
        carried[section] = {**carried.get(section, {}), **values}
    try:
        return load_settings(overrides=carried)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc


def _check_symbols(body: BacktestRequest, settings: Settings) -> None:
    """Raise 422 naming each requested symbol that has no candles of the timeframe."""
    futures = settings.exchange.market_type is MarketType.FUTURES
    candle_type = "futures" if futures else SPOT
    try:
        catalog = DataCatalog(settings.data.datadir)
    except ConfigurationError as exc:
        logger.error("Backtests cannot read the candle folder: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"backtests are unavailable: {exc}"
        ) from exc
    available = sorted(
        {
            entry.symbol
            for entry in catalog.entries()
            if entry.timeframe == body.timeframe and entry.candle_type == candle_type
        }
    )
    missing = [symbol for symbol in body.symbols if _catalog_name(symbol, futures) not in available]
    if missing:
        raise invalid_request(
            ("body", "symbols"),
            f"no {body.timeframe} {candle_type} candles for {', '.join(missing)} in the data "
            f"folder; available {body.timeframe} symbols: {', '.join(available) or 'none'}",
            body.symbols,
        )


def _catalog_name(symbol: str, futures: bool) -> str:
    """Return the catalog's name of ``symbol``: "XRP/USDT:USDT" for futures, else ``symbol``."""
    if not futures:
        return symbol
    try:
        return futures_symbol(symbol)
    except ConfigurationError:
        # Not BASE/QUOTE, so no catalog entry has this name and the caller reports it missing.
        return symbol


def _forget_oldest_finished(runs: dict[str, BacktestRun]) -> None:
    if len(runs) < MAX_RUNS:
        return
    for run_id, run in runs.items():
        if run.status != "running":
            del runs[run_id]
            return


def _execute(run: BacktestRun, settings: Settings) -> None:
    def on_training(done: int, total: int) -> None:
        run.training_progress = done / total if total else 1.0

    def on_simulation(done: int, total: int) -> None:
        run.progress = done / total if total else 1.0

    try:
        result = run_backtest(settings, Progress(training=on_training, simulation=on_simulation))
        run.metrics = metrics_to_dict(compute_metrics(result))
        run.trades = len(result.trades)
    except QuantumTraderError as exc:
        run.error = str(exc)
        run.status = "failed"
        logger.warning("Backtest run %s failed: %s", run.id, exc)
        return
    except Exception as exc:
        # Nothing awaits the worker thread, so an error not caught here would leave the run
        # "running" for good and hold one of the MAX_CONCURRENT_RUNS slots.
        logger.exception("Backtest run %s failed with an unexpected error.", run.id)
        run.error = f"unexpected {type(exc).__name__}; the server log has the traceback"
        run.status = "failed"
        return
    run.progress = 1.0
    run.status = "finished"
    logger.info("Backtest run %s finished with %d trades.", run.id, run.trades)


@router.post("", status_code=status.HTTP_202_ACCEPTED, dependencies=[ApiKey])
async def start_backtest(body: BacktestRequest, request: Request) -> dict[str, Any]:
    """Start a backtest in the background; poll GET /backtests/{id} for progress and result.

    Needs the API key. Rejects with 422 a symbol that has no candles of the timeframe, and with
    429 a start while MAX_CONCURRENT_RUNS runs are running.
    """
    settings = _settings_for(body, getattr(request.app.state, "settings", None))
    _check_symbols(body, settings)
    runs = _runs(request)
    running = sum(1 for run in runs.values() if run.status == "running")
    if running >= MAX_CONCURRENT_RUNS:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{running} backtests are running, the maximum at once is {MAX_CONCURRENT_RUNS}; "
            "retry after one of them finishes (GET /api/v1/backtests lists them)",
        )
    _forget_oldest_finished(runs)
    run = BacktestRun(id=uuid.uuid4().hex[:12], request=body.model_dump())
    runs[run.id] = run
    logger.info("Backtest run %s started: %s.", run.id, run.request)
    # The response shows the run as started, before the worker thread can change it.
    started = run.public()
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, _execute, run, settings)
    return started


@router.get("/{run_id}")
async def get_backtest(run_id: str, request: Request) -> dict[str, Any]:
    """Return a backtest run's status, progress (0..1) and, when finished, its metrics."""
    run = _runs(request).get(run_id)
    if run is None:
        raise HTTPException(status_code=404, detail=f"backtest run {run_id!r} not found")
    return run.public()


@router.get("")
async def list_backtests(request: Request) -> list[dict[str, Any]]:
    """Return every backtest run kept in memory, oldest first."""
    return [run.public() for run in _runs(request).values()]
