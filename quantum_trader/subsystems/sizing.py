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
3. Quantity: ``equity x risk share / stop distance`` (sizing "risk", "volatility" and
   "kelly", whose risk shares ``sizing_methods`` defines) or ``stake_amount / price`` (sizing
   "stake"). A Kelly estimate without an edge rejects the trade.
4. Caps on the notional: ``max_position_share x equity`` (times the leverage on futures), then
   what the cash affords with the taker fee. Spot: ``value + fee <= cash``. Futures:
   ``value / leverage + fee <= cash``.
5. Exchange rounding: the quantity is floored to the step, then the minimum quantity and minimum
   notional are checked. A quantity below them is bumped up one step only when that step is
   affordable and within the caps; otherwise the trade is rejected.

As a subsystem it records every result in its decision log: an approval, a resize (a cap, a
lowered leverage or a one-step bump changed the size) or a rejection. It cannot be off or
observe-only, because every order needs a size. In advisory mode results carry
``binding=False`` and the counters ``changed`` and ``vetoed`` stay unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import MarketType, PositionSide, Trade
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.margin import liquidation_price, max_affordable_value
from quantum_trader.exchange.markets import MarketRules, floor_quantity
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.sizing_methods import choose_risk_share
from quantum_trader.subsystems.sizing_results import SizingDecision, SizingRejection, SizingResult
from quantum_trader.subsystems.sizing_results import format_number as _fmt

__all__ = [
    "MAX_RISK_SCALE",
    "SizingDecision",
    "SizingRejection",
    "SizingResult",
    "TradingMathematician",
]

# The largest multiplier a risk-mode controller may apply to risk_per_trade or the stake.
MAX_RISK_SCALE = 1.5


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
    risk_share: float = 0.0
    # Set when a cap, a lowered leverage or a one-step bump moves the size off the raw quantity.
    altered: bool = False
    notes: list[str] = field(default_factory=list)

    def value_cap(self, share: float, futures: bool) -> float:
        return share * self.equity * (self.leverage if futures else 1.0)

    def cost(self, quantity: float, futures: bool) -> float:
        """Cash the entry takes: the value (spot) or the margin (futures), plus the taker fee."""
        value = quantity * self.price
        committed = value / self.leverage if futures else value
        return committed + value * self.fee_rate


