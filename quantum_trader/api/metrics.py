"""Prometheus metrics: HTTP requests and latency, plus the trader's state read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from quantum_trader.engine.decisions import Action
from quantum_trader.paper.trader import PaperTrader
from quantum_trader.subsystems.base import Health


class TraderCollector(Collector):
    """Read equity, drawdown, positions, progress, data age, subsystem health, the ESS and loop
    lag on scrape."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        trader: PaperTrader | None = getattr(self._app.state, "trader", None)
        if trader is None:
            return
        state = trader.status()
        yield _gauge("qt_equity", "Account equity in the quote currency.", state.equity)
        yield _gauge("qt_drawdown_ratio", "Drawdown from the equity peak.", trader.drawdown())
        yield _gauge("qt_open_positions", "Open positions.", state.open_positions)
        yield _gauge(
            "qt_loop_lag_seconds",
            "How late the latest replay step started against its schedule.",
            state.loop_lag_seconds,
        )
        yield _gauge("qt_step", "Candle times processed so far.", state.step)
        if state.data_age_seconds is not None:
            yield _gauge(
                "qt_data_age_seconds",
                "Replay: seconds since the last step. Live: seconds since the newest candle "
                "closed.",
                state.data_age_seconds,
            )
        yield _gauge(
            "qt_ess_halted",
            "1 while the emergency stop blocks new entries, else 0.",
            float(trader.session.emergency_stop.trip is not None),
        )
        health = GaugeMetricFamily(
            "qt_subsystem_health",
            "1 for the subsystem's current health state, 0 for the others.",
            labels=["subsystem", "state"],
        )
        for row in trader.subsystem_status():
            for option in Health:
                health.add_metric([row.short_name, option.value], float(row.health is option))
        yield health
        trips = sum(
            1
            for decision in trader.session.log.decisions
            if decision.subsystem == "ESS" and decision.action is Action.TRIP
        )
        counter = CounterMetricFamily("qt_ess_trips", "Emergency stop trips so far.")
        counter.add_metric([], float(trips))
        yield counter


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def install_metrics(app: FastAPI) -> CollectorRegistry:
    """Add the request-counting middleware and return the registry to expose on /metrics."""
    registry = CollectorRegistry()
    requests = Counter(
        "qt_http_requests",
        "HTTP requests by method, route and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "qt_http_request_duration_seconds",
        "HTTP request latency by method and route.",
        ["method", "route"],
        registry=registry,
    )
    registry.register(TraderCollector(app))

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path, keeps the label set small.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    return registry
