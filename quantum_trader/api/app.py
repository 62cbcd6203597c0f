"""The FastAPI application of the paper-trading service.

Every endpoint is ``async def`` on purpose: it then runs on the event loop that also runs the
replay loop, so a request never reads the session while a kernel step is half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from quantum_trader.api.metrics import install_metrics
from quantum_trader.api.routes import (
    ai,
    backtests,
    decisions,
    equity,
    ess,
    health,
    orders,
    positions,
    selection,
    signals,
    stream,
    subsystems,
    trades,
)
from quantum_trader.config import Settings
from quantum_trader.errors import ConfigurationError
from quantum_trader.live.trader import LiveTrader
from quantum_trader.paper.trader import PaperTrader

logger = logging.getLogger(__name__)

TraderFactory = Callable[[Settings], PaperTrader]


def create_app(
    settings: Settings,
    trader_factory: TraderFactory | None = None,
    *,
    speed: float = 1.0,
) -> FastAPI:
    """Build the app, whose lifespan prepares and starts the trader and runs the replay loop.

    ``speed`` is the replay speed in candle times per second. A failure while preparing or
    starting the trader aborts startup with that failure, after stopping what had started.
    Without ``trader_factory``, the trader replays the shipped candles, or trades live candles
    from the exchange when ``live.enabled`` is set.
    """
    factory: TraderFactory = trader_factory or (
        LiveTrader if settings.live.enabled else PaperTrader
    )
    if not speed > 0:
        raise ConfigurationError(
            f"paper speed must be a positive number of candles per second, got {speed}"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        trader = factory(settings)
        trader.prepare()
        # The registry logs one line per subsystem started, and stops the started ones again
        # when one fails.
        trader.start()
        app.state.trader = trader
        app.state.loop_error = None
        stop_event = asyncio.Event()
        task = asyncio.create_task(trader.run(speed, stop_event), name="paper-replay")
        task.add_done_callback(lambda done: _on_loop_done(app, done))
        if isinstance(trader, LiveTrader):
            logger.info(
                "Live paper trader started, polling every %g s.", settings.live.poll_seconds
            )
        else:
            logger.info("Paper trader started, replaying at %g candle times per second.", speed)
        try:
            yield
        finally:
            stop_event.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            trader.stop()
            app.state.trader = None
            logger.info("Paper trader stopped.")

    app = FastAPI(title="Quantum Trader", version="1", lifespan=lifespan)
    # The settings the service was started with; backtest runs start from them.
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _validation_error)
    metrics_registry = install_metrics(app)

    app.include_router(health.router)
    api = APIRouter(prefix="/api/v1")
    modules = (ai, signals, trades, positions, orders, equity, decisions, subsystems, ess)
    for module in (*modules, selection, backtests):
        api.include_router(module.router)
    api.include_router(stream.router)
    app.include_router(api)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _on_loop_done(app: FastAPI, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        app.state.loop_error = str(error) or type(error).__name__
        logger.error("The paper replay loop failed: %r", error, exc_info=error)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Return 422 with a one-line message naming each invalid field, plus the details."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        problems.append(f"{field}: {error['msg']}")
    return JSONResponse(
        status_code=422,
        content={
            "message": "invalid request: " + "; ".join(problems),
            "detail": jsonable_encoder(exc.errors()),
        },
    )
