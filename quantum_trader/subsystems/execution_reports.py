"""Reconciliation of sent orders with their fills, and execution quality for the report.

Both work the same for the simulated exchange and live: orders are ``Order`` objects (a live
order is updated from the exchange's order dict with ``apply_exchange_order``) and fills are
``Fill`` objects.

Slippage is signed so that positive is worse for us, in basis points of the arrival price::

    slippage_bps = side_sign x (avg_fill_price - arrival_price) / arrival_price x 10_000

A buy filled at 100.1 against an arrival price of 100 is +10 bps, and so is a sell at 99.9.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from quantum_trader.core.types import Fill, Liquidity, Order, OrderSide, OrderStatus

logger = logging.getLogger(__name__)

_BPS_PER_UNIT = 10_000.0
# A fill within this share of the order quantity counts as complete.
_FILLED_TOLERANCE = 1e-9


class OrderOutcome(StrEnum):
    OPEN = "open"
    PARTIAL = "partial"
    FILLED = "filled"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OrderState:
    """One order after reconciliation.

    ``avg_fill_price`` is NaN when nothing filled. ``terminal`` is True when the exchange no
    longer works the order (filled, canceled, timed out or rejected), so ``remaining_quantity``
    of a terminal order will never fill. ``reason`` is the reject or timeout reason.
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    filled_quantity: float
    remaining_quantity: float
    avg_fill_price: float
    outcome: OrderOutcome
    terminal: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """Every order's state, plus the fills whose client order id matches no order given."""

    orders: tuple[OrderState, ...]
    unmatched_fills: tuple[Fill, ...] = ()

    def with_outcome(self, outcome: OrderOutcome) -> list[OrderState]:
        """Return the orders with this outcome, in the order given."""
        return [state for state in self.orders if state.outcome is outcome]

    def remaining_by_symbol(self) -> dict[str, float]:
        """Return the unfilled quantity of orders the exchange still works, per symbol."""
        remaining: dict[str, float] = {}
        for state in self.orders:
            if not state.terminal and state.remaining_quantity > 0:
                total = remaining.get(state.symbol, 0.0) + state.remaining_quantity
                remaining[state.symbol] = total
        return remaining


def build_report(
    orders: Iterable[Order], fills: Iterable[Fill], timed_out: Mapping[str, str] | None = None
) -> ExecutionReport:
    """Match ``fills`` to ``orders`` by client order id and classify every order.

    ``timed_out`` maps the ids of orders canceled for a timeout to the reason. The outcome
    order of precedence is rejected, timed out, canceled, filled, partial, open.
    """
    timeouts = timed_out or {}
    order_list = list(orders)
    known = {order.client_order_id for order in order_list}
    by_id: dict[str, list[Fill]] = {}
    unmatched: list[Fill] = []
    for fill in fills:
        if fill.client_order_id in known:
            by_id.setdefault(fill.client_order_id, []).append(fill)
        else:
            unmatched.append(fill)
    states = tuple(
        _order_state(order, by_id.get(order.client_order_id, []), timeouts) for order in order_list
    )
    return ExecutionReport(states, tuple(unmatched))


