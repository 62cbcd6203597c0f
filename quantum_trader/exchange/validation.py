"""Checks an order must pass before the simulated exchange accepts it.

Each check returns the reject reason as a sentence, or None. The quantity is truncated to the
market's step and the limit and stop prices are rounded to its tick in place, as an exchange
does, before the minimums are checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from quantum_trader.core.types import (
    MarketType,
    Order,
    OrderSide,
    OrderType,
    Position,
    PositionSide,
)
from quantum_trader.exchange.margin import check_leverage
from quantum_trader.exchange.markets import (
    MarketRules,
    check_order_size,
    floor_quantity,
    round_price,
)


def validate_order(
    order: Order,
    rules: MarketRules | None,
    position: Position | None,
    pending: Sequence[Order],
    maintenance_rate: float,
    reference_price: float | None,
) -> str | None:
    """Return why ``order`` must be rejected, or None to accept it.

    ``position`` is the open position of the order's symbol and ``pending`` its open orders.
    ``reference_price`` prices a market order for the minimum notional check; None skips
    that check until the fill.
    """
    if rules is None:
        return f"unknown symbol {order.symbol!r}: the exchange has no market rules for it"
    if not order.quantity > 0 or not math.isfinite(order.quantity):
        return f"quantity {order.quantity!r} of {order.symbol} is not a positive finite number"
    requested = order.quantity
    order.quantity = floor_quantity(requested, rules.step_size)
    if order.quantity <= 0:
        return (
            f"quantity {requested:.10g} of {order.symbol} is below one step "
            f"{rules.step_size:.10g} after truncation"
        )
    reason = _validate_prices(order, rules)
    if reason is not None:
        return reason
    if order.reduce_only:
        return _validate_reduce_only(order, position, pending)
    return _validate_opening(order, rules, position, maintenance_rate, reference_price)


def _validate_prices(order: Order, rules: MarketRules) -> str | None:
    if order.type is OrderType.LIMIT:
        if order.price is None or not 0 < order.price < math.inf:
            return (
                f"limit order {order.client_order_id} needs a positive finite price, "
                f"got {order.price}"
            )
        order.price = round_price(order.price, rules.tick_size)
    elif order.type is OrderType.STOP_MARKET:
        if order.stop_price is None or not 0 < order.stop_price < math.inf:
            return (
                f"stop-market order {order.client_order_id} needs a positive finite stop price, "
                f"got {order.stop_price}"
            )
        order.stop_price = round_price(order.stop_price, rules.tick_size)
    return None


def _validate_reduce_only(
    order: Order, position: Position | None, pending: Sequence[Order]
) -> str | None:
    if position is not None:
        if int(position.side) == order.side.sign:
            return (
                f"reduce-only {order.side.value} order would add to the "
                f"{position.side.name.lower()} position in {order.symbol}"
            )
        return None
    # A bracket may be sent together with its entry order, before the entry has filled.
    if any(not o.reduce_only and o.side is not order.side for o in pending):
        return None
    return f"reduce-only order has no open position in {order.symbol} to reduce"


def _validate_opening(
    order: Order,
    rules: MarketRules,
    position: Position | None,
    maintenance_rate: float,
    reference_price: float | None,
) -> str | None:
    if rules.market_type is MarketType.SPOT:
        if order.side is OrderSide.SELL:
            return (
                f"spot market {order.symbol} cannot open a short; to close a long, send the "
                "sell as reduce-only"
            )
        if order.leverage != 1.0:
            return f"spot orders cannot use leverage, got {order.leverage:g}; set leverage 1"
    if position is not None and int(position.side) != order.side.sign:
        return (
            f"a {position.side.name.lower()} position in {order.symbol} is open; close the "
            "position first with a reduce-only order"
        )

    price = reference_price
    if order.type is OrderType.LIMIT:
        price = order.price
    elif order.type is OrderType.STOP_MARKET:
        price = order.stop_price
    if rules.market_type is MarketType.FUTURES:
        reason = _validate_leverage(order, rules, position, maintenance_rate, price)
        if reason is not None:
            return reason
    if price is None:
        return None
    return check_order_size(order.quantity, price, rules)


def _validate_leverage(
    order: Order,
    rules: MarketRules,
    position: Position | None,
    maintenance_rate: float,
    price: float | None,
) -> str | None:
    leverage = order.leverage
    if not leverage >= 1 or not math.isfinite(leverage):
        return f"leverage {leverage!r} is invalid; use a value of at least 1"
    if leverage > rules.max_leverage:
        return (
            f"leverage {leverage:g} is above the maximum {rules.max_leverage:g} of {order.symbol}"
        )
    if position is not None and leverage != position.leverage:
        return (
            f"leverage {leverage:g} differs from the {position.leverage:g} of the open position "
            f"in {order.symbol}; add to it with the same leverage"
        )
    # The liquidation price scales with the entry, so any positive entry decides safety.
    entry = price if price is not None and 0 < price < math.inf else 1.0
    side = PositionSide(order.side.sign)
    return check_leverage(entry, leverage, maintenance_rate, side)
