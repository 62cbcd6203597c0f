"""Backtest runs: start one in the background, follow its progress, read its result."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from quantum_trader.backtest.metrics import compute_metrics, metrics_to_dict
from quantum_trader.backtest.runner import Progress, run_backtest
from quantum_trader.config import load_settings
from quantum_trader.errors import QuantumTraderError

router = APIRouter(prefix="/backtests", tags=["backtests"])

# Runs kept in memory per app; older ones are dropped beyond this count.
MAX_RUNS = 20


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["ai", "ema-cross"] = "ema-cross"
    timeframe: Literal["5m", "1h"] = "1h"
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"], min_length=1, max_length=5)
    start: str | None = None
    end: str | None = None


@dataclass
class BacktestRun:
    id: str
    request: dict[str, Any]
    status: str = "running"
    progress: float = 0.0
    error: str | None = None
    metrics: dict[str, Any] | None = None
    trades: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request,
            "status": self.status,
            "progress": round(self.progress, 4),
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


def _execute(run: BacktestRun, body: BacktestRequest) -> None:
    def on_step(done: int, total: int) -> None:
        run.progress = done / total if total else 1.0

    try:
        settings = load_settings(
            overrides={
                "strategy": {"name": body.strategy},
                "data": {
                    "timeframe": body.timeframe,
                    "symbols": tuple(body.symbols),
                    "start": body.start,
                    "end": body.end,
                },
                "backtest": {"ablation": False},
            }
        )
        result = run_backtest(settings, Progress(simulation=on_step))
        run.metrics = metrics_to_dict(compute_metrics(result))
        run.trades = len(result.trades)
        run.progress = 1.0
        run.status = "finished"
    except QuantumTraderError as exc:
        run.status = "failed"
        run.error = str(exc)


@router.post("", status_code=202)
async def start_backtest(body: BacktestRequest, request: Request) -> dict[str, Any]:
    """Start a backtest in the background; poll GET /backtests/{id} for progress and result."""
    runs = _runs(request)
    if len(runs) >= MAX_RUNS:
        oldest = next(iter(runs))
        del runs[oldest]
    run = BacktestRun(id=uuid.uuid4().hex[:12], request=body.model_dump())
    runs[run.id] = run
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, _execute, run, body)
    return run.public()


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
