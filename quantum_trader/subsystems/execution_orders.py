"""Order building for the execution manager: client order ids, capped prices and slices.

These are pure functions of their arguments, so two plans of the same decision build the same
orders with the same client order ids.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from quantum_trader.core.types import Order, OrderStatus
from quantum_trader.exchange.markets import (
    MarketRules,
    check_order_size,
    floor_quantity,
    round_price,
)

BPS = 1e-4
CLIENT_ID_PREFIX = "aelm-"
# The suffix of a market order that replaces a timed-out limit order.
REPLACEMENT_SUFFIX = "m"
# Tolerance for float ratios that should be whole numbers (0.02 / 0.01 = 2.0000000000000004).
_RATIO_TOLERANCE = 1e-9
# 10 bytes give 20 hex digits, so an id has at most 28 characters with the prefix and suffixes.
_DIGEST_BYTES = 10

# ccxt order statuses mapped to the order statuses of this package.
_CCXT_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}


def client_order_id(symbol: str, time_ns: int, tag: str, index: int) -> str:
    """Return the client order id of slice ``index`` of the decision (symbol, time, tag).

    The id is a hash of the decision, so it is the same on every run and on every retry. An
    exchange that has the order already then recognizes a retry as a duplicate.
    """
    digest = hashlib.blake2b(
        f"{symbol}|{time_ns}|{tag}".encode(), digest_size=_DIGEST_BYTES
    ).hexdigest()
    return f"{CLIENT_ID_PREFIX}{digest}-{index}"


def slice_count(participation: float, slice_participation: float, max_slices: int) -> int:
    """Return ``ceil(participation / slice_participation)``, at least 1 and at most max_slices."""
    ratio = participation / slice_participation
    count = math.ceil(ratio - _RATIO_TOLERANCE)
    return max(1, min(count, max_slices))


def fit_slice_count(
    quantity: float, count: int, reference_price: float, rules: MarketRules | None
) -> int:
    """Lower ``count`` until each slice, floored to the step, meets the exchange minimums.

    Returns 1 when even two slices are too small; the single order is then the whole quantity.
    """
    if rules is None:
        return count
    while count > 1:
        if check_order_size(quantity / count, reference_price, rules) is None:
            return count
        count -= 1
    return 1


def split_quantity(quantity: float, count: int, rules: MarketRules | None) -> list[float]:
    """Split ``quantity`` into ``count`` parts floored to the step; the last takes the rest.

    Without market rules the parts are equal floats and the last absorbs the float residue.
    A count above the quantity in steps gives parts of 0, so call ``fit_slice_count`` first.
    """
    if count <= 1:
        return [quantity]
    if rules is None:
        part = quantity / count
        return [part] * (count - 1) + [quantity - part * (count - 1)]
    step = rules.step_size
    part = floor_quantity(quantity / count, step)
    # The quantity is on the step already, so the rest is too, up to a float error that
    # floor_quantity removes.
    last = floor_quantity(quantity - part * (count - 1), step)
    return [part] * (count - 1) + [last]


def capped_price(
    reference_price: float, cap_bps: float, side_sign: int, tick: float | None
) -> float:
    """Return the worst price within ``cap_bps`` of the reference: above it for a buy.

    The price is rounded to the tick towards the reference, so the order never pays more than
    the cap: down for a buy, up for a sell.
    """
    raw = reference_price * (1.0 + side_sign * cap_bps * BPS)
    if tick is None:
        return raw
    ticks = raw / tick
    if side_sign > 0:
        whole = math.floor(ticks + _RATIO_TOLERANCE)
    else:
        whole = math.ceil(ticks - _RATIO_TOLERANCE)
    return round_price(whole * tick, tick)


def limit_price(reference_price: float, tick: float | None) -> float:
    """Return the reference price rounded to the nearest tick (unchanged without a tick)."""
    return reference_price if tick is None else round_price(reference_price, tick)


def apply_exchange_order(order: Order, data: Mapping[str, Any]) -> None:
    """Update ``order`` from an exchange order dict with ccxt's keys (``status``, ``filled``).

    An unknown status leaves the status unchanged. A closed order without a ``filled`` amount
    counts as fully filled.
    """
    status = _CCXT_STATUS.get(str(data.get("status", "")).lower())
    if status is not None:
        order.status = status
    filled = data.get("filled")
    if filled is not None:
        order.filled_quantity = float(filled)
    elif status is OrderStatus.FILLED:
        order.filled_quantity = order.quantity
    if status is OrderStatus.REJECTED and order.reject_reason is None:
        info = data.get("info")
        order.reject_reason = str(info) if info else "rejected by the exchange"
