"""Simulated exchange: order lifecycle, fills per candle, fees, PnL and rejections."""

from __future__ import annotations

from typing import Any

import pytest

from quantum_trader.config import ExchangeSettings, SlippageSettings
from quantum_trader.core.types import (
    ExitReason,
    Fill,
    Liquidity,
    MarketType,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
)
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.exchange.simulated import SimulatedExchange

SYMBOL = "TEST/USDT"
T0 = 1_700_000_000_000_000_000
HOUR = 3_600_000_000_000
NO_SLIPPAGE = SlippageSettings(fixed_bps=0.0, range_share=0.0, volume_impact=0.0)


def make_exchange(
    market_type: MarketType = MarketType.SPOT,
    fee: float = 0.0,
    maker_fee: float | None = None,
    cash: float = 10_000.0,
    step: float = 0.1,
    tick: float = 0.0001,
    min_notional: float = 5.0,
    maintenance: float = 0.005,
    slippage: SlippageSettings = NO_SLIPPAGE,
) -> SimulatedExchange:
    maker = fee if maker_fee is None else maker_fee
    rules = MarketRules(SYMBOL, market_type, tick, step, min_notional, step, maker, fee)
    settings = ExchangeSettings(
        market_type=market_type,
        maker_fee=maker,
        taker_fee=fee,
        slippage=slippage,
        maintenance_margin_rate=maintenance,
    )
    return SimulatedExchange({SYMBOL: rules}, settings, cash)


def order(
    client_order_id: str,
    side: OrderSide,
    quantity: float,
    order_type: OrderType = OrderType.MARKET,
    **fields: Any,
) -> Order:
    return Order(client_order_id, SYMBOL, side, order_type, quantity, T0, **fields)


def candle(
    exchange: SimulatedExchange,
    step: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float = 1_000_000.0,
    synthetic: bool = False,
) -> list[Fill]:
    return exchange.process_candle(
        SYMBOL, T0 + step * HOUR, open_, high, low, close, volume, synthetic
    )


def flat(exchange: SimulatedExchange, step: int, price: float) -> list[Fill]:
    return candle(exchange, step, price, price, price, price)


def test_fee_charged_on_entry_and_exit() -> None:
    # 1500 * (0.2183 - 0.2166) - 0.004 * (324.90 + 327.45) = 2.55 - 2.6094 = -0.0594.
    exchange = make_exchange(fee=0.004, cash=1_000.0)
    exchange.submit_order(order("in", OrderSide.BUY, 1500.0), T0)
    flat(exchange, 1, 0.2166)
    exchange.close_position_order(SYMBOL, T0 + HOUR, ExitReason.EXIT_SIGNAL)
    flat(exchange, 2, 0.2183)
    trade = exchange.trades[0]
    assert round(trade.pnl, 4) == -0.0594
    assert round(trade.fees, 4) == 2.6094
    assert round(exchange.cash, 4) == round(1_000.0 - 0.0594, 4)
    assert round(exchange.fees_paid, 4) == 2.6094
    assert trade.exit_reason is ExitReason.EXIT_SIGNAL


def test_leveraged_short_ratio_on_margin() -> None:
    # Short 100 at 1.0015, 10x, 0.05% per fill: margin 10.015, gross 0.30, fees 0.10, net 0.20.
    exchange = make_exchange(MarketType.FUTURES, fee=0.0005, cash=1_000.0, step=1.0)
    exchange.submit_order(order("in", OrderSide.SELL, 100.0, leverage=10.0), T0)
    flat(exchange, 1, 1.0015)
    assert round(exchange.positions[SYMBOL].margin, 6) == 10.015
    exchange.close_position_order(SYMBOL, T0 + HOUR, "exit_signal")
    flat(exchange, 2, 0.9985)
    trade = exchange.trades[0]
    assert trade.side is PositionSide.SHORT
    assert round(trade.fees, 6) == 0.1
    assert round(trade.pnl, 6) == 0.2
    assert round(trade.pnl_ratio, 5) == 0.01997
    assert round(exchange.cash, 6) == 1_000.2
    assert exchange.used_margin() == 0.0