class TradingMathematician(Subsystem):
    """Sizes one trade at a time; see the module docstring for the rules.

    Counters: ``seen`` counts ``size`` calls. While enforced, ``changed`` counts approved
    sizes that a cap, a lowered leverage or a one-step bump changed, and ``vetoed`` counts
    rejections. Raises ConfigurationError for the modes off and observe.
    """

    name = "Trading Mathematician"
    short_name = "Trading Mathematician"

    def __init__(
        self,
        risk: RiskSettings,
        maintenance_margin_rate: float,
        market_type: MarketType,
        *,
        mode: Mode = Mode.ENFORCED,
        cadence: int = 1,
        log: DecisionLog | None = None,
    ) -> None:
        super().__init__(mode, cadence, log)
        self.risk = risk
        self.maintenance_margin_rate = maintenance_margin_rate
        self.market_type = market_type
        self._futures = market_type is MarketType.FUTURES

    @property
    def mode(self) -> Mode:
        """The configured mode: advisory or enforced."""
        return self._sizing_mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        # Checked on every change, so the API cannot switch sizing off either.
        if value in (Mode.OFF, Mode.OBSERVE):
            raise ConfigurationError(
                f"the Trading Mathematician cannot run in mode {Mode(value).value!r} because "
                "every order needs a size; use 'advisory' or 'enforced'"
            )
        self._sizing_mode = Mode(value)

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
        recent_trades: Sequence[Trade] | None = None,
        volatility: float | None = None,
        time_ns: int = 0,
    ) -> SizingResult:
        """Size a trade on ``symbol`` entered near ``reference_price`` and record the result.

        ``stop_pct`` and ``take_profit_pct`` are fractions of the price; None or NaN means the
        ATR stop and the reward-to-risk target apply. ``recent_trades`` are the closed trades
        Kelly sizing reads, oldest first. ``volatility`` is the realised per-candle standard
        deviation of log returns that volatility sizing reads. ``time_ns`` is the candle open
        time the decision log stores.
        """
        self.heartbeat()
        self.seen += 1
        rejection = self._check_inputs(side, reference_price, equity, available_cash, risk_scale)
        if rejection is not None:
            return self._conclude(time_ns, symbol, rejection, altered=False)

        plan = _Plan(side, reference_price, equity, available_cash, rules.taker_fee)
        plan.risk_scale = risk_scale
        rejection = self._set_distances(plan, atr, stop_pct, take_profit_pct)
        if rejection is None:
            rejection = self._set_leverage(plan, rules)
        if rejection is None:
            rejection = self._set_risk_share(plan, recent_trades, volatility)
        if rejection is not None:
            return self._conclude(time_ns, symbol, rejection, altered=False)

        quantity = self._capped_quantity(plan, self._raw_quantity(plan))
        result = self._round_for_exchange(plan, quantity, rules)
        return self._conclude(time_ns, symbol, result, plan.altered)

    def _conclude(
        self, time_ns: int, symbol: str, result: SizingResult, altered: bool
    ) -> SizingResult:
        """Record the result, count it and flag it non-binding unless enforced."""
        binding = self.binding
        if isinstance(result, SizingRejection):
            if binding:
                self.vetoed += 1
            self.record(time_ns, symbol, Action.REJECT, result.reason, result.numbers)
            return result if binding else replace(result, binding=False)

        action = Action.RESIZE if altered else Action.APPROVE
        if altered and binding:
            self.changed += 1
        self.record(time_ns, symbol, action, result.reason, result.numbers)
        return result if binding else replace(result, binding=False)

    def _set_risk_share(
        self, plan: _Plan, recent_trades: Sequence[Trade] | None, volatility: float | None
    ) -> SizingRejection | None:
        if self.risk.sizing == "stake":
            stake = (self.risk.stake_amount or 0.0) * plan.risk_scale
            plan.risk_share = stake / plan.price * plan.stop_distance / plan.equity
            return None
        share = choose_risk_share(self.risk, plan.risk_scale, recent_trades, volatility)
        if share.rejection is not None:
            return SizingRejection(share.rejection, share.numbers)
        plan.risk_share = share.share
        if self.risk.sizing != "risk" or plan.risk_scale != 1.0:
            plan.notes.append(share.note)
        return None

    def _check_inputs(
        self, side: PositionSide, price: float, equity: float, cash: float, risk_scale: float
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
        if not (math.isfinite(risk_scale) and 0 < risk_scale <= MAX_RISK_SCALE):
            return SizingRejection(
                f"invalid risk_scale {risk_scale!r}; it must lie in (0, {MAX_RISK_SCALE:g}]",
                {"risk_scale": risk_scale},
            )
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
            plan.altered = True
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
        # The stop itself plus the buffer, both measured from the entry. The strict test against
        # the stop keeps a liquidation exactly at the stop out when the buffer is 0.
        clearance = plan.stop_distance * (1.0 + self.risk.liquidation_buffer)
        if plan.side is PositionSide.LONG:
            stop = plan.price - plan.stop_distance
            return liquidation <= plan.price - clearance and liquidation < stop
        stop = plan.price + plan.stop_distance
        return liquidation >= plan.price + clearance and liquidation > stop

    def _raw_quantity(self, plan: _Plan) -> float:
        if self.risk.sizing == "stake":
            # The settings validator guarantees stake_amount for stake sizing.
            stake = (self.risk.stake_amount or 0.0) * plan.risk_scale
            plan.notes.append(f"stake {_fmt(stake)} at price {_fmt(plan.price)}")
            return stake / plan.price
        risk_share = plan.risk_share
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
            plan.altered = True
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
            plan.altered = True
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
        plan.altered = True
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
            risk_share=plan.risk_share,
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
