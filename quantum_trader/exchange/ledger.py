"""Account state of the simulated exchange and the booking of fills into it.

Spot: ``cash`` is the free quote balance. A buy pays notional plus fee, a sell receives notional
minus fee, and equity is cash plus the marked value of the holdings.

Futures (isolated margin): ``cash`` is the wallet balance. Fees and realized PnL move the wallet;
each position locks ``notional / leverage`` of it as margin, and equity is the wallet plus the
unrealized PnL. On liquidation the account loses the position's whole margin. What the price
move leaves of it goes to the exchange as the liquidation clearance fee. A gap beyond the
liquidation price loses no more than the margin, because the exchange's insurance fund covers
the rest.

Every closed round trip, or closed part of one, becomes a ``Trade``. Its ``pnl`` is the gross
PnL minus both fills' fees minus the funding the position paid. Its ``pnl_ratio`` is that
``pnl`` over the margin committed at entry (``entry_price * quantity / leverage``).
``Trade.funding`` and ``funding_paid`` count funding paid by the account as positive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from quantum_trader.config import ExchangeSettings
from quantum_trader.core.types import (
    ExitReason,
    Fill,
    Liquidity,
    MarketType,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Trade,
)
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.margin import funding_cash_flow, liquidation_price
from quantum_trader.exchange.markets import MarketRules, round_price

logger = logging.getLogger(__name__)

_EXIT_REASONS = {reason.value: reason for reason in ExitReason}


def exit_reason_for(tag: str) -> ExitReason:
    """Map a closing fill's tag to its exit reason; an unknown tag counts as an exit signal."""
    return _EXIT_REASONS.get(tag, ExitReason.EXIT_SIGNAL)