def test_market_order_fills_at_next_open() -> None:
    exchange = make_exchange()
    exchange.submit_order(order("in", OrderSide.BUY, 10.0), T0)
    fills = candle(exchange, 1, 13.0, 13.5, 12.5, 13.2)
    assert len(fills) == 1
    assert fills[0].price == 13.0
    assert fills[0].liquidity is Liquidity.TAKER
    assert exchange.positions[SYMBOL].entry_price == 13.0


def test_market_order_slippage_against_buyer() -> None:
    # 10 bps of 100 = 0.1 above the open.
    slippage = SlippageSettings(fixed_bps=10.0, range_share=0.0, volume_impact=0.0)
    exchange = make_exchange(slippage=slippage)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    fills = candle(exchange, 1, 100.0, 101.0, 99.0, 100.5)
    assert fills[0].price == pytest.approx(100.1)


def test_stop_fills_at_stop_on_wick() -> None:
    # Long entry 100, stop 2 below; candle O100 H101 L94 C94: exit 98, return -2%.
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, stop_distance=2.0), T0)
    candle(exchange, 1, 100.0, 100.5, 99.5, 100.0)
    assert exchange.positions[SYMBOL].stop_price == 98.0
    fills = candle(exchange, 2, 100.0, 101.0, 94.0, 94.0)
    assert fills[0].price == 98.0
    trade = exchange.trades[0]
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.pnl_ratio == pytest.approx(-0.02)
    assert SYMBOL not in exchange.positions


def test_stop_checked_on_entry_candle() -> None:
    # Entry at the open 100 with stop 98; the same candle falls to 97.
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, stop_distance=2.0), T0)
    fills = candle(exchange, 1, 100.0, 101.0, 97.0, 99.0)
    assert [fill.price for fill in fills] == [100.0, 98.0]
    assert exchange.trades[0].exit_reason is ExitReason.STOP_LOSS


def test_bracket_short_levels_from_fill() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    exchange.submit_order(
        order("in", OrderSide.SELL, 10.0, stop_distance=2.0, take_profit_distance=4.0), T0
    )
    candle(exchange, 1, 100.0, 100.5, 99.5, 100.0)
    position = exchange.positions[SYMBOL]
    assert position.stop_price == 102.0
    assert position.take_profit_price == 96.0


def test_no_fill_on_synthetic_candle() -> None:
    exchange = make_exchange()
    exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    assert candle(exchange, 1, 101.0, 101.0, 101.0, 101.0, volume=0.0, synthetic=True) == []
    assert exchange.open_orders(SYMBOL)[0].status is OrderStatus.OPEN
    fills = candle(exchange, 2, 90.0, 91.0, 89.0, 90.0)
    assert fills[0].price == 90.0


def test_no_fill_on_zero_volume_candle() -> None:
    exchange = make_exchange()
    exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    assert candle(exchange, 1, 101.0, 102.0, 100.0, 101.0, volume=0.0) == []
    assert exchange.has_activity(SYMBOL)


def test_stop_after_gap_fills_at_open() -> None:
    # Stop 98 set before a synthetic gap candle at 101; the next real open is 90.
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, stop_distance=2.0), T0)
    candle(exchange, 1, 100.0, 100.5, 99.5, 101.0)
    assert candle(exchange, 2, 101.0, 101.0, 101.0, 101.0, volume=0.0, synthetic=True) == []
    fills = candle(exchange, 3, 90.0, 91.0, 89.0, 90.0)
    assert fills[0].price == 90.0
    assert exchange.trades[0].exit_reason is ExitReason.STOP_LOSS


def test_take_profit_fills_at_limit_as_maker() -> None:
    exchange = make_exchange(fee=0.001, maker_fee=0.0002, step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, take_profit_distance=10.0), T0)
    candle(exchange, 1, 100.0, 100.5, 99.5, 100.0)
    fills = candle(exchange, 2, 105.0, 111.0, 104.0, 109.0)
    assert fills[0].price == 110.0
    assert fills[0].liquidity is Liquidity.MAKER
    assert fills[0].fee == pytest.approx(0.0002 * 110.0)
    assert exchange.trades[0].exit_reason is ExitReason.TAKE_PROFIT


