"""The execution manager's order rules: participation, expected slippage and the order style.

The rules are listed in the docstring of ``quantum_trader.subsystems.execution``. This module
has no state, counters or decision log, so the same decision always gives the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from quantum_trader.core.types import Order, OrderType
from quantum_trader.exchange import fills as fill_model
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.subsystems import execution_orders as build
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.execution_types import (
    ExecutionPlan,
    ExecutionRequest,
    ExecutionSettings,
    ExecutionStyle,
    MarketContext,
    SlippageParameters,
)


@dataclass(frozen=True, slots=True)
class ImpactEstimate:
    """Participation and expected market-order slippage (NaN when unknown) of one decision.

    ``notes`` name the unknown inputs that were replaced, and their replacements.
    """

    participation: float
    expected_slippage_bps: float
    notes: tuple[str, ...] = ()


class ExecutionPlanner:
    """The execution rules, applied to one decision at a time."""

    def __init__(
        self,
        settings: ExecutionSettings,
        slippage: SlippageParameters,
        markets: Mapping[str, MarketRules],
        timeframe_ns: int,
    ) -> None:
        self.settings = settings
        self.slippage = slippage
        self.markets = markets
        self.timeframe_ns = timeframe_ns

    def estimate(self, decision: ExecutionRequest, market: MarketContext) -> ImpactEstimate:
        """Return the participation and the expected slippage of one market order."""
        notes: list[str] = []
        volume = market.avg_volume
        if math.isfinite(volume) and volume > 0:
            participation = decision.quantity / volume
        else:
            participation = 1.0
            notes.append(f"average volume {volume!r} is unknown, so participation counts as 1")

        price = decision.reference_price
        candle_range = market.last_range
        if not (math.isfinite(candle_range) and candle_range >= 0):
            candle_range = market.volatility * price
            notes.append(f"last range {market.last_range!r} is unknown; using volatility x price")
        if not (math.isfinite(candle_range) and candle_range >= 0):
            notes.append("volatility is unknown too, so the expected slippage is unknown")
            return ImpactEstimate(participation, math.nan, tuple(notes))

        # The fill model divides the quantity by the volume. Passing the participation over a
        # volume of 1 gives the same value and the same cap at full participation.
        offset = fill_model.slippage(
            price,
            decision.side.sign,
            candle_range,
            0.0,
            participation,
            1.0,
            self.slippage.fixed_bps,
            self.slippage.range_share,
            self.slippage.volume_impact,
        )
        return ImpactEstimate(participation, abs(offset) / price / build.BPS, tuple(notes))

    def choose(
        self, time_ns: int, decision: ExecutionRequest, estimate: ImpactEstimate
    ) -> ExecutionPlan:
        """Return the binding plan the rules give for ``decision``."""
        settings = self.settings
        participation = estimate.participation
        prefix = "".join(f"{note}; " for note in estimate.notes)
        if decision.tag.split(":", 1)[0] in settings.urgent_tags:
            reason = f"{prefix}urgent tag {decision.tag!r}: one market order"
            return self._single(time_ns, decision, estimate, OrderType.MARKET, None, reason)
        if participation < settings.limit_participation:
            return self._market_or_capped(time_ns, decision, estimate, prefix)
        if participation <= settings.slice_participation:
            reason = (
                f"{prefix}participation {participation:.4%} is from limit_participation "
                f"{settings.limit_participation:.4%} up to slice_participation "
                f"{settings.slice_participation:.4%}: one limit order at the reference price"
            )
            price = build.limit_price(decision.reference_price, self._tick(decision.symbol))
            return self._single(time_ns, decision, estimate, OrderType.LIMIT, price, reason)
        return self._sliced(time_ns, decision, estimate, prefix)

    def plain_market(
        self,
        time_ns: int,
        decision: ExecutionRequest,
        estimate: ImpactEstimate,
        recommended: ExecutionPlan,
        mode: Mode,
    ) -> ExecutionPlan:
        """Return the non-binding plan of observe and advisory mode: one market order."""
        order = self.order(decision, time_ns, 0, decision.quantity, OrderType.MARKET, None)
        reason = (
            f"recommends {recommended.style.value} ({recommended.reason}); the plain market "
            f"order is sent because the mode is {mode.value}"
        )
        return ExecutionPlan(
            orders=[order],
            style=ExecutionStyle.MARKET,
            expected_slippage_bps=estimate.expected_slippage_bps,
            reason=reason,
            binding=False,
            participation=estimate.participation,
            recommended=recommended.style,
        )

    def order(
        self,
        decision: ExecutionRequest,
        time_ns: int,
        index: int,
        quantity: float,
        order_type: OrderType,
        price: float | None,
    ) -> Order:
        """Build order ``index`` of ``decision``, due ``index`` candles after ``time_ns``."""
        return Order(
            client_order_id=build.client_order_id(decision.symbol, time_ns, decision.tag, index),
            symbol=decision.symbol,
            side=decision.side,
            type=order_type,
            quantity=quantity,
            created_ns=time_ns + index * self.timeframe_ns,
            price=price,
            reduce_only=decision.reduce_only,
            tag=decision.tag,
            leverage=decision.leverage,
            stop_distance=decision.stop_distance,
            take_profit_distance=decision.take_profit_distance,
        )

    def _market_or_capped(
        self, time_ns: int, decision: ExecutionRequest, estimate: ImpactEstimate, prefix: str
    ) -> ExecutionPlan:
        cap = self.settings.max_slippage_bps
        expected = estimate.expected_slippage_bps
        below = (
            f"participation {estimate.participation:.4%} is below limit_participation "
            f"{self.settings.limit_participation:.4%}"
        )
        # A NaN expected slippage fails this test, so an unknown slippage counts as above the cap.
        if expected <= cap:
            reason = (
                f"{prefix}{below} and the expected slippage {expected:.2f} bps is within the "
                f"cap {cap:g} bps: one market order"
            )
            return self._single(time_ns, decision, estimate, OrderType.MARKET, None, reason)
        price = build.capped_price(
            decision.reference_price, cap, decision.side.sign, self._tick(decision.symbol)
        )
        reason = (
            f"{prefix}{below}, but the expected slippage {expected:.2f} bps is above the cap "
            f"{cap:g} bps: one limit order at the cap price {price:.10g}"
        )
        # A limit at the cap price crosses the book, so it is never post-only.
        return self._single(
            time_ns, decision, estimate, OrderType.LIMIT, price, reason, marketable=True
        )

    def _sliced(
        self, time_ns: int, decision: ExecutionRequest, estimate: ImpactEstimate, prefix: str
    ) -> ExecutionPlan:
        settings = self.settings
        rules = self.markets.get(decision.symbol)
        requested = build.slice_count(
            estimate.participation, settings.slice_participation, settings.max_slices
        )
        count = build.fit_slice_count(decision.quantity, requested, decision.reference_price, rules)
        reason = (
            f"{prefix}participation {estimate.participation:.4%} is above slice_participation "
            f"{settings.slice_participation:.4%}: {count} limit slices on consecutive candles"
        )
        if count < requested:
            reason += f" ({requested} slices would fall below the exchange minimums)"
        price = build.limit_price(decision.reference_price, self._tick(decision.symbol))
        if count == 1:
            return self._single(time_ns, decision, estimate, OrderType.LIMIT, price, reason)

        parts = build.split_quantity(decision.quantity, count, rules)
        orders = [
            self.order(decision, time_ns, index, quantity, OrderType.LIMIT, price)
            for index, quantity in enumerate(parts)
        ]
        if settings.prefer_maker:
            reason += ", post-only"
        return ExecutionPlan(
            orders=orders,
            style=ExecutionStyle.SLICED,
            expected_slippage_bps=estimate.expected_slippage_bps,
            reason=reason,
            binding=True,
            participation=estimate.participation,
            recommended=ExecutionStyle.SLICED,
            post_only=settings.prefer_maker,
        )

    def _single(
        self,
        time_ns: int,
        decision: ExecutionRequest,
        estimate: ImpactEstimate,
        order_type: OrderType,
        price: float | None,
        reason: str,
        marketable: bool = False,
    ) -> ExecutionPlan:
        order = self.order(decision, time_ns, 0, decision.quantity, order_type, price)
        if order_type is OrderType.MARKET:
            style = ExecutionStyle.MARKET
        elif self.settings.prefer_maker and not marketable:
            style = ExecutionStyle.POST_ONLY
            reason += ", post-only"
        else:
            style = ExecutionStyle.LIMIT
        return ExecutionPlan(
            orders=[order],
            style=style,
            expected_slippage_bps=estimate.expected_slippage_bps,
            reason=reason,
            binding=True,
            participation=estimate.participation,
            recommended=style,
            post_only=style is ExecutionStyle.POST_ONLY,
        )

    def _tick(self, symbol: str) -> float | None:
        rules = self.markets.get(symbol)
        return None if rules is None else rules.tick_size
