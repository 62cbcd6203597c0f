"""Trading Mathematician: quantity, stop and target distances and leverage for one trade.

Every call returns either an approved ``SizingDecision`` or a ``SizingRejection`` with the reason
and the numbers behind it. Invalid prices, ATR, equity, cash or stop fractions are rejected, not
raised. Invalid market rules (a step size <= 0, a fee outside [0, 1)) raise ConfigurationError.
The steps, in order:

1. Stop distance: ``stop_pct x price`` when the signal gives one, else ``stop_atr_multiple x ATR``.
   Target distance: ``take_profit_pct x price``, else ``reward_risk x stop distance``.
2. Leverage (futures only): start at ``risk.leverage`` (capped by the market's maximum) and step
   down to whole numbers until the liquidation price lies at least ``liquidation_buffer`` stop
   distances beyond the stop. Spot leverage is 1.
3. Quantity: ``equity x risk_per_trade / stop distance`` (sizing "risk") or
   ``stake_amount / price`` (sizing "stake").
4. Caps on the notional: ``max_position_share x equity`` (times the leverage on futures), then
   what the cash affords with the taker fee. Spot: ``value + fee <= cash``. Futures:
   ``value / leverage + fee <= cash``.
5. Exchange rounding: the quantity is floored to the step, then the minimum quantity and minimum
   notional are checked. A quantity below them is bumped up one step only when that step is
   affordable and within the caps; otherwise the trade is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import MarketType, PositionSide
from quantum_trader.exchange.margin import liquidation_price, max_affordable_value
from quantum_trader.exchange.markets import MarketRules, floor_quantity

# The largest multiplier a risk-mode controller may apply to risk_per_trade or the stake.
MAX_RISK_SCALE = 1.5


@dataclass(frozen=True, slots=True)
class SizingDecision:
    """An approved size. Distances are absolute prices from the entry.

    ``risk_amount`` is ``quantity x stop_distance`` in the quote currency, before fees and
    slippage. ``margin`` is the notional over the leverage (the notional itself on spot).
    """

    quantity: float
    notional: float
    stop_distance: float
    take_profit_distance: float
    leverage: float
    risk_amount: float
    reason: str
    margin: float = 0.0
    entry_fee: float = 0.0

    @property
    def numbers(self) -> dict[str, float]:
        """The decision's numbers, for the decision log."""
        return {
            "quantity": self.quantity,
            "notional": self.notional,
            "stop_distance": self.stop_distance,
            "take_profit_distance": self.take_profit_distance,
            "leverage": self.leverage,
            "risk_amount": self.risk_amount,
            "margin": self.margin,
            "entry_fee": self.entry_fee,
        }


@dataclass(frozen=True, slots=True)
class SizingRejection:
    """A trade that cannot be sized, with the reason and the numbers that decided it."""

    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


SizingResult = SizingDecision | SizingRejection