def test_spot_buy_reduced_to_affordable_quantity() -> None:
    # Cash 100, fee 0.075%: 99.925056 / 10 = 9.9925056 -> 9.992; cost 99.92 + fee 0.07494.
    exchange = make_exchange(fee=0.00075, cash=100.0, step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 20.0), T0)
    fills = flat(exchange, 1, 10.0)
    assert fills[0].quantity == 9.992
    assert exchange.cash == pytest.approx(0.00506)
    assert exchange.cash >= 0.0


def test_futures_order_reduced_to_available_margin() -> None:
    # Wallet 100 at 2x, no fee: 100 / (10 * 0.5) = 20 units.
    exchange = make_exchange(MarketType.FUTURES, cash=100.0, step=1.0)
    exchange.submit_order(order("in", OrderSide.BUY, 50.0, leverage=2.0), T0)
    fills = flat(exchange, 1, 10.0)
    assert fills[0].quantity == 20.0
    assert exchange.used_margin() == pytest.approx(100.0)


def test_unaffordable_order_below_min_notional_rejected_at_fill() -> None:
    exchange = make_exchange(cash=3.0, step=0.001)
    submitted = exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    assert flat(exchange, 1, 10.0) == []
    assert submitted.status is OrderStatus.REJECTED
    assert "minimum notional" in (submitted.reject_reason or "")
    assert not exchange.has_activity(SYMBOL)


def test_min_notional_after_truncation_rejected() -> None:
    # 10 / 27777.78 truncates to 0.00035; 0.00035 * 27777.78 = 9.722223 < 10.
    exchange = make_exchange(step=0.00001, tick=0.01, min_notional=10.0)
    submitted = exchange.submit_order(
        order("in", OrderSide.BUY, 10.0 / 27777.78), T0, reference_price=27777.78
    )
    assert submitted.status is OrderStatus.REJECTED
    assert submitted.quantity == 0.00035
    assert "9.722223" in (submitted.reject_reason or "")


def test_unknown_symbol_rejected() -> None:
    exchange = make_exchange()
    submitted = exchange.submit_order(
        Order("x", "NOPE/USDT", OrderSide.BUY, OrderType.MARKET, 1.0, T0), T0
    )
    assert submitted.status is OrderStatus.REJECTED
    assert "NOPE/USDT" in (submitted.reject_reason or "")


def test_spot_short_rejected() -> None:
    exchange = make_exchange()
    submitted = exchange.submit_order(order("s", OrderSide.SELL, 1.0), T0, reference_price=100.0)
    assert submitted.status is OrderStatus.REJECTED
    assert "short" in (submitted.reject_reason or "")


def test_opposite_order_rejected_while_position_open() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    flat(exchange, 1, 100.0)
    submitted = exchange.submit_order(order("flip", OrderSide.SELL, 1.0), T0 + HOUR)
    assert submitted.status is OrderStatus.REJECTED
    assert "close the position first" in (submitted.reject_reason or "")


def test_leverage_above_market_max_rejected() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    submitted = exchange.submit_order(order("in", OrderSide.BUY, 1.0, leverage=25.0), T0)
    assert submitted.status is OrderStatus.REJECTED
    assert "maximum 20" in (submitted.reject_reason or "")


def test_unsafe_leverage_rejected() -> None:
    # m = 0.25 at 5x puts the long liquidation price at 106.67, above the entry of 100.
    exchange = make_exchange(MarketType.FUTURES, maintenance=0.25)
    submitted = exchange.submit_order(
        order("in", OrderSide.BUY, 1.0, leverage=5.0), T0, reference_price=100.0
    )
    assert submitted.status is OrderStatus.REJECTED
    assert "unsafe" in (submitted.reject_reason or "")
    assert not exchange.has_activity(SYMBOL)


def test_duplicate_client_order_id_returns_existing() -> None:
    exchange = make_exchange()
    first = exchange.submit_order(order("abc", OrderSide.BUY, 1.0), T0)
    second = exchange.submit_order(order("abc", OrderSide.BUY, 5.0), T0)
    assert second is first
    assert len(exchange.orders) == 1
    assert len(exchange.open_orders()) == 1


def test_cancel_order_removes_activity() -> None:
    exchange = make_exchange()
    exchange.submit_order(order("abc", OrderSide.BUY, 1.0), T0)
    assert exchange.cancel_order("abc", T0)
    assert not exchange.cancel_order("abc", T0)
    assert exchange.orders[0].status is OrderStatus.CANCELED
    assert not exchange.has_activity(SYMBOL)
    assert flat(exchange, 1, 100.0) == []