def _order_state(order: Order, fills: list[Fill], timeouts: Mapping[str, str]) -> OrderState:
    filled_by_fills = math.fsum(fill.quantity for fill in fills)
    # A live order may report a filled amount before its fills arrive, so take the larger.
    filled = max(filled_by_fills, order.filled_quantity)
    average = (
        math.fsum(fill.price * fill.quantity for fill in fills) / filled_by_fills
        if filled_by_fills > 0
        else math.nan
    )
    complete = filled >= order.quantity * (1.0 - _FILLED_TOLERANCE)
    remaining = 0.0 if complete else order.quantity - filled
    reason = ""
    if order.status is OrderStatus.REJECTED:
        outcome = OrderOutcome.REJECTED
        reason = order.reject_reason or "rejected without a reason"
    elif order.client_order_id in timeouts:
        outcome = OrderOutcome.TIMED_OUT
        reason = timeouts[order.client_order_id]
    elif order.status is OrderStatus.CANCELED:
        outcome = OrderOutcome.CANCELED
    elif complete:
        outcome = OrderOutcome.FILLED
    elif filled > 0:
        outcome = OrderOutcome.PARTIAL
    else:
        outcome = OrderOutcome.OPEN
    return OrderState(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        filled_quantity=filled,
        remaining_quantity=remaining,
        avg_fill_price=average,
        outcome=outcome,
        terminal=order.status is not OrderStatus.OPEN or outcome is OrderOutcome.TIMED_OUT,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class FillQuality:
    """The execution of one order against its arrival price; slippage positive = worse for us."""

    client_order_id: str
    symbol: str
    side: OrderSide
    arrival_price: float
    avg_fill_price: float
    slippage_bps: float
    quantity: float


@dataclass(frozen=True, slots=True)
class QualitySummary:
    """Slippage statistics over orders (each order counts once) and the maker share of fills.

    Every statistic is NaN when no order has a quality. ``p95_slippage_bps`` is the 95th
    percentile with linear interpolation between the closest ranks (numpy's default).
    """

    orders: int
    fills: int
    mean_slippage_bps: float
    median_slippage_bps: float
    p95_slippage_bps: float
    maker_share: float

    def as_dict(self) -> dict[str, float]:
        """Return the summary as numbers, for the backtest report."""
        return {
            "orders": float(self.orders),
            "fills": float(self.fills),
            "mean_slippage_bps": self.mean_slippage_bps,
            "median_slippage_bps": self.median_slippage_bps,
            "p95_slippage_bps": self.p95_slippage_bps,
            "maker_share": self.maker_share,
        }


def quality(fills: Iterable[Fill], arrival_prices: Mapping[str, float]) -> list[FillQuality]:
    """Return the fill quality of every order with fills and a valid arrival price.

    Orders come in the order of their first fill. Fills of an order with no arrival price, or
    with a NaN, infinite or non-positive one, are skipped and counted in one log line.
    """
    grouped: dict[str, list[Fill]] = {}
    skipped = 0
    for fill in fills:
        arrival = arrival_prices.get(fill.client_order_id)
        if arrival is None or not (math.isfinite(arrival) and arrival > 0) or fill.quantity <= 0:
            skipped += 1
            continue
        grouped.setdefault(fill.client_order_id, []).append(fill)
    if skipped:
        logger.info(
            "Execution quality skipped %d fills without a valid arrival price or quantity.",
            skipped,
        )
    return [_fill_quality(order_fills, arrival_prices) for order_fills in grouped.values()]


def _fill_quality(fills: list[Fill], arrival_prices: Mapping[str, float]) -> FillQuality:
    first = fills[0]
    arrival = arrival_prices[first.client_order_id]
    quantity = math.fsum(fill.quantity for fill in fills)
    average = math.fsum(fill.price * fill.quantity for fill in fills) / quantity
    slippage_bps = first.side.sign * (average - arrival) / arrival * _BPS_PER_UNIT
    return FillQuality(
        client_order_id=first.client_order_id,
        symbol=first.symbol,
        side=first.side,
        arrival_price=arrival,
        avg_fill_price=average,
        slippage_bps=slippage_bps,
        quantity=quantity,
    )


def summarize_quality(qualities: Sequence[FillQuality], fills: Iterable[Fill]) -> QualitySummary:
    """Summarize ``qualities``; the maker share counts the fills of those orders only."""
    ids = {item.client_order_id for item in qualities}
    fill_count = 0
    maker_count = 0
    for fill in fills:
        if fill.client_order_id in ids:
            fill_count += 1
            maker_count += fill.liquidity is Liquidity.MAKER
    if not qualities:
        return QualitySummary(0, fill_count, math.nan, math.nan, math.nan, math.nan)
    values = np.array([item.slippage_bps for item in qualities], dtype=np.float64)
    return QualitySummary(
        orders=len(qualities),
        fills=fill_count,
        mean_slippage_bps=float(values.mean()),
        median_slippage_bps=float(np.median(values)),
        p95_slippage_bps=float(np.percentile(values, 95)),
        maker_share=maker_count / fill_count if fill_count else math.nan,
    )
