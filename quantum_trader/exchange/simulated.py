"""The simulated exchange: order validation, the order book and candle-by-candle execution.

``process_candle`` runs for every candle of every symbol with a position or an open order, in
this order:

1. Pending MARKET orders fill at the open with slippage, as takers. Nothing fills on a
   synthetic or zero-volume candle (there was no trading), so orders stay pending.
2. Futures liquidation, when the adverse extreme reaches the liquidation price before the stop
   would fill: the open is already beyond it, or there is no stop between the open and it.
3. The position's protective stop and take-profit (``fills.protective_exit``), on the candle
   of the entry fill as well, with the path starting from the fill price.
4. Resting LIMIT and STOP_MARKET orders. A position opened here gets its exits checked on the
   same candle from its fill price, which is the pessimistic reading of an unknown path.

``submit_order`` does not raise for an order the exchange rejects. The order gets status
REJECTED and a ``reject_reason``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from quantum_trader.config import ExchangeSettings
from quantum_trader.core.types import (
    Fill,
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
)
from quantum_trader.exchange import fills as fill_model
from quantum_trader.exchange.ledger import Ledger
from quantum_trader.exchange.margin import max_affordable_value
from quantum_trader.exchange.markets import MarketRules, check_order_size, floor_quantity
from quantum_trader.exchange.validation import validate_order

logger = logging.getLogger(__name__)


class SimulatedExchange(Ledger):
    """An exchange simulated on candles, for backtests and paper trading.

    State: ``cash`` (spot: free quote balance; futures: wallet balance), ``positions``,
    ``orders`` (every order ever submitted), ``fills``, ``trades`` (closed round trips),
    ``fees_paid`` and ``funding_paid`` (net funding paid by the account, positive = paid).
    """

    def __init__(
        self, markets: Mapping[str, MarketRules], settings: ExchangeSettings, initial_cash: float
    ) -> None:
        super().__init__(markets, settings, initial_cash)
        slippage = settings.slippage
        self._fixed_bps = slippage.fixed_bps
        self._range_share = slippage.range_share
        self._volume_impact = slippage.volume_impact
        self._orders_by_id: dict[str, Order] = {}
        self._open_orders: dict[str, list[Order]] = {}
        self._close_sequence = 0

    def submit_order(
        self, order: Order, time_ns: int, reference_price: float | None = None
    ) -> Order:
        """Accept ``order`` (status OPEN, pending until the next candle) or reject it.

        ``reference_price`` prices a market order for the minimum notional check. Without it
        the exchange uses the last close it saw for the symbol, and without that the check
        waits for the fill. A duplicate ``client_order_id`` returns the existing order and
        creates nothing.
        """
        existing = self._orders_by_id.get(order.client_order_id)
        if existing is not None:
            logger.info(
                "Order %s was already submitted (status %s); returning it unchanged.",
                order.client_order_id,
                existing.status.value,
            )
            return existing
        self._orders_by_id[order.client_order_id] = order
        self.orders.append(order)

        if reference_price is None:
            reference_price = self._last_close.get(order.symbol)
        reason = validate_order(
            order,
            self.markets.get(order.symbol),
            self.positions.get(order.symbol),
            self._open_orders.get(order.symbol, ()),
            self.maintenance_rate,
            reference_price,
        )
        if reason is not None:
            self._reject(order, reason, time_ns)
            return order
        order.status = OrderStatus.OPEN
        self._open_orders.setdefault(order.symbol, []).append(order)
        return order

    def cancel_order(self, client_order_id: str, time_ns: int) -> bool:
        """Cancel an open order; False when it is unknown or no longer open."""
        order = self._orders_by_id.get(client_order_id)
        if order is None or order.status is not OrderStatus.OPEN:
            return False
        self._cancel(order, "canceled on request", time_ns)
        return True

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Return the open orders, of one symbol or of all, oldest first."""
        if symbol is not None:
            return list(self._open_orders.get(symbol, ()))
        return [order for orders in self._open_orders.values() for order in orders]

    def has_activity(self, symbol: str) -> bool:
        """Return True when ``symbol`` has an open position or an open order."""
        return symbol in self.positions or symbol in self._open_orders

    def close_position_order(self, symbol: str, time_ns: int, tag: str) -> Order:
        """Submit a reduce-only market order for the whole open position of ``symbol``."""
        position = self.positions.get(symbol)
        self._close_sequence += 1
        is_long = position is None or position.side is PositionSide.LONG
        order = Order(
            client_order_id=f"close-{symbol}-{time_ns}-{self._close_sequence}",
            symbol=symbol,
            side=OrderSide.SELL if is_long else OrderSide.BUY,
            type=OrderType.MARKET,
            quantity=position.quantity if position is not None else 0.0,
            created_ns=time_ns,
            reduce_only=True,
            tag=str(tag),
            leverage=position.leverage if position is not None else 1.0,
        )
        return self.submit_order(order, time_ns)

    def process_candle(
        self,
        symbol: str,
        time_ns: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        synthetic: bool,
    ) -> list[Fill]:
        """Execute what this candle triggers for ``symbol`` and return the new fills."""
        position = self.positions.get(symbol)
        pending = self._open_orders.get(symbol)
        if position is None and pending is None:
            return []
        self._last_close[symbol] = close
        if synthetic or not volume > 0:
            return []

        fills: list[Fill] = []
        path_start = open
        if pending is not None and _has_market_order(pending):
            path_start = self._fill_market_orders(pending, time_ns, open, high, low, volume, fills)
        position = self.positions.get(symbol)
        if position is not None:
            self._check_exits(position, time_ns, path_start, high, low, fills)
        pending = self._open_orders.get(symbol)
        if pending is not None:
            self._fill_resting_orders(pending, time_ns, open, high, low, fills)
        return fills

    def _fill_market_orders(
        self,
        pending: list[Order],
        time_ns: int,
        open: float,
        high: float,
        low: float,
        volume: float,
        fills: list[Fill],
    ) -> float:
        """Fill the pending market orders at the open; return the last fill price."""
        last_price = open
        for order in [o for o in pending if o.type is OrderType.MARKET]:
            price = fill_model.market_fill_price(
                open,
                high,
                low,
                order.side.sign,
                order.quantity,
                volume,
                self._fixed_bps,
                self._range_share,
                self._volume_impact,
            )
            fill = self._execute(order, price, Liquidity.TAKER, time_ns)
            if fill is not None:
                fills.append(fill)
                last_price = price
        return last_price

    def _fill_resting_orders(
        self,
        pending: list[Order],
        time_ns: int,
        open: float,
        high: float,
        low: float,
        fills: list[Fill],
    ) -> None:
        # Scan without copying first: on most candles no resting order is touched.
        for order in pending:
            if self._resting_fill_price(order, open, high, low) is not None:
                break
        else:
            return

        for order in list(pending):
            if order.status is not OrderStatus.OPEN:
                continue  # canceled by a position close earlier in this loop
            price = self._resting_fill_price(order, open, high, low)
            if price is None:
                continue
            liquidity = Liquidity.MAKER if order.type is OrderType.LIMIT else Liquidity.TAKER
            fill = self._execute(order, price, liquidity, time_ns)
            if fill is None:
                continue
            fills.append(fill)
            position = self.positions.get(order.symbol)
            if position is not None and not order.reduce_only:
                self._check_exits(position, time_ns, price, high, low, fills)

    def _resting_fill_price(
        self, order: Order, open: float, high: float, low: float
    ) -> float | None:
        sign = order.side.sign
        if order.type is OrderType.LIMIT and order.price is not None:
            return fill_model.limit_fill_price(sign, order.price, open, high, low)
        if order.type is OrderType.STOP_MARKET and order.stop_price is not None:
            return fill_model.stop_fill_price(
                sign, order.stop_price, open, high, low, self._fixed_bps
            )
        return None

    def _check_exits(
        self,
        position: Position,
        time_ns: int,
        path_start: float,
        high: float,
        low: float,
        fills: list[Fill],
    ) -> None:
        """Liquidate, or fill the stop or take-profit, along the path from ``path_start``."""
        liquidation = position.liquidation_price
        if liquidation is not None and liquidation > 0:
            price = fill_model.liquidation_fill_price(
                position.side, liquidation, path_start, high, low
            )
            if price is not None and fill_model.liquidation_comes_first(
                position.side,
                liquidation,
                position.stop_price,
                position.take_profit_price,
                path_start,
            ):
                fills.append(self._liquidate(position, price, time_ns))
                return
        if position.stop_price is None and position.take_profit_price is None:
            return

        exit_ = fill_model.protective_exit(
            position.side,
            position.stop_price,
            position.take_profit_price,
            path_start,
            high,
            low,
            self._fixed_bps,
        )
        if exit_ is None:
            return
        price, reason = exit_
        liquidity = Liquidity.TAKER if reason == fill_model.STOP_LOSS else Liquidity.MAKER
        fills.append(self._close_at(position, price, liquidity, time_ns, reason))

    def _execute(
        self, order: Order, price: float, liquidity: Liquidity, time_ns: int
    ) -> Fill | None:
        """Fill ``order`` at ``price`` after the checks that depend on the fill price."""
        rules = self.markets[order.symbol]
        rate = rules.taker_fee if liquidity is Liquidity.TAKER else rules.maker_fee
        position = self.positions.get(order.symbol)
        if order.reduce_only:
            if position is None and self._has_pending_entry(order):
                return None  # a bracket order waits for its entry to fill
            if position is None or int(position.side) == order.side.sign:
                self._cancel(order, "reduce-only order has no opposite position to reduce", time_ns)
                return None
            quantity = min(order.quantity, position.quantity)
        else:
            opening_quantity = self._opening_quantity(order, position, price, rate, time_ns)
            if opening_quantity is None:
                return None
            quantity = opening_quantity

        fee = rate * price * quantity
        fill = self._book_fill(
            order.client_order_id,
            order.symbol,
            order.side,
            price,
            quantity,
            fee,
            liquidity,
            time_ns,
            order.tag,
        )
        order.status = OrderStatus.FILLED
        order.filled_quantity = quantity
        self._remove_open(order)
        if position is not None and order.reduce_only:
            self._reduce(position, quantity, price, fee, time_ns, order.tag)
        else:
            self._open_or_add(order, quantity, price, fee, time_ns)
        return fill

    def _opening_quantity(
        self, order: Order, position: Position | None, price: float, rate: float, time_ns: int
    ) -> float | None:
        """Return what an opening order can fill at ``price``, or None after rejecting it."""
        if position is not None and int(position.side) != order.side.sign:
            self._reject(order, "opposite position is open; close the position first", time_ns)
            return None
        rules = self.markets[order.symbol]
        quantity = self._affordable_quantity(order, price, rate, rules)
        reason = check_order_size(quantity, price, rules)
        if reason is not None:
            self._reject(order, f"at the fill price {price:.10g}: {reason}", time_ns)
            return None
        return quantity

    def _affordable_quantity(
        self, order: Order, price: float, fee_rate: float, rules: MarketRules
    ) -> float:
        """Return the order quantity, cut down to what the free balance pays for at ``price``."""
        if self.is_futures:
            free = self.cash - self._used_margin
            cost_per_unit = price * (1.0 / order.leverage + fee_rate)
            if order.quantity * cost_per_unit <= free:
                return order.quantity
            affordable = floor_quantity(max(free, 0.0) / cost_per_unit, rules.step_size)
        else:
            free = self.cash
            if order.quantity * price * (1.0 + fee_rate) <= free:
                return order.quantity
            affordable = floor_quantity(
                max_affordable_value(max(free, 0.0), fee_rate) / price, rules.step_size
            )
        logger.info(
            "Order %s for %g %s exceeds the free balance %.8g at %g; reduced to %g.",
            order.client_order_id,
            order.quantity,
            order.symbol,
            free,
            price,
            affordable,
        )
        return affordable

    def _has_pending_entry(self, reduce_only_order: Order) -> bool:
        for order in self._open_orders.get(reduce_only_order.symbol, ()):
            if not order.reduce_only and order.side is not reduce_only_order.side:
                return True
        return False

    def _reject(self, order: Order, reason: str, time_ns: int) -> None:
        if order.status is OrderStatus.OPEN:
            self._remove_open(order)
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        logger.info("Rejected order %s at %d: %s.", order.client_order_id, time_ns, reason)

    def _cancel(self, order: Order, reason: str, time_ns: int) -> None:
        self._remove_open(order)
        order.status = OrderStatus.CANCELED
        logger.info("Canceled order %s at %d: %s.", order.client_order_id, time_ns, reason)

    def _remove_open(self, order: Order) -> None:
        orders = self._open_orders.get(order.symbol)
        if orders is None:
            return
        # Compare by identity: dataclass equality would compare every field of every order.
        for index, candidate in enumerate(orders):
            if candidate is order:
                del orders[index]
                break
        if not orders:
            del self._open_orders[order.symbol]

    def _on_position_closed(self, symbol: str, time_ns: int) -> None:
        for order in self.open_orders(symbol):
            if order.reduce_only:
                self._cancel(order, f"the position in {symbol} is closed", time_ns)


def _has_market_order(pending: list[Order]) -> bool:
    return any(order.type is OrderType.MARKET for order in pending)