def test_reduce_only_never_flips_position() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0), T0)
    flat(exchange, 1, 100.0)
    exchange.submit_order(order("out", OrderSide.SELL, 3.0, reduce_only=True), T0 + HOUR)
    fills = flat(exchange, 2, 101.0)
    assert fills[0].quantity == 1.0
    assert exchange.positions == {}
    assert exchange.trades[0].pnl == pytest.approx(1.0)


def test_partial_close_splits_entry_fee() -> None:
    # Entry 10 units at 100 with 0.1% fee = 1.0; closing 4 at 110 carries 0.4 of it.
    exchange = make_exchange(fee=0.001, step=1.0)
    exchange.submit_order(order("in", OrderSide.BUY, 10.0), T0)
    flat(exchange, 1, 100.0)
    exchange.submit_order(order("part", OrderSide.SELL, 4.0, reduce_only=True), T0 + HOUR)
    flat(exchange, 2, 110.0)
    trade = exchange.trades[0]
    assert trade.quantity == 4.0
    assert trade.fees == pytest.approx(0.4 + 0.44)
    assert trade.pnl == pytest.approx(40.0 - 0.84)
    assert exchange.positions[SYMBOL].quantity == 6.0
    assert exchange.positions[SYMBOL].fees_paid == pytest.approx(0.6)


def test_position_close_cancels_reduce_only_orders() -> None:
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, stop_distance=2.0), T0)
    take_profit = exchange.submit_order(
        order("tp", OrderSide.SELL, 1.0, OrderType.LIMIT, price=110.0, reduce_only=True), T0
    )
    assert take_profit.status is OrderStatus.OPEN
    candle(exchange, 1, 100.0, 100.5, 99.5, 100.0)
    candle(exchange, 2, 99.0, 99.5, 97.0, 97.5)
    assert exchange.orders[1].status is OrderStatus.CANCELED
    assert not exchange.has_activity(SYMBOL)


def test_buy_limit_fills_at_limit_or_open() -> None:
    exchange = make_exchange(fee=0.001, maker_fee=0.0002, step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0, OrderType.LIMIT, price=95.0), T0)
    assert candle(exchange, 1, 100.0, 101.0, 96.0, 97.0) == []
    fills = candle(exchange, 2, 100.0, 101.0, 94.0, 97.0)
    assert fills[0].price == 95.0
    assert fills[0].fee == pytest.approx(0.0002 * 95.0)
    exchange.submit_order(order("b", OrderSide.BUY, 1.0, OrderType.LIMIT, price=95.0), T0)
    assert candle(exchange, 3, 93.0, 94.0, 92.0, 93.0)[0].price == 93.0


def test_stop_market_entry_gapped_fills_at_open() -> None:
    exchange = make_exchange(step=0.001)
    exchange.submit_order(
        order("a", OrderSide.BUY, 1.0, OrderType.STOP_MARKET, stop_price=105.0), T0
    )
    fills = candle(exchange, 1, 107.0, 108.0, 106.0, 107.5)
    assert fills[0].price == 107.0
    assert fills[0].liquidity is Liquidity.TAKER


def test_adding_recomputes_entry_and_liquidation() -> None:
    # 1 at 100 plus 1 at 110 at 10x: average 105, long liq 105 * 0.9 / 0.995 = 94.9749.
    exchange = make_exchange(MarketType.FUTURES, step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0, leverage=10.0), T0)
    flat(exchange, 1, 100.0)
    exchange.submit_order(order("b", OrderSide.BUY, 1.0, leverage=10.0), T0 + HOUR)
    flat(exchange, 2, 110.0)
    position = exchange.positions[SYMBOL]
    assert position.quantity == 2.0
    assert position.entry_price == pytest.approx(105.0)
    assert round(position.liquidation_price or 0.0, 4) == 94.9749
    assert position.margin == pytest.approx(21.0)


def test_liquidation_loses_whole_margin() -> None:
    # Long 1 at 100, 10x, m 0.005: liq 90.4523; the low of 90 reaches it; margin 10 lost.
    exchange = make_exchange(MarketType.FUTURES, cash=1_000.0, step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0, leverage=10.0), T0)
    flat(exchange, 1, 100.0)
    fills = candle(exchange, 2, 95.0, 96.0, 90.0, 91.0)
    assert round(fills[0].price, 4) == 90.4523
    trade = exchange.trades[0]
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert trade.pnl == pytest.approx(-10.0)
    assert exchange.cash == pytest.approx(990.0)
    assert exchange.used_margin() == 0.0