class Ledger:
    """Cash, positions, fills and trades of one simulated account."""

    def __init__(
        self, markets: Mapping[str, MarketRules], settings: ExchangeSettings, initial_cash: float
    ) -> None:
        if not initial_cash > 0:
            raise ConfigurationError(f"initial cash must be positive, got {initial_cash!r}")
        for symbol, rules in markets.items():
            if rules.market_type is not settings.market_type:
                raise ConfigurationError(
                    f"market {symbol} has type {rules.market_type.value} but the exchange runs "
                    f"{settings.market_type.value}; build its rules for the same market type"
                )
        self.markets: dict[str, MarketRules] = dict(markets)
        self.settings = settings
        self.is_futures = settings.market_type is MarketType.FUTURES
        self.maintenance_rate = settings.maintenance_margin_rate
        self.initial_cash = initial_cash
        self.cash = initial_cash
        self.positions: dict[str, Position] = {}
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.fees_paid = 0.0
        self.funding_paid = 0.0
        self._used_margin = 0.0
        self._entry_tags: dict[str, str] = {}
        self._last_close: dict[str, float] = {}

    def equity(self, marks: Mapping[str, float]) -> float:
        """Return the account equity at ``marks``; a missing mark uses the last candle close."""
        total = self.cash
        if not self.positions:
            return total
        for symbol, position in self.positions.items():
            mark = marks.get(symbol)
            if mark is None:
                mark = self._last_close.get(symbol, position.entry_price)
            if self.is_futures:
                total += int(position.side) * position.quantity * (mark - position.entry_price)
            else:
                total += position.quantity * mark
        return total

    def used_margin(self) -> float:
        """Return the margin locked by open futures positions; 0.0 on spot."""
        return self._used_margin if self.is_futures else 0.0

    def apply_funding(self, symbol: str, time_ns: int, mark: float, rate: float) -> float:
        """Book one funding payment on an open futures position; return the cash flow."""
        position = self.positions.get(symbol)
        if position is None or not self.is_futures:
            return 0.0
        flow = funding_cash_flow(position.side, position.quantity, mark, rate)
        self.cash += flow
        position.funding_paid -= flow
        self.funding_paid -= flow
        logger.debug(
            "Funding on %s at %d: rate %g, mark %g, cash flow %.8g.",
            symbol,
            time_ns,
            rate,
            mark,
            flow,
        )
        return flow

    def amend_protection(
        self, symbol: str, stop_price: float | None = None, take_profit_price: float | None = None
    ) -> bool:
        """Move the stop and/or take-profit of an open position; False when there is none."""
        position = self.positions.get(symbol)
        if position is None:
            logger.info("Cannot amend the protection of %s: no open position.", symbol)
            return False
        tick = self.markets[symbol].tick_size
        if stop_price is not None:
            position.stop_price = round_price(stop_price, tick)
        if take_profit_price is not None:
            position.take_profit_price = round_price(take_profit_price, tick)
        return True

    def _book_fill(
        self,
        order_id: str,
        symbol: str,
        side: OrderSide,
        price: float,
        quantity: float,
        fee: float,
        liquidity: Liquidity,
        time_ns: int,
        tag: str,
    ) -> Fill:
        fill = Fill(order_id, symbol, side, price, quantity, fee, liquidity, time_ns, tag)
        self.fills.append(fill)
        self.fees_paid += fee
        return fill

    def _record_triggered_order(
        self, fill: Fill, order_type: OrderType, trigger_price: float | None
    ) -> None:
        """List a protective exit (stop, target, liquidation) as a filled order.

        These exits belong to the position rather than to a submitted order, so the order is
        recorded when it triggers, which keeps the order list complete for reports.
        """
        self.orders.append(
            Order(
                client_order_id=fill.client_order_id,
                symbol=fill.symbol,
                side=fill.side,
                type=order_type,
                quantity=fill.quantity,
                created_ns=fill.time_ns,
                price=trigger_price if order_type is OrderType.LIMIT else None,
                stop_price=trigger_price if order_type is OrderType.STOP_MARKET else None,
                reduce_only=True,
                tag=fill.tag,
                status=OrderStatus.FILLED,
                filled_quantity=fill.quantity,
            )
        )

    def _close_at(
        self, position: Position, price: float, liquidity: Liquidity, time_ns: int, tag: str
    ) -> Fill:
        """Close the whole position at ``price`` without an order: a stop or take-profit."""
        rules = self.markets[position.symbol]
        rate = rules.taker_fee if liquidity is Liquidity.TAKER else rules.maker_fee
        fee = rate * price * position.quantity
        side = OrderSide.SELL if position.side is PositionSide.LONG else OrderSide.BUY
        fill = self._book_fill(
            f"{position.symbol}:{tag}:{time_ns}",
            position.symbol,
            side,
            price,
            position.quantity,
            fee,
            liquidity,
            time_ns,
            tag,
        )
        if tag == ExitReason.STOP_LOSS.value:
            self._record_triggered_order(fill, OrderType.STOP_MARKET, position.stop_price)
        else:
            self._record_triggered_order(fill, OrderType.LIMIT, position.take_profit_price)
        self._reduce(position, position.quantity, price, fee, time_ns, tag)
        return fill

    def _open_or_add(
        self, order: Order, quantity: float, price: float, fee: float, time_ns: int
    ) -> None:
        """Book an opening fill: a new position, or an addition at a new average entry."""
        symbol = order.symbol
        side = PositionSide(order.side.sign)
        notional = quantity * price
        if self.is_futures:
            margin = notional / order.leverage
            self.cash -= fee
            self._used_margin += margin
        else:
            margin = notional
            self.cash -= notional + fee

        position = self.positions.get(symbol)
        if position is None:
            position = Position(
                symbol,
                side,
                quantity,
                price,
                time_ns,
                leverage=order.leverage,
                margin=margin,
                fees_paid=fee,
            )
            self.positions[symbol] = position
            self._entry_tags[symbol] = order.tag
        else:
            total = position.quantity + quantity
            position.entry_price = (position.entry_price * position.quantity + notional) / total
            position.quantity = total
            position.margin += margin
            position.fees_paid += fee

        if self.is_futures:
            position.liquidation_price = liquidation_price(
                position.entry_price, position.leverage, self.maintenance_rate, side
            )
        self._attach_bracket(position, order, price)

    def _attach_bracket(self, position: Position, order: Order, price: float) -> None:
        """Set the stop and take-profit at the order's distances from the fill price."""
        tick = self.markets[position.symbol].tick_size
        sign = int(position.side)
        if order.stop_distance is not None:
            position.stop_price = round_price(price - sign * order.stop_distance, tick)
        if order.take_profit_distance is not None:
            position.take_profit_price = round_price(
                price + sign * order.take_profit_distance, tick
            )

    def _reduce(
        self, position: Position, quantity: float, price: float, fee: float, time_ns: int, tag: str
    ) -> None:
        """Book a closing fill of ``quantity``; close the position when nothing remains.

        A remainder smaller than half the market's quantity step is float residue from earlier
        partial exits, not a position: the fill then closes the whole position.
        """
        remainder = position.quantity - quantity
        if remainder < self.markets[position.symbol].step_size / 2:
            quantity = position.quantity
        share = quantity / position.quantity if quantity < position.quantity else 1.0
        gross = int(position.side) * quantity * (price - position.entry_price)
        margin = position.margin * share
        if self.is_futures:
            self.cash += gross - fee
            self._used_margin -= margin
        else:
            self.cash += quantity * price - fee
        self._record_trade(position, quantity, share, price, fee, gross - fee, time_ns, tag)

    def _liquidate(self, position: Position, price: float, time_ns: int) -> Fill:
        """Close a futures position at its liquidation: the whole margin is lost."""
        gross = int(position.side) * position.quantity * (price - position.entry_price)
        margin = position.margin
        clearance_fee = max(0.0, margin + gross)

        exit_side = OrderSide.SELL if position.side is PositionSide.LONG else OrderSide.BUY
        tag = ExitReason.LIQUIDATION.value
        fill = self._book_fill(
            f"{position.symbol}:{tag}:{time_ns}",
            position.symbol,
            exit_side,
            price,
            position.quantity,
            clearance_fee,
            Liquidity.TAKER,
            time_ns,
            tag,
        )
        self._record_triggered_order(fill, OrderType.MARKET, position.liquidation_price)
        self.cash -= margin
        self._used_margin -= margin

        logger.warning(
            "Liquidated %s %s of %s at %g (liquidation price %g); margin %.8g lost.",
            position.side.name.lower(),
            position.quantity,
            position.symbol,
            price,
            position.liquidation_price,
            margin,
        )
        self._record_trade(
            position, position.quantity, 1.0, price, clearance_fee, -margin, time_ns, tag
        )
        return fill

    def _record_trade(
        self,
        position: Position,
        quantity: float,
        share: float,
        price: float,
        exit_fee: float,
        close_cash_flow: float,
        time_ns: int,
        tag: str,
    ) -> None:
        """Append the trade of the closed ``share`` of ``position`` and shrink or remove it."""
        entry_fee = position.fees_paid * share
        funding = position.funding_paid * share
        pnl = close_cash_flow - entry_fee - funding
        committed = position.entry_price * quantity / position.leverage
        self.trades.append(
            Trade(
                symbol=position.symbol,
                side=position.side,
                entry_time=pd.Timestamp(position.entry_ns, unit="ns", tz="UTC"),
                entry_price=position.entry_price,
                exit_time=pd.Timestamp(time_ns, unit="ns", tz="UTC"),
                exit_price=price,
                quantity=quantity,
                fees=entry_fee + exit_fee,
                funding=funding,
                pnl=pnl,
                pnl_ratio=pnl / committed,
                leverage=position.leverage,
                exit_reason=exit_reason_for(tag),
                entry_tag=self._entry_tags.get(position.symbol, ""),
            )
        )

        if share >= 1.0:
            self._remove_position(position.symbol, time_ns)
            return
        position.quantity -= quantity
        position.margin -= position.margin * share
        position.fees_paid -= entry_fee
        position.funding_paid -= funding

    def _remove_position(self, symbol: str, time_ns: int) -> None:
        del self.positions[symbol]
        self._entry_tags.pop(symbol, None)
        if not self.positions:
            # Reset the running sum so float drift cannot build up over many trades.
            self._used_margin = 0.0
        self._on_position_closed(symbol, time_ns)

    def _on_position_closed(self, symbol: str, time_ns: int) -> None:
        """Hook for the order book: called after a position is fully closed."""