def _fmt(value: float) -> str:
    """Format a number with up to 8 decimals and no trailing zeros (9.722223, 10, 10.0000008)."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(slots=True)
class _Plan:
    """The working state of one sizing call."""

    side: PositionSide
    price: float
    equity: float
    cash: float
    fee_rate: float
    stop_distance: float = 0.0
    target_distance: float = 0.0
    leverage: float = 1.0
    risk_scale: float = 1.0
    notes: list[str] = field(default_factory=list)

    def value_cap(self, share: float, futures: bool) -> float:
        return share * self.equity * (self.leverage if futures else 1.0)

    def cost(self, quantity: float, futures: bool) -> float:
        """Cash the entry takes: the value (spot) or the margin (futures), plus the taker fee."""
        value = quantity * self.price
        committed = value / self.leverage if futures else value
        return committed + value * self.fee_rate


class TradingMathematician:
    """Sizes one trade at a time; see the module docstring for the rules."""

    def __init__(
        self, risk: RiskSettings, maintenance_margin_rate: float, market_type: MarketType
    ) -> None:
        self.risk = risk
        self.maintenance_margin_rate = maintenance_margin_rate
        self.market_type = market_type
        self._futures = market_type is MarketType.FUTURES

    def size(
        self,
        symbol: str,
        side: PositionSide,
        reference_price: float,
        atr: float,
        equity: float,
        available_cash: float,
        rules: MarketRules,
        *,
        stop_pct: float | None = None,
        take_profit_pct: float | None = None,
        risk_scale: float = 1.0,
    ) -> SizingResult:
        """Size a trade on ``symbol`` entered near ``reference_price``.

        ``stop_pct`` and ``take_profit_pct`` are fractions of the price; None or NaN means the
        ATR stop and the reward-to-risk target apply.
        """
        rejection = self._check_inputs(side, reference_price, equity, available_cash)
        if rejection is not None:
            return rejection
        plan = _Plan(side, reference_price, equity, available_cash, rules.taker_fee)
        if not (math.isfinite(risk_scale) and 0 < risk_scale <= MAX_RISK_SCALE):
            return SizingRejection(
                f"invalid risk_scale {risk_scale!r}; it must lie in (0, {MAX_RISK_SCALE:g}]",
                {"risk_scale": risk_scale},
            )
        plan.risk_scale = risk_scale

        rejection = self._set_distances(plan, atr, stop_pct, take_profit_pct)
        if rejection is None:
            rejection = self._set_leverage(plan, rules)
        if rejection is not None:
            return rejection

        quantity = self._capped_quantity(plan, self._raw_quantity(plan))
        return self._round_for_exchange(plan, quantity, rules)

    def _check_inputs(
        self, side: PositionSide, price: float, equity: float, cash: float
    ) -> SizingRejection | None:
        if not (math.isfinite(price) and price > 0):
            return SizingRejection(
                f"invalid reference price {price!r}; no order", {"reference_price": price}
            )
        if not (math.isfinite(equity) and equity > 0):
            return SizingRejection(f"invalid equity {equity!r}; no order", {"equity": equity})
        if not (math.isfinite(cash) and cash >= 0):
            return SizingRejection(
                f"invalid available cash {cash!r}; no order", {"available_cash": cash}
            )
        if side is PositionSide.SHORT and not self._futures:
            return SizingRejection("a short position needs a futures market; no order on spot")
        return None

    def _set_distances(
        self, plan: _Plan, atr: float, stop_pct: float | None, take_profit_pct: float | None
    ) -> SizingRejection | None:
        price = plan.price
        if stop_pct is not None and not math.isnan(stop_pct):
            if not 0 < stop_pct < 1:
                return SizingRejection(
                    f"stop_pct {stop_pct!r} is outside (0, 1); no order", {"stop_pct": stop_pct}
                )
            plan.stop_distance = stop_pct * price
        elif math.isfinite(atr) and atr > 0:
            plan.stop_distance = self.risk.stop_atr_multiple * atr
        else:
            return SizingRejection(
                f"invalid ATR {atr!r} and no stop_pct, so there is no stop distance; no order",
                {"atr": atr},
            )

        if take_profit_pct is not None and not math.isnan(take_profit_pct):
            if not 0 < take_profit_pct < 1:
                return SizingRejection(
                    f"take_profit_pct {take_profit_pct!r} is outside (0, 1); no order",
                    {"take_profit_pct": take_profit_pct},
                )
            plan.target_distance = take_profit_pct * price
        else:
            plan.target_distance = self.risk.reward_risk * plan.stop_distance
        return self._check_distances(plan)

    def _check_distances(self, plan: _Plan) -> SizingRejection | None:
        numbers = {
            "reference_price": plan.price,
            "stop_distance": plan.stop_distance,
            "take_profit_distance": plan.target_distance,
        }
        if plan.side is PositionSide.LONG and plan.stop_distance >= plan.price:
            return SizingRejection(
                f"stop distance {_fmt(plan.stop_distance)} puts the long stop at or below 0 "
                f"(price {_fmt(plan.price)}); no order",
                numbers,
            )
        if plan.side is PositionSide.SHORT and plan.target_distance >= plan.price:
            return SizingRejection(
                f"take-profit distance {_fmt(plan.target_distance)} puts the short target at or "
                f"below 0 (price {_fmt(plan.price)}); no order",
                numbers,
            )
        reward_risk = plan.target_distance / plan.stop_distance
        if reward_risk < self.risk.min_reward_risk:
            numbers["reward_risk"] = reward_risk
            return SizingRejection(
                f"reward-to-risk {reward_risk:.4g} is below min_reward_risk "
                f"{self.risk.min_reward_risk:g}; no order",
                numbers,
            )
        return None

    def _set_leverage(self, plan: _Plan, rules: MarketRules) -> SizingRejection | None:
        if not self._futures:
            plan.leverage = 1.0
            return None
        start = max(1.0, min(self.risk.leverage, rules.max_leverage))
        leverage = start
        while not self._liquidation_clear(plan, leverage):
            if leverage <= 1.0:
                liquidation = liquidation_price(
                    plan.price, 1.0, self.maintenance_margin_rate, plan.side
                )
                return SizingRejection(
                    f"even at 1x the liquidation price {_fmt(liquidation)} lies within "
                    f"{self.risk.liquidation_buffer:g} stop distances of the stop; "
                    "use a tighter stop; no order",
                    {"liquidation_price": liquidation, "stop_distance": plan.stop_distance},
                )
            leverage = max(1.0, math.ceil(leverage) - 1.0)
        if leverage < start:
            plan.notes.append(
                f"leverage lowered from {start:g}x to {leverage:g}x to keep the liquidation "
                f"price {self.risk.liquidation_buffer:g} stop distances beyond the stop"
            )
        plan.leverage = leverage
        return None

    def _liquidation_clear(self, plan: _Plan, leverage: float) -> bool:
        # A 1x long cannot be liquidated: its liquidation price is 0.
        if plan.side is PositionSide.LONG and leverage <= 1.0:
            return True
        liquidation = liquidation_price(
            plan.price, leverage, self.maintenance_margin_rate, plan.side
        )
        # The stop itself plus the buffer, both measured from the entry.
        clearance = plan.stop_distance * (1.0 + self.risk.liquidation_buffer)
        if plan.side is PositionSide.LONG:
            return liquidation <= plan.price - clearance
        return liquidation >= plan.price + clearance

    def _raw_quantity(self, plan: _Plan) -> float:
        if self.risk.sizing == "stake":
            # The settings validator guarantees stake_amount for stake sizing.
            stake = (self.risk.stake_amount or 0.0) * plan.risk_scale
            plan.notes.append(f"stake {_fmt(stake)} at price {_fmt(plan.price)}")
            return stake / plan.price
        risk_share = self.risk.risk_per_trade * plan.risk_scale
        risk_amount = plan.equity * risk_share
        plan.notes.append(
            f"risk {_fmt(risk_amount)} ({risk_share:.2%} of equity "
            f"{_fmt(plan.equity)}) over stop distance {_fmt(plan.stop_distance)}"
        )
        return risk_amount / plan.stop_distance

    def _capped_quantity(self, plan: _Plan, quantity: float) -> float:
        share_cap = plan.value_cap(self.risk.max_position_share, self._futures)
        if quantity * plan.price > share_cap:
            capped = share_cap / plan.price
            plan.notes.append(
                f"resized from {_fmt(quantity)} to {_fmt(capped)} by max_position_share "
                f"{self.risk.max_position_share:g} (notional cap {_fmt(share_cap)})"
            )
            quantity = capped

        if self._futures:
            # margin + fee = value / leverage + value x fee <= cash
            affordable_value = plan.cash / (1.0 / plan.leverage + plan.fee_rate)
        else:
            affordable_value = max_affordable_value(plan.cash, plan.fee_rate)
        if quantity * plan.price > affordable_value:
            capped = affordable_value / plan.price
            plan.notes.append(
                f"resized from {_fmt(quantity)} to {_fmt(capped)} by available cash "
                f"{_fmt(plan.cash)} including the taker fee {plan.fee_rate:.4%}"
            )
            quantity = capped
        return quantity

    def _limit_broken(self, plan: _Plan, quantity: float) -> str | None:
        """Name the cap ``quantity`` breaks, or return None when it fits every cap."""
        value = quantity * plan.price
        share_cap = plan.value_cap(self.risk.max_position_share, self._futures)
        if value > share_cap:
            return f"is above the max_position_share notional cap {_fmt(share_cap)}"
        cost = plan.cost(quantity, self._futures)
        if cost > plan.cash:
            return (
                f"costs {_fmt(cost)} with the fee, more than the available cash {_fmt(plan.cash)}"
            )
        return None

    def _round_for_exchange(self, plan: _Plan, quantity: float, rules: MarketRules) -> SizingResult:
        step = rules.step_size
        rounded = floor_quantity(quantity, step)
        # floor_quantity rounds a value just below a step boundary up onto it, so the result can
        # exceed a cap by a float error. One step less then fits.
        if rounded > 0 and self._limit_broken(plan, rounded) is not None:
            rounded = floor_quantity(rounded - step, step)

        shortfall = _below_minimum(rounded, plan.price, rules)
        if shortfall is None:
            return self._approve(plan, rounded)

        bumped = floor_quantity(rounded + step, step)
        if _below_minimum(bumped, plan.price, rules) is not None:
            return self._minimum_rejection(
                plan, rounded, rules, shortfall, f"; one more step ({_fmt(bumped)}) is not enough"
            )
        broken = self._limit_broken(plan, bumped)
        if broken is not None:
            detail = (
                f"; one more step ({_fmt(bumped)}, notional {_fmt(bumped * plan.price)}) {broken}"
            )
            return self._minimum_rejection(plan, rounded, rules, shortfall, detail)
        plan.notes.append(
            f"bumped up one step from {_fmt(rounded)} to {_fmt(bumped)} because {shortfall}"
        )
        return self._approve(plan, bumped)

    def _minimum_rejection(
        self, plan: _Plan, quantity: float, rules: MarketRules, shortfall: str, detail: str
    ) -> SizingRejection:
        numbers = {
            "quantity": quantity,
            "notional": quantity * plan.price,
            "min_notional": rules.min_notional,
            "min_quantity": rules.min_quantity,
            "step_size": rules.step_size,
            "available_cash": plan.cash,
        }
        return SizingRejection(
            f"quantity {_fmt(quantity)} after rounding to step {_fmt(rules.step_size)}: "
            f"{shortfall}{detail}; no order",
            numbers,
        )

    def _approve(self, plan: _Plan, quantity: float) -> SizingDecision:
        notional = quantity * plan.price
        margin = notional / plan.leverage if self._futures else notional
        return SizingDecision(
            quantity=quantity,
            notional=notional,
            stop_distance=plan.stop_distance,
            take_profit_distance=plan.target_distance,
            leverage=plan.leverage,
            risk_amount=quantity * plan.stop_distance,
            reason="approved: " + "; ".join(plan.notes),
            margin=margin,
            entry_fee=notional * plan.fee_rate,
        )


def _below_minimum(quantity: float, price: float, rules: MarketRules) -> str | None:
    """Describe how ``quantity`` misses the exchange minimums, or return None when it meets them."""
    notional = quantity * price
    if quantity <= 0:
        if rules.min_notional > 0:
            return f"the quantity rounds to 0, below the min notional {_fmt(rules.min_notional)}"
        return "the quantity rounds to 0"
    if quantity < rules.min_quantity:
        return f"it is below the min quantity {_fmt(rules.min_quantity)}"
    if notional < rules.min_notional:
        return f"notional {_fmt(notional)} is below the min notional {_fmt(rules.min_notional)}"
    return None
