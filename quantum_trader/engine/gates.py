"""The last gates before the exchange: PBA fits a sized candidate into the portfolio, and AELM
chooses how to execute it (market, limit, post-only or sliced over several candles).

Both read only data up to the decision candle.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quantum_trader.core.types import Order, PositionSide
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.exchange.markets import MarketRules, floor_quantity
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.subsystems.execution import (
    ExecutionManager,
    ExecutionRequest,
    ExecutionStyle,
    MarketContext,
)
from quantum_trader.subsystems.portfolio_balancer import (
    Candidate,
    OpenExposure,
    PortfolioBalancer,
)

# Candles of volume averaged for AELM's participation estimate.
VOLUME_WINDOW = 20


class PortfolioGate:
    """Runs PBA on one sized candidate against the open positions."""

    def __init__(
        self,
        balancer: PortfolioBalancer,
        exchange: SimulatedExchange,
        feed: CandleFeed,
        markets: dict[str, MarketRules],
        window: int,
    ) -> None:
        self.balancer = balancer
        self.exchange = exchange
        self.feed = feed
        self.markets = markets
        self.window = window
        self._closes = {s: np.asarray(series.close) for s, series in feed.series.items()}
        self._correlation_step = -(10**12)

    def fit(
        self,
        *,
        step: int,
        time_ns: int,
        symbol: str,
        side: PositionSide,
        quantity: float,
        price: float,
        score: float,
        equity: float,
        marks: dict[str, float],
    ) -> float | None:
        """Return the quantity PBA admits (maybe smaller), or None when it blocks the trade."""
        if not self.balancer.active:
            return quantity
        if step - self._correlation_step >= self.balancer.cadence:
            self._correlation_step = step
            self.balancer.update_correlations(time_ns, self._returns(step))
        positions = [
            OpenExposure(s, p.side, p.quantity * marks.get(s, p.entry_price))
            for s, p in self.exchange.positions.items()
        ]
        candidate = Candidate(symbol, side, quantity * price, score if math.isfinite(score) else 0)
        decision = self.balancer.admit(time_ns, [candidate], positions, equity)
        if not decision.binding:
            return quantity
        if not decision.admitted:
            return None
        rules = self.markets[symbol]
        admitted = floor_quantity(decision.admitted[0].notional / price, rules.step_size)
        if admitted <= 0 or admitted * price < rules.min_notional:
            return None
        return min(admitted, quantity)

    def _returns(self, step: int) -> dict[str, npt.NDArray[np.float64]]:
        returns = {}
        for symbol, series in self.feed.series.items():
            row = int(np.searchsorted(series.step_of_row, step, side="right")) - 1
            if row < 2:
                continue
            closes = self._closes[symbol][max(0, row - self.window) : row + 1]
            returns[symbol] = np.diff(np.log(closes))
        return returns


class ExecutionGate:
    """Turns an entry order into AELM's plan and holds the slices due on later candles."""

    def __init__(
        self, manager: ExecutionManager, feed: CandleFeed, atr: dict[str, npt.NDArray[np.float64]]
    ) -> None:
        self.manager = manager
        self.feed = feed
        self.atr = atr
        self.scheduled: list[Order] = []
        self._volumes = {s: np.asarray(series.volume) for s, series in feed.series.items()}

    def plan(self, time_ns: int, row: int, order: Order, reference_price: float) -> list[Order]:
        """Return the orders to submit now; later slices wait in ``scheduled``."""
        if not self.manager.active:
            return [order]
        series = self.feed.series[order.symbol]
        volumes = self._volumes[order.symbol][max(0, row - VOLUME_WINDOW + 1) : row + 1]
        atr = float(self.atr[order.symbol][row])
        market = MarketContext(
            avg_volume=float(volumes.mean()) if len(volumes) else math.nan,
            last_range=series.high[row] - series.low[row],
            volatility=atr / reference_price if reference_price > 0 else math.nan,
        )
        request = ExecutionRequest(
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            reference_price=reference_price,
            reduce_only=order.reduce_only,
            tag=order.tag,
            stop_distance=order.stop_distance,
            take_profit_distance=order.take_profit_distance,
            leverage=order.leverage,
        )
        plan = self.manager.plan(time_ns, request, market)
        if not plan.binding or plan.style is ExecutionStyle.MARKET:
            return [order]
        due = plan.due(time_ns)
        self.scheduled.extend(o for o in plan.orders if o.created_ns > time_ns)
        return due

    def release(self, time_ns: int) -> list[Order]:
        """Return the scheduled slices due at ``time_ns`` and forget them."""
        due = [o for o in self.scheduled if o.created_ns <= time_ns]
        if due:
            self.scheduled = [o for o in self.scheduled if o.created_ns > time_ns]
        return due