def test_liquidation_gapped_fills_at_open_margin_capped() -> None:
    exchange = make_exchange(MarketType.FUTURES, cash=1_000.0, step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0, leverage=10.0, stop_distance=5.0), T0)
    flat(exchange, 1, 100.0)
    fills = candle(exchange, 2, 85.0, 86.0, 84.0, 85.5)
    assert fills[0].price == 85.0
    assert exchange.trades[0].exit_reason is ExitReason.LIQUIDATION
    assert exchange.trades[0].pnl == pytest.approx(-10.0)


def test_stop_before_liquidation_wins() -> None:
    # Stop 95 lies between the open 96 and the liq 90.45: stop out at 95, PnL -5.
    exchange = make_exchange(MarketType.FUTURES, cash=1_000.0, step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0, leverage=10.0, stop_distance=5.0), T0)
    flat(exchange, 1, 100.0)
    fills = candle(exchange, 2, 96.0, 97.0, 89.0, 90.0)
    assert fills[0].price == 95.0
    assert exchange.trades[0].exit_reason is ExitReason.STOP_LOSS
    assert exchange.trades[0].pnl == pytest.approx(-5.0)


def test_funding_booked_into_trade() -> None:
    # Long 2 at 30000, rate +0.01%: pays 6; closed flat, the trade PnL is -6.
    exchange = make_exchange(MarketType.FUTURES, cash=100_000.0, step=0.001, tick=0.1)
    exchange.submit_order(order("a", OrderSide.BUY, 2.0), T0)
    flat(exchange, 1, 30_000.0)
    assert exchange.apply_funding(SYMBOL, T0 + HOUR, 30_000.0, 0.0001) == pytest.approx(-6.0)
    assert exchange.funding_paid == pytest.approx(6.0)
    exchange.close_position_order(SYMBOL, T0 + HOUR, "exit_signal")
    flat(exchange, 2, 30_000.0)
    trade = exchange.trades[0]
    assert trade.funding == pytest.approx(6.0)
    assert trade.pnl == pytest.approx(-6.0)
    assert exchange.cash == pytest.approx(100_000.0 - 6.0)


def test_funding_ignored_without_position() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    assert exchange.apply_funding(SYMBOL, T0, 100.0, 0.001) == 0.0


def test_equity_spot_and_futures() -> None:
    spot = make_exchange(cash=1_000.0, step=0.001)
    spot.submit_order(order("a", OrderSide.BUY, 2.0), T0)
    flat(spot, 1, 100.0)
    assert spot.equity({SYMBOL: 110.0}) == pytest.approx(800.0 + 220.0)
    futures = make_exchange(MarketType.FUTURES, cash=1_000.0, step=0.001)
    futures.submit_order(order("a", OrderSide.SELL, 2.0, leverage=2.0), T0)
    flat(futures, 1, 100.0)
    assert futures.equity({SYMBOL: 110.0}) == pytest.approx(1_000.0 - 20.0)
    assert futures.used_margin() == pytest.approx(100.0)


def test_close_position_order_tags_exit_reason() -> None:
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0), T0)
    flat(exchange, 1, 100.0)
    close = exchange.close_position_order(SYMBOL, T0 + HOUR, ExitReason.EMERGENCY_STOP)
    assert close.reduce_only
    flat(exchange, 2, 100.0)
    assert exchange.trades[0].exit_reason is ExitReason.EMERGENCY_STOP


def test_amend_protection_moves_stop() -> None:
    exchange = make_exchange(step=0.001)
    assert not exchange.amend_protection(SYMBOL, stop_price=90.0)
    exchange.submit_order(order("a", OrderSide.BUY, 1.0), T0)
    flat(exchange, 1, 100.0)
    assert exchange.amend_protection(SYMBOL, stop_price=99.0, take_profit_price=120.0)
    fills = candle(exchange, 2, 100.0, 100.5, 98.0, 99.5)
    assert fills[0].price == 99.0


