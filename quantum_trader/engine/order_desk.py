"""Order construction and submission shared by the pipeline's entry, exit and management paths.

Every order gets a deterministic client order id (tag, symbol, candle time and a sequence
number), so a rerun over the same candles produces the same ids, and every rejection is
recorded as a decision.
"""

from __future__ import annotations

from quantum_trader.core.types import ExitReason, Order, OrderSide, OrderType, PositionSide
from quantum_trader.engine.bus import EventBus
from quantum_trader.engine.decisions import Action, Decision, DecisionLog
from quantum_trader.exchange.markets import floor_quantity
from quantum_trader.exchange.simulated import SimulatedExchange


class OrderDesk:
    """Builds and submits orders on the exchange and records what happened to them.

    Subclasses set ``exchange``, ``log``, ``bus``, ``last_close`` and ``_sequence``.
    """

    exchange: SimulatedExchange
    log: DecisionLog
    bus: EventBus
    last_close: dict[str, float]
    _sequence: int

    def submit_reduce(
        self, symbol: str, quantity: float, time_ns: int, reason: ExitReason
    ) -> Order | None:
        """Close ``quantity`` of a position with a reduce-only market order."""
        position = self.exchange.positions.get(symbol)
        if position is None or self._has_pending_close(symbol) or quantity <= 0:
            return None
        side = OrderSide.SELL if position.side is PositionSide.LONG else OrderSide.BUY
        order = Order(
            client_order_id=self._next_id(reason.value, symbol, time_ns),
            symbol=symbol,
            side=side,
            type=OrderType.MARKET,
            quantity=self._reduce_quantity(symbol, quantity, position.quantity),
            created_ns=time_ns,
            reduce_only=True,
            tag=reason.value,
        )
        return self._submit(order, time_ns, self.last_close.get(symbol, position.entry_price))

    def _reduce_quantity(self, symbol: str, quantity: float, held: float) -> float:
        """Floor a partial exit to the step; a remainder below one step closes everything."""
        step = self.exchange.markets[symbol].step_size
        reduced = floor_quantity(min(quantity, held), step)
        return held if held - reduced < step else reduced

    def submit_add(self, symbol: str, quantity: float, time_ns: int) -> Order | None:
        """Add ``quantity`` on the side of an open position (a scale-in), as a market order."""
        position = self.exchange.positions.get(symbol)
        if position is None or self._has_pending_entry(symbol) or quantity <= 0:
            return None
        order = Order(
            client_order_id=self._next_id("scale-in", symbol, time_ns),
            symbol=symbol,
            side=OrderSide.BUY if position.side is PositionSide.LONG else OrderSide.SELL,
            type=OrderType.MARKET,
            quantity=quantity,
            created_ns=time_ns,
            tag="scale_in",
            leverage=position.leverage,
        )
        return self._submit(order, time_ns, self.last_close.get(symbol, position.entry_price))

    def submit_close(self, symbol: str, time_ns: int, reason: ExitReason) -> Order | None:
        position = self.exchange.positions.get(symbol)
        if position is None or self._has_pending_close(symbol):
            return None
        side = OrderSide.SELL if position.side is PositionSide.LONG else OrderSide.BUY
        order = Order(
            client_order_id=self._next_id(reason.value, symbol, time_ns),
            symbol=symbol,
            side=side,
            type=OrderType.MARKET,
            quantity=position.quantity,
            created_ns=time_ns,
            reduce_only=True,
            tag=reason.value,
        )
        return self._submit(order, time_ns, self.last_close.get(symbol, position.entry_price))

    def _submit(self, order: Order, time_ns: int, reference_price: float) -> Order:
        accepted = self.exchange.submit_order(order, time_ns, reference_price=reference_price)
        if accepted.reject_reason is not None:
            self._record(
                time_ns,
                order.symbol,
                "Exchange",
                Action.REJECT,
                accepted.reject_reason,
                {
                    "quantity": order.quantity,
                },
            )
        if self.bus.has_subscribers("order"):
            self.bus.publish("order", accepted)
        return accepted

    def _available_cash(self) -> float:
        return self.exchange.cash - self.exchange.used_margin()

    def _has_pending_entry(self, symbol: str) -> bool:
        return any(not o.reduce_only for o in self.exchange.open_orders(symbol))

    def _has_pending_close(self, symbol: str) -> bool:
        return any(
            o.reduce_only and o.type is OrderType.MARKET for o in self.exchange.open_orders(symbol)
        )

    def _next_id(self, tag: str, symbol: str, time_ns: int) -> str:
        self._sequence += 1
        return f"qt-{tag}-{symbol.replace('/', '').replace(':', '')}-{time_ns}-{self._sequence}"

    def _record(
        self,
        time_ns: int,
        symbol: str,
        subsystem: str,
        action: Action,
        reason: str,
        numbers: dict[str, float],
    ) -> None:
        decision = Decision(time_ns, symbol, subsystem, action, reason, numbers)
        self.log.record(decision)
        if self.bus.has_subscribers("decision"):
            self.bus.publish("decision", decision)
