"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import HealthResponse, ReadinessResponse
from quantum_trader.subsystems.base import Health

router = APIRouter(tags=["health"])


@router.get("/health")
async def liveness() -> HealthResponse:
    """Report that the process serves requests."""
    return HealthResponse()


@router.get("/health/ready")
async def readiness(request: Request, trader: Trader, response: Response) -> ReadinessResponse:
    """Report ready when every subsystem runs healthy, the journal database accepts a query and
    the replay delivered fresh candles."""
    problems = [
        f"subsystem {row.short_name} is {row.health}"
        for row in trader.subsystem_status()
        if row.health is not Health.HEALTHY
    ]
    loop_error: str | None = getattr(request.app.state, "loop_error", None)
    if loop_error is not None:
        problems.append(f"the replay loop failed: {loop_error}")
    database = trader.database_problem()
    if database is not None:
        problems.append(database)
    state = trader.status()
    if state.finished:
        problems.append("the replay has finished, so no new candles arrive")
    elif state.data_age_seconds is None:
        problems.append("no candle has been processed yet")
    elif state.data_age_seconds > state.data_age_limit_seconds:
        problems.append(
            f"the market data is {state.data_age_seconds:.0f} s old, "
            f"more than {state.data_age_limit_seconds:.0f} s"
        )
    if problems:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadinessResponse(ready=not problems, problems=problems)