def test_inactive_symbol_returns_no_fills() -> None:
    exchange = make_exchange()
    assert exchange.process_candle("OTHER/USDT", T0, 1.0, 1.0, 1.0, 1.0, 1.0, False) == []
    assert not exchange.has_activity("OTHER/USDT")


def test_infinite_limit_price_rejected() -> None:
    exchange = make_exchange()
    submitted = exchange.submit_order(
        order("a", OrderSide.BUY, 1.0, OrderType.LIMIT, price=float("inf")), T0
    )
    assert submitted.status is OrderStatus.REJECTED
    assert "finite price" in (submitted.reject_reason or "")


def test_nan_reference_price_does_not_raise() -> None:
    exchange = make_exchange(MarketType.FUTURES)
    submitted = exchange.submit_order(
        order("a", OrderSide.BUY, 1.0, leverage=2.0), T0, reference_price=float("nan")
    )
    assert submitted.status is OrderStatus.REJECTED
    assert "price" in (submitted.reject_reason or "")


def test_bracket_limit_waits_for_entry() -> None:
    # The take-profit is touched while its entry limit at 95 is still pending: it must wait.
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, OrderType.LIMIT, price=95.0), T0)
    take_profit = exchange.submit_order(
        order("tp", OrderSide.SELL, 1.0, OrderType.LIMIT, price=110.0, reduce_only=True), T0
    )
    assert candle(exchange, 1, 105.0, 111.0, 104.0, 106.0) == []
    assert take_profit.status is OrderStatus.OPEN
    assert [fill.price for fill in candle(exchange, 2, 100.0, 101.0, 94.0, 96.0)] == [95.0]
    assert [fill.price for fill in candle(exchange, 3, 105.0, 111.0, 104.0, 106.0)] == [110.0]
    assert exchange.trades[0].pnl == pytest.approx(15.0)


def test_orphan_reduce_only_canceled_when_entry_canceled() -> None:
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, OrderType.LIMIT, price=95.0), T0)
    exchange.submit_order(
        order("tp", OrderSide.SELL, 1.0, OrderType.LIMIT, price=110.0, reduce_only=True), T0
    )
    assert exchange.cancel_order("in", T0)
    assert candle(exchange, 1, 105.0, 111.0, 104.0, 106.0) == []
    assert exchange.orders[1].status is OrderStatus.CANCELED
    assert not exchange.has_activity(SYMBOL)


def test_triggered_stop_listed_as_filled_order() -> None:
    """A stop that fires appears in the order list with the fill's id, trigger and status."""
    exchange = make_exchange(step=0.001)
    exchange.submit_order(order("in", OrderSide.BUY, 1.0, stop_distance=2.0), T0)
    candle(exchange, 1, 100.0, 100.5, 99.5, 100.0)
    fills = candle(exchange, 2, 99.0, 99.5, 97.0, 97.5)
    stop_orders = [o for o in exchange.orders if o.client_order_id == fills[0].client_order_id]
    assert len(stop_orders) == 1
    assert stop_orders[0].type is OrderType.STOP_MARKET
    assert stop_orders[0].stop_price == 98.0
    assert stop_orders[0].status is OrderStatus.FILLED
    assert stop_orders[0].filled_quantity == 1.0


def test_partial_exits_leave_no_float_residue() -> None:
    """0.01433 sold as 0.00716 then 0.00717 closes the position: two trades, nothing left.

    0.01433 - 0.00716 is 0.0071700000000000005 in floats; the residue of 5e-19 after the
    second sale is far below half a step (0.000005), so the second sale closes the position.
    """
    exchange = make_exchange(step=0.00001, min_notional=0.0)
    exchange.submit_order(order("in", OrderSide.BUY, 0.01433), T0)
    flat(exchange, 1, 100_000.0)
    exchange.submit_order(order("cut", OrderSide.SELL, 0.00716, reduce_only=True), T0)
    flat(exchange, 2, 100_000.0)
    exchange.submit_order(order("out", OrderSide.SELL, 0.00717, reduce_only=True), T0)
    flat(exchange, 3, 100_000.0)
    assert SYMBOL not in exchange.positions
    assert len(exchange.trades) == 2
    assert exchange.trades[0].quantity == 0.00716
    assert exchange.trades[1].quantity == pytest.approx(0.00717, abs=1e-12)
