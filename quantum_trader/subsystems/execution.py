"""AELM, the execution manager: how an approved order is sent to the exchange.

Participation is the order quantity over the recent average candle volume. ``plan`` picks:

- An order with an urgent tag (``urgent_tags``, such as an emergency stop) is one market order,
  because waiting would cost more than slippage.
- Participation below ``limit_participation``: one market order. When its expected slippage is
  above ``max_slippage_bps``, it becomes a limit order at the cap price, ``ref x (1 + cap)`` for a
  buy and ``ref x (1 - cap)`` for a sell, rounded to the tick towards the reference. The expected
  slippage is the fill model's slippage of a market order at the reference price, with the last
  candle's range and the order's participation.
- Participation up to ``slice_participation``: one limit order at the reference price, marked
  post-only when ``prefer_maker``.
- Above: ``ceil(participation / slice_participation)`` limit slices at the reference price, at
  most ``max_slices`` and only as many as the exchange minimums allow. Slice i is due i candles
  after the decision (its ``created_ns``). Each slice is the quantity over the slice count,
  floored to the step, and the last slice takes the remainder.

``expire_limits`` cancels a limit order planned here once ``limit_timeout_candles`` candles have
passed since it was due. While the decision is still valid, a market order for the unfilled
quantity replaces it. In observe and advisory mode ``plan`` returns the plain market order,
flagged non-binding, and records the recommendation.

Unknown inputs do not raise. An unknown average volume counts as full participation, as in the
fill model. An unknown last range falls back to ``volatility x price``. When both are unknown the
expected slippage is unknown and counts as above the cap. A quantity, reference price or leverage
that is NaN or not positive gets a rejected plan with no orders.

``submit`` sends one order to a live exchange client with ``submit_idempotent``: only a
TemporaryError is retried, after 0.5 s, 1 s and 2 s by default, and an OrderRejected is terminal.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping

from quantum_trader.core.types import Fill, Order, OrderStatus, OrderType
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError, OrderRejected, TemporaryError
from quantum_trader.exchange.markets import MarketRules, floor_quantity
from quantum_trader.exchange.orders import ExchangeClient, OrderRequest, submit_idempotent
from quantum_trader.subsystems.base import Subsystem
from quantum_trader.subsystems.execution_orders import REPLACEMENT_SUFFIX, apply_exchange_order
from quantum_trader.subsystems.execution_planner import ExecutionPlanner, ImpactEstimate
from quantum_trader.subsystems.execution_reports import (
    ExecutionReport,
    FillQuality,
    OrderOutcome,
    OrderState,
    QualitySummary,
    build_report,
    quality,
    summarize_quality,
)
from quantum_trader.subsystems.execution_types import (
    ExecutionPlan,
    ExecutionRequest,
    ExecutionSettings,
    ExecutionStyle,
    MarketContext,
    SlippageParameters,
    SubmissionResult,
    TimeoutAction,
)

__all__ = [
    "ExecutionManager",
    "ExecutionPlan",
    "ExecutionReport",
    "ExecutionRequest",
    "ExecutionSettings",
    "ExecutionStyle",
    "FillQuality",
    "ImpactEstimate",
    "MarketContext",
    "OrderOutcome",
    "OrderState",
    "QualitySummary",
    "SlippageParameters",
    "SubmissionResult",
    "TimeoutAction",
    "quality",
    "summarize_quality",
]

logger = logging.getLogger(__name__)


class ExecutionManager(Subsystem):
    """Plans, times out, submits and reconciles orders; see the module docstring for the rules.

    Counters: ``seen`` counts plans, ``changed`` counts binding plans other than one market
    order, and ``vetoed`` counts binding plans rejected for invalid input. ``arrival_prices``
    maps the client order id of every planned order, and of every timeout replacement, to the
    reference price of its decision, for ``quality``.
    """

    name = "Execution manager"
    short_name = "AELM"

    def __init__(
        self,
        settings: ExecutionSettings,
        slippage: SlippageParameters,
        markets: Mapping[str, MarketRules],
        timeframe_ns: int,
        log: DecisionLog | None = None,
    ) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        if timeframe_ns <= 0:
            raise ConfigurationError(
                f"timeframe_ns must be the candle duration in nanoseconds (> 0), got "
                f"{timeframe_ns}; pass the timeframe of the traded candles"
            )
        self.settings = settings
        self.markets = markets
        self.timeframe_ns = timeframe_ns
        self.planner = ExecutionPlanner(settings, slippage, markets, timeframe_ns)
        self.arrival_prices: dict[str, float] = {}
        self._limit_ids: set[str] = set()
        self._timed_out: dict[str, str] = {}
        self._reported_rejects: set[str] = set()

    def plan(
        self, time_ns: int, decision: ExecutionRequest, market: MarketContext
    ) -> ExecutionPlan:
        """Plan the orders of ``decision``, made at the close of the candle opened at time_ns."""
        self.heartbeat()
        self.seen += 1
        invalid = _invalid_request(decision)
        if invalid is not None:
            return self._reject(time_ns, decision, invalid)

        estimate = self.planner.estimate(decision, market)
        chosen = self.planner.choose(time_ns, decision, estimate)
        if not self.binding:
            chosen = self.planner.plain_market(time_ns, decision, estimate, chosen, self.mode)
        elif chosen.style is not ExecutionStyle.MARKET:
            self.changed += 1

        for order in chosen.orders:
            self.arrival_prices[order.client_order_id] = decision.reference_price
            if chosen.binding and order.type is OrderType.LIMIT:
                self._limit_ids.add(order.client_order_id)
        self.record(
            time_ns,
            decision.symbol,
            Action.SUBMIT,
            chosen.reason,
            {
                "quantity": decision.quantity,
                "reference_price": decision.reference_price,
                "participation": estimate.participation,
                "expected_slippage_bps": estimate.expected_slippage_bps,
                "orders": float(len(chosen.orders)),
            },
        )
        return chosen

    def expire_limits(
        self,
        time_ns: int,
        open_orders: Iterable[Order],
        decision_valid: Callable[[Order], bool],
    ) -> list[TimeoutAction]:
        """Time out the limit orders planned here that rested ``limit_timeout_candles`` candles.

        Call it at the close of the candle opened at ``time_ns``, after that candle's fills.
        ``decision_valid`` returns whether the decision behind an order is still valid. The
        caller cancels each ``canceled`` order on the exchange and submits its ``replacement``
        (a market order for the unfilled quantity, floored to the step), when there is one.
        Orders not planned here as binding limit orders are left alone.
        """
        self.heartbeat()
        actions: list[TimeoutAction] = []
        for order in open_orders:
            if order.client_order_id not in self._limit_ids or order.status is not OrderStatus.OPEN:
                continue
            waited = (time_ns - order.created_ns) // self.timeframe_ns
            if waited < self.settings.limit_timeout_candles:
                continue
            actions.append(self._time_out(time_ns, order, waited, decision_valid(order)))
        return actions

    def submit(
        self,
        client: ExchangeClient,
        order: Order,
        time_ns: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> SubmissionResult:
        """Send ``order`` through ``client`` with idempotent retries and update its status.

        A TemporaryError is retried ``max_retries`` times, after ``retry_backoff_s`` doubling
        each time, with the same client order id. A rejection is recorded with its reason, never
        retried, and sets the order's status to REJECTED.
        """
        self.heartbeat()
        order_id = order.client_order_id
        if order.type not in (OrderType.MARKET, OrderType.LIMIT):
            reason = f"submit sends market and limit orders only, not {order.type.value}"
            self._mark_rejected(time_ns, order, reason)
            return SubmissionResult(order_id, "rejected", reason)
        # NOTE: OrderRequest carries no reduce-only or post-only flag, so a live reduce-only
        # order goes out as a plain order. The caller must check the position side first.
        request = OrderRequest(
            order.symbol, order.side, order.type, order.quantity, order_id, order.price
        )
        settings = self.settings
        try:
            response = submit_idempotent(
                client, request, settings.max_retries, settings.retry_backoff_s, sleep
            )
        except OrderRejected as exc:
            self._mark_rejected(time_ns, order, exc.reason)
            return SubmissionResult(order_id, "rejected", exc.reason)
        except TemporaryError as exc:
            reason = f"order {order_id} is unconfirmed: {exc}"
            logger.warning("%s. It stays open here until a lookup confirms it.", reason)
            self.record(time_ns, order.symbol, Action.SUBMIT, reason, {"quantity": order.quantity})
            return SubmissionResult(order_id, "unconfirmed", str(exc))
        apply_exchange_order(order, response)
        return SubmissionResult(order_id, "accepted", "", dict(response))

    def reconcile(self, orders: Iterable[Order], fills: Iterable[Fill]) -> ExecutionReport:
        """Classify ``orders`` by their ``fills``; record each reject once, at its order's time.

        The report tracks partial fills (``remaining_quantity``), rejects with their reason and
        the timeouts of ``expire_limits``.
        """
        self.heartbeat()
        order_list = list(orders)
        report = build_report(order_list, fills, self._timed_out)
        for order, state in zip(order_list, report.orders, strict=True):
            if state.terminal:
                self._limit_ids.discard(order.client_order_id)
            if state.outcome is OrderOutcome.REJECTED:
                self._mark_rejected(order.created_ns, order, state.reason)
        return report

    def _time_out(self, time_ns: int, order: Order, waited: int, valid: bool) -> TimeoutAction:
        order_id = order.client_order_id
        self._limit_ids.discard(order_id)
        remaining = order.quantity - order.filled_quantity
        rules = self.markets.get(order.symbol)
        if rules is not None:
            remaining = floor_quantity(remaining, rules.step_size)

        reason = (
            f"limit order {order_id} is unfilled after {waited} candles "
            f"(limit_timeout_candles {self.settings.limit_timeout_candles}); canceled"
        )
        replacement: Order | None = None
        if not valid:
            reason += " without a replacement because the decision is no longer valid"
        elif remaining <= 0:
            reason += " without a replacement because nothing remains to fill"
        else:
            replacement = _market_replacement(order, remaining, time_ns)
            reason += (
                f" and replaced by market order {replacement.client_order_id} for {remaining:g}"
            )
            arrival = self.arrival_prices.get(order_id)
            if arrival is not None:
                self.arrival_prices[replacement.client_order_id] = arrival

        self._timed_out[order_id] = reason
        logger.info("%s.", reason)
        self.record(
            time_ns,
            order.symbol,
            Action.SUBMIT,
            reason,
            {"waited_candles": float(waited), "remaining_quantity": remaining},
        )
        return TimeoutAction(order, replacement, reason)

    def _mark_rejected(self, time_ns: int, order: Order, reason: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        if order.client_order_id in self._reported_rejects:
            return
        self._reported_rejects.add(order.client_order_id)
        logger.warning(
            "Order %s on %s was rejected and will not be retried: %s.",
            order.client_order_id,
            order.symbol,
            reason,
        )
        self.record(
            time_ns,
            order.symbol,
            Action.REJECT,
            f"order {order.client_order_id} rejected: {reason}",
            {"quantity": order.quantity},
        )

    def _reject(self, time_ns: int, decision: ExecutionRequest, reason: str) -> ExecutionPlan:
        if self.binding:
            self.vetoed += 1
        self.record(
            time_ns,
            decision.symbol,
            Action.REJECT,
            reason,
            {"quantity": decision.quantity, "reference_price": decision.reference_price},
        )
        return ExecutionPlan(
            orders=[],
            style=ExecutionStyle.REJECTED,
            expected_slippage_bps=math.nan,
            reason=reason,
            binding=self.binding,
            recommended=ExecutionStyle.REJECTED,
        )


def _invalid_request(decision: ExecutionRequest) -> str | None:
    """Describe why ``decision`` cannot be executed, or return None when it can."""
    checks = (
        ("quantity", decision.quantity),
        ("reference price", decision.reference_price),
        ("leverage", decision.leverage),
    )
    for label, value in checks:
        if not (math.isfinite(value) and value > 0):
            return f"invalid {label} {value!r} for {decision.symbol}; no order"
    return None


def _market_replacement(order: Order, quantity: float, time_ns: int) -> Order:
    return Order(
        client_order_id=order.client_order_id + REPLACEMENT_SUFFIX,
        symbol=order.symbol,
        side=order.side,
        type=OrderType.MARKET,
        quantity=quantity,
        created_ns=time_ns,
        reduce_only=order.reduce_only,
        tag=order.tag,
        leverage=order.leverage,
        stop_distance=order.stop_distance,
        take_profit_distance=order.take_profit_distance,
    )
