"""Execution manager (AELM): order styles, slicing, the slippage cap, timeouts, retries, reports.

Every expected value is derived by hand in the test's docstring or comments. Participation is
the order quantity over the average candle volume.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from quantum_trader.config import ExchangeSettings, SlippageSettings
from quantum_trader.core.types import (
    Fill,
    Liquidity,
    MarketType,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
)
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError, OrderRejected, TemporaryError
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.execution import (
    ExecutionManager,
    ExecutionRequest,
    ExecutionSettings,
    ExecutionStyle,
    MarketContext,
    OrderOutcome,
    quality,
    summarize_quality,
)
from quantum_trader.subsystems.execution_orders import apply_exchange_order, split_quantity

SYMBOL = "BTC/USDT"
HOUR_NS = 3_600 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000
BUY = OrderSide.BUY
SELL = OrderSide.SELL
NO_SLIPPAGE = SlippageSettings(fixed_bps=0.0, range_share=0.0, volume_impact=0.0)


def make_rules(min_notional: float = 5.0) -> MarketRules:
    return MarketRules(
        symbol=SYMBOL,
        market_type=MarketType.SPOT,
        tick_size=0.01,
        step_size=0.001,
        min_notional=min_notional,
        min_quantity=0.001,
        maker_fee=0.001,
        taker_fee=0.001,
    )


def make_manager(
    slippage: SlippageSettings | None = None,
    rules: MarketRules | None = None,
    log: DecisionLog | None = None,
    **settings: Any,
) -> ExecutionManager:
    return ExecutionManager(
        ExecutionSettings(**settings),
        slippage if slippage is not None else SlippageSettings(),
        {SYMBOL: rules if rules is not None else make_rules()},
        HOUR_NS,
        log,
    )


def request(
    quantity: float, side: OrderSide = BUY, price: float = 100.0, tag: str = "entry:trend"
) -> ExecutionRequest:
    return ExecutionRequest(SYMBOL, side, quantity, price, tag=tag, stop_distance=2.0)


def context(
    avg_volume: float, last_range: float = 1.0, volatility: float = math.nan
) -> MarketContext:
    return MarketContext(avg_volume, last_range, volatility)


# --- order styles ---------------------------------------------------------------------------


def test_small_participation_sends_market_order() -> None:
    """0.05 / 100 = 0.0005 < 0.001. Default slippage at price 100, range 1:
    100 x 1 bps = 0.01, + 0.02 x 1 = 0.02, + 0.1 x 0.0005 x 1 = 0.00005; 0.03005 = 3.005 bps."""
    plan = make_manager().plan(T0, request(0.05), context(100.0))

    assert plan.style is ExecutionStyle.MARKET
    assert plan.binding is True
    assert len(plan.orders) == 1
    assert plan.orders[0].type is OrderType.MARKET
    assert plan.orders[0].quantity == 0.05
    assert plan.participation == pytest.approx(0.0005)
    assert plan.expected_slippage_bps == pytest.approx(3.005)


def test_medium_participation_sends_limit_at_reference() -> None:
    """0.5 / 100 = 0.005: from 0.001 up to 0.01, so one limit order at the price 100."""
    plan = make_manager().plan(T0, request(0.5), context(100.0))

    assert plan.style is ExecutionStyle.LIMIT
    assert plan.orders[0].type is OrderType.LIMIT
    assert plan.orders[0].price == 100.0
    assert plan.orders[0].quantity == 0.5
    assert plan.post_only is False


def test_prefer_maker_marks_limit_post_only() -> None:
    plan = make_manager(prefer_maker=True).plan(T0, request(0.5), context(100.0))

    assert plan.style is ExecutionStyle.POST_ONLY
    assert plan.orders[0].type is OrderType.LIMIT
    assert plan.post_only is True


def test_participation_at_slice_threshold_is_limit() -> None:
    """1.0 / 100 = 0.01 equals slice_participation, which is still a single limit order."""
    plan = make_manager().plan(T0, request(1.0), context(100.0))

    assert plan.style is ExecutionStyle.LIMIT
    assert len(plan.orders) == 1


def test_large_participation_sliced_into_four() -> None:
    """0.7 / 20 = 0.035; ceil(0.035 / 0.01) = 4 slices of 0.7 / 4 = 0.175."""
    plan = make_manager().plan(T0, request(0.7), context(20.0))

    assert plan.style is ExecutionStyle.SLICED
    assert [order.quantity for order in plan.orders] == [0.175, 0.175, 0.175, 0.175]
    assert all(order.type is OrderType.LIMIT for order in plan.orders)
    assert all(order.price == 100.0 for order in plan.orders)


def test_last_slice_takes_step_remainder() -> None:
    """1.001 / 28.6 = 0.035 -> 4 slices. 1.001 / 4 = 0.25025 floors to 0.25 on step 0.001;
    the last slice is 1.001 - 3 x 0.25 = 0.251."""
    plan = make_manager().plan(T0, request(1.001), context(28.6))

    quantities = [order.quantity for order in plan.orders]
    assert quantities == [0.25, 0.25, 0.25, 0.251]
    assert math.fsum(quantities) == pytest.approx(1.001)


def test_slices_due_on_consecutive_candles() -> None:
    plan = make_manager().plan(T0, request(0.7), context(20.0))

    assert [order.created_ns for order in plan.orders] == [
        T0,
        T0 + HOUR_NS,
        T0 + 2 * HOUR_NS,
        T0 + 3 * HOUR_NS,
    ]
    assert [order.client_order_id for order in plan.due(T0 + HOUR_NS)] == [
        plan.orders[0].client_order_id,
        plan.orders[1].client_order_id,
    ]
    assert all(order.stop_distance == 2.0 for order in plan.orders)


def test_slice_count_ignores_float_residue() -> None:
    """0.07 / 1 = 0.07, and 0.07 / 0.01 is 7.000000000000001 in floats: 7 slices, not 8.
    At price 1000 each slice of 0.01 is worth 10, above the minimum notional 5."""
    plan = make_manager().plan(T0, request(0.07, price=1000.0), context(1.0))

    assert len(plan.orders) == 7
    assert all(order.quantity == 0.01 for order in plan.orders)


def test_slice_count_capped_at_max_slices() -> None:
    """5 / 10 = 0.5 gives 50 slices; max_slices 10 gives 10 slices of 0.5."""
    plan = make_manager().plan(T0, request(5.0), context(10.0))

    assert len(plan.orders) == 10
    assert plan.orders[0].quantity == 0.5


def test_slice_count_lowered_to_min_notional() -> None:
    """0.2 / 2 = 0.1 gives 10 slices of 0.02, worth 2 at price 100, below the minimum
    notional 5. Five slices of 0.04 are worth 4, still below. Four of 0.05 are worth 5."""
    plan = make_manager().plan(T0, request(0.2), context(2.0))

    assert [order.quantity for order in plan.orders] == [0.05, 0.05, 0.05, 0.05]
    assert "10 slices would fall below the exchange minimums" in plan.reason


def test_unknown_volume_counts_as_full_participation() -> None:
    """Participation 1 gives 100 slices; max_slices gives 10 slices of 1 / 10 = 0.1."""
    plan = make_manager().plan(T0, request(1.0), context(math.nan))

    assert plan.participation == 1.0
    assert len(plan.orders) == 10
    assert plan.orders[0].quantity == 0.1


# --- slippage cap ---------------------------------------------------------------------------


def capped_slippage() -> SlippageSettings:
    """Price 100, range 10: 100 x 20 bps = 0.2, + 0.02 x 10 = 0.2; 0.4 = 40 bps."""
    return SlippageSettings(fixed_bps=20.0, range_share=0.02, volume_impact=0.0)


def test_slippage_above_cap_buy_becomes_limit() -> None:
    """40 bps > 30 bps: a buy limit at 100 x (1 + 0.003) = 100.3."""
    plan = make_manager(capped_slippage()).plan(T0, request(0.05), context(100.0, 10.0))

    assert plan.expected_slippage_bps == pytest.approx(40.0)
    assert plan.style is ExecutionStyle.LIMIT
    assert plan.orders[0].type is OrderType.LIMIT
    assert plan.orders[0].price == 100.3


def test_slippage_above_cap_sell_limit_below() -> None:
    """A sell limit at 100 x (1 - 0.003) = 99.7."""
    plan = make_manager(capped_slippage()).plan(T0, request(0.05, SELL), context(100.0, 10.0))

    assert plan.orders[0].price == 99.7


def test_cap_price_rounds_towards_reference() -> None:
    """101.23 x 1.003 = 101.53369 floors to 101.53 for a buy; 101.23 x 0.997 = 100.92631 rounds
    up to 100.93 for a sell, so neither pays more than 30 bps."""
    manager = make_manager(capped_slippage())

    buy = manager.plan(T0, request(0.05, BUY, 101.23), context(100.0, 10.0))
    sell = manager.plan(T0, request(0.05, SELL, 101.23, "exit"), context(100.0, 10.0))

    assert buy.orders[0].price == 101.53
    assert sell.orders[0].price == 100.93


def test_capped_limit_is_never_post_only() -> None:
    plan = make_manager(capped_slippage(), prefer_maker=True).plan(
        T0, request(0.05), context(100.0, 10.0)
    )

    assert plan.style is ExecutionStyle.LIMIT
    assert plan.post_only is False


def test_slippage_within_cap_stays_market() -> None:
    """With the cap raised to 50 bps, 40 bps is within it."""
    plan = make_manager(capped_slippage(), max_slippage_bps=50.0).plan(
        T0, request(0.05), context(100.0, 10.0)
    )

    assert plan.style is ExecutionStyle.MARKET


def test_unknown_range_uses_volatility() -> None:
    """Volatility 0.1 at price 100 gives a range of 10, so the expected slippage is 40 bps."""
    plan = make_manager(capped_slippage()).plan(T0, request(0.05), context(100.0, math.nan, 0.1))

    assert plan.expected_slippage_bps == pytest.approx(40.0)
    assert plan.orders[0].price == 100.3


def test_unknown_slippage_counts_above_cap() -> None:
    plan = make_manager().plan(T0, request(0.05), context(100.0, math.nan, math.nan))

    assert math.isnan(plan.expected_slippage_bps)
    assert plan.orders[0].type is OrderType.LIMIT
    assert plan.orders[0].price == 100.3


def test_urgent_tag_always_market() -> None:
    """Participation 0.5 would be sliced, but an emergency stop exit goes out at once."""
    plan = make_manager().plan(T0, request(5.0, SELL, tag="emergency_stop"), context(10.0))

    assert plan.style is ExecutionStyle.MARKET
    assert len(plan.orders) == 1
    assert plan.orders[0].quantity == 5.0


# --- client order ids -----------------------------------------------------------------------


def test_client_ids_stable_across_plans() -> None:
    first = make_manager().plan(T0, request(0.7), context(20.0))
    second = make_manager().plan(T0, request(0.7), context(20.0))

    first_ids = [order.client_order_id for order in first.orders]
    assert first_ids == [order.client_order_id for order in second.orders]
    assert len(set(first_ids)) == 4
    assert all(len(order_id) <= 28 for order_id in first_ids)


def test_client_ids_differ_by_time_and_tag() -> None:
    manager = make_manager()
    base = manager.plan(T0, request(0.05), context(100.0)).orders[0].client_order_id
    later = manager.plan(T0 + HOUR_NS, request(0.05), context(100.0)).orders[0].client_order_id
    other_tag = manager.plan(T0, request(0.05, tag="exit"), context(100.0)).orders[0]

    assert base != later
    assert base != other_tag.client_order_id


# --- modes, counters, invalid input ---------------------------------------------------------


def test_observe_mode_sends_plain_market_order() -> None:
    log = DecisionLog()
    manager = make_manager(log=log, mode=Mode.OBSERVE)

    plan = manager.plan(T0, request(0.5), context(100.0))

    assert plan.binding is False
    assert plan.style is ExecutionStyle.MARKET
    assert plan.recommended is ExecutionStyle.LIMIT
    assert plan.orders[0].type is OrderType.MARKET
    assert plan.orders[0].quantity == 0.5
    assert manager.changed == 0
    assert log.decisions[-1].subsystem == "AELM"
    assert log.decisions[-1].reason.startswith("[observe] recommends limit")


def test_counters_count_plans_and_changes() -> None:
    manager = make_manager()
    manager.plan(T0, request(0.05), context(100.0))  # market
    manager.plan(T0, request(0.5), context(100.0))  # limit
    manager.plan(T0, request(0.7), context(20.0))  # sliced

    assert manager.seen == 3
    assert manager.changed == 2
    assert manager.vetoed == 0
    assert manager.last_heartbeat is not None


def test_nan_quantity_rejected_with_reason() -> None:
    log = DecisionLog()
    manager = make_manager(log=log)

    plan = manager.plan(T0, request(math.nan), context(100.0))

    assert plan.style is ExecutionStyle.REJECTED
    assert plan.orders == []
    assert manager.vetoed == 1
    assert log.decisions[-1].action is Action.REJECT
    assert "invalid quantity nan" in log.decisions[-1].reason


def test_invalid_price_not_vetoed_in_observe() -> None:
    manager = make_manager(mode=Mode.OBSERVE)

    plan = manager.plan(T0, request(0.05, price=0.0), context(100.0))

    assert plan.orders == []
    assert plan.binding is False
    assert manager.vetoed == 0


def test_settings_reject_limit_above_slice() -> None:
    with pytest.raises(ValidationError, match="limit_participation"):
        ExecutionSettings(limit_participation=0.02, slice_participation=0.01)


def test_settings_reject_unknown_field() -> None:
    with pytest.raises(ValidationError):
        ExecutionSettings(slices=3)  # type: ignore[call-arg]


def test_zero_timeframe_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="timeframe_ns"):
        ExecutionManager(ExecutionSettings(), SlippageSettings(), {}, 0)


# --- timeouts -------------------------------------------------------------------------------


def test_limit_timeout_replaced_by_market() -> None:
    """Planned at T0 with a timeout of 3 candles. At T0 + 2h only 2 candles have passed. At
    T0 + 3h the order is canceled, and a market order for its 0.5 replaces it."""
    manager = make_manager()
    limit = manager.plan(T0, request(0.5), context(100.0)).orders[0]

    assert manager.expire_limits(T0 + 2 * HOUR_NS, [limit], lambda order: True) == []

    actions = manager.expire_limits(T0 + 3 * HOUR_NS, [limit], lambda order: True)
    assert len(actions) == 1
    replacement = actions[0].replacement
    assert actions[0].canceled is limit
    assert replacement is not None
    assert replacement.type is OrderType.MARKET
    assert replacement.quantity == 0.5
    assert replacement.created_ns == T0 + 3 * HOUR_NS
    assert replacement.client_order_id == limit.client_order_id + "m"
    assert manager.arrival_prices[replacement.client_order_id] == 100.0
    assert "replaced by market order" in manager.log.decisions[-1].reason


def test_timeout_without_valid_decision() -> None:
    manager = make_manager()
    limit = manager.plan(T0, request(0.5), context(100.0)).orders[0]

    actions = manager.expire_limits(T0 + 3 * HOUR_NS, [limit], lambda order: False)

    assert actions[0].replacement is None
    assert "decision is no longer valid" in actions[0].reason


def test_timeout_ignores_foreign_limit_orders() -> None:
    foreign = Order("other-1", SYMBOL, BUY, OrderType.LIMIT, 0.5, T0, price=99.0)

    actions = make_manager().expire_limits(T0 + 10 * HOUR_NS, [foreign], lambda order: True)

    assert actions == []


def test_timeout_replaces_only_unfilled_part() -> None:
    """0.5 ordered, 0.2 filled: the replacement is for 0.3."""
    manager = make_manager()
    limit = manager.plan(T0, request(0.5), context(100.0)).orders[0]
    limit.filled_quantity = 0.2

    actions = manager.expire_limits(T0 + 3 * HOUR_NS, [limit], lambda order: True)

    replacement = actions[0].replacement
    assert replacement is not None
    assert replacement.quantity == 0.3


def test_timeout_on_simulated_exchange() -> None:
    """A buy limit at 100 rests three candles whose low is 100.5, is canceled at the close of
    the third and replaced. The market order fills at the next open 101.5 (no slippage), which
    is (101.5 - 100) / 100 = +150 bps against the arrival price 100."""
    exchange = SimulatedExchange(
        {SYMBOL: make_rules()},
        ExchangeSettings(slippage=NO_SLIPPAGE, maker_fee=0.001, taker_fee=0.001),
        10_000.0,
    )
    manager = make_manager(NO_SLIPPAGE)
    limit = manager.plan(T0, request(0.5), context(100.0)).orders[0]
    exchange.submit_order(limit, T0)
    for candle in (1, 2, 3):
        time_ns = T0 + candle * HOUR_NS
        exchange.process_candle(SYMBOL, time_ns, 101.0, 102.0, 100.5, 101.5, 50.0, False)

    actions = manager.expire_limits(T0 + 3 * HOUR_NS, exchange.open_orders(), lambda o: True)
    assert exchange.cancel_order(actions[0].canceled.client_order_id, T0 + 3 * HOUR_NS)
    replacement = actions[0].replacement
    assert replacement is not None
    exchange.submit_order(replacement, T0 + 3 * HOUR_NS)
    exchange.process_candle(SYMBOL, T0 + 4 * HOUR_NS, 101.5, 102.0, 101.0, 101.8, 50.0, False)

    report = manager.reconcile([limit, replacement], exchange.fills)
    assert report.orders[0].outcome is OrderOutcome.TIMED_OUT
    assert report.orders[1].outcome is OrderOutcome.FILLED
    assert report.orders[1].avg_fill_price == 101.5
    qualities = quality(exchange.fills, manager.arrival_prices)
    assert len(qualities) == 1
    assert qualities[0].slippage_bps == pytest.approx(150.0)


# --- submission with retries ----------------------------------------------------------------


class FakeClient:
    """An exchange client that fails ``failures`` times with a temporary error, then accepts."""

    def __init__(self, failures: int = 0, reject: str | None = None) -> None:
        self.failures = failures
        self.reject = reject
        self.created: list[str] = []

    def create_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: float,
        price: float | None,
        client_order_id: str,
    ) -> dict[str, Any]:
        self.created.append(client_order_id)
        if self.reject is not None:
            raise OrderRejected(self.reject, client_order_id=client_order_id)
        if len(self.created) <= self.failures:
            raise TemporaryError("request timed out")
        return {"clientOrderId": client_order_id, "status": "open", "filled": 0.0}

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        return None

    def fetch_position(self, symbol: str) -> float:
        return 0.0


def test_temporary_error_retried_with_backoff() -> None:
    """Three timeouts, then success: waits 0.5, 0.5 x 2 = 1.0 and 1.0 x 2 = 2.0 seconds."""
    manager = make_manager()
    order = manager.plan(T0, request(0.05), context(100.0)).orders[0]
    client = FakeClient(failures=3)
    delays: list[float] = []

    result = manager.submit(client, order, T0, sleep=delays.append)

    assert delays == [0.5, 1.0, 2.0]
    assert result.status == "accepted"
    assert client.created == [order.client_order_id] * 4
    assert order.status is OrderStatus.OPEN


def test_unconfirmed_after_max_retries() -> None:
    """Four timeouts: after the fourth the lookup waits 4.0 seconds and still finds nothing."""
    manager = make_manager()
    order = manager.plan(T0, request(0.05), context(100.0)).orders[0]
    delays: list[float] = []

    result = manager.submit(FakeClient(failures=10), order, T0, sleep=delays.append)

    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert result.status == "unconfirmed"


def test_reject_not_retried_and_recorded() -> None:
    log = DecisionLog()
    manager = make_manager(log=log)
    order = manager.plan(T0, request(0.05), context(100.0)).orders[0]
    client = FakeClient(reject="insufficient balance")
    delays: list[float] = []

    result = manager.submit(client, order, T0, sleep=delays.append)

    assert delays == []
    assert len(client.created) == 1
    assert result.status == "rejected"
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "insufficient balance"
    assert log.decisions[-1].action is Action.REJECT
    assert "insufficient balance" in log.decisions[-1].reason


# --- reconciliation -------------------------------------------------------------------------


def fill(
    order_id: str, side: OrderSide, price: float, quantity: float, maker: bool = False
) -> Fill:
    liquidity = Liquidity.MAKER if maker else Liquidity.TAKER
    return Fill(order_id, SYMBOL, side, price, quantity, 0.0, liquidity, T0)


def test_reconcile_tracks_partial_fill() -> None:
    """1.0 ordered, fills of 0.25 at 100 and 0.15 at 102: 0.4 filled, 0.6 remaining, average
    (25 + 15.3) / 0.4 = 100.75."""
    order = Order("a-1", SYMBOL, BUY, OrderType.LIMIT, 1.0, T0, price=102.0)
    fills = [fill("a-1", BUY, 100.0, 0.25), fill("a-1", BUY, 102.0, 0.15)]

    report = make_manager().reconcile([order], fills)

    state = report.orders[0]
    assert state.outcome is OrderOutcome.PARTIAL
    assert state.filled_quantity == pytest.approx(0.4)
    assert state.remaining_quantity == pytest.approx(0.6)
    assert state.avg_fill_price == pytest.approx(100.75)
    assert state.terminal is False
    assert report.remaining_by_symbol() == {SYMBOL: pytest.approx(0.6)}


def test_reconcile_records_reject_once() -> None:
    log = DecisionLog()
    manager = make_manager(log=log)
    order = Order("a-2", SYMBOL, BUY, OrderType.MARKET, 1.0, T0)
    order.status = OrderStatus.REJECTED
    order.reject_reason = "quantity below the minimum"

    first = manager.reconcile([order], [])
    manager.reconcile([order], [])

    assert first.orders[0].outcome is OrderOutcome.REJECTED
    assert first.orders[0].reason == "quantity below the minimum"
    assert first.orders[0].terminal is True
    assert [d.action for d in log.decisions] == [Action.REJECT]


def test_reconcile_lists_unmatched_fills() -> None:
    order = Order("a-3", SYMBOL, BUY, OrderType.MARKET, 1.0, T0)
    stray = fill("unknown", BUY, 100.0, 1.0)

    report = make_manager().reconcile([order], [stray])

    assert report.orders[0].outcome is OrderOutcome.OPEN
    assert report.unmatched_fills == (stray,)


def test_apply_exchange_order_maps_ccxt_status() -> None:
    order = Order("a-4", SYMBOL, BUY, OrderType.LIMIT, 1.0, T0, price=100.0)

    apply_exchange_order(order, {"status": "closed"})

    assert order.status is OrderStatus.FILLED
    assert order.filled_quantity == 1.0


# --- execution quality ----------------------------------------------------------------------


def test_buy_slippage_above_arrival_positive() -> None:
    """(100.1 - 100) / 100 x 10_000 = +10 bps for a buy."""
    result = quality([fill("b", BUY, 100.1, 1.0)], {"b": 100.0})

    assert result[0].slippage_bps == pytest.approx(10.0)
    assert result[0].avg_fill_price == pytest.approx(100.1)


def test_sell_slippage_below_arrival_positive() -> None:
    """-1 x (99.9 - 100) / 100 x 10_000 = +10 bps for a sell."""
    result = quality([fill("s", SELL, 99.9, 1.0)], {"s": 100.0})

    assert result[0].slippage_bps == pytest.approx(10.0)


def test_buy_below_arrival_negative_slippage() -> None:
    result = quality([fill("b", BUY, 99.9, 1.0)], {"b": 100.0})

    assert result[0].slippage_bps == pytest.approx(-10.0)


def test_quality_averages_fills_of_one_order() -> None:
    """1 at 100 and 1 at 100.2 average 100.1: +10 bps on a quantity of 2."""
    fills = [fill("b", BUY, 100.0, 1.0), fill("b", BUY, 100.2, 1.0)]

    result = quality(fills, {"b": 100.0})

    assert len(result) == 1
    assert result[0].quantity == 2.0
    assert result[0].slippage_bps == pytest.approx(10.0)


def test_quality_skips_missing_arrival_price() -> None:
    fills = [fill("b", BUY, 100.0, 1.0), fill("c", BUY, 100.0, 1.0)]

    result = quality(fills, {"b": 100.0, "c": math.nan})

    assert [item.client_order_id for item in result] == ["b"]


def test_summary_statistics_by_hand() -> None:
    """Buys against 100 at 99.98, 100, 100.04, 100.1, 100.2: -2, 0, 4, 10, 20 bps.
    Mean 32 / 5 = 6.4, median 4, p95 at rank 0.95 x 4 = 3.8: 10 + 0.8 x (20 - 10) = 18.
    Two of the five fills are maker fills: 0.4."""
    prices = [99.98, 100.0, 100.04, 100.1, 100.2]
    fills = [fill(f"o{i}", BUY, price, 1.0, maker=i < 2) for i, price in enumerate(prices)]
    arrivals = {f"o{i}": 100.0 for i in range(5)}

    summary = summarize_quality(quality(fills, arrivals), fills)

    assert summary.orders == 5
    assert summary.mean_slippage_bps == pytest.approx(6.4)
    assert summary.median_slippage_bps == pytest.approx(4.0)
    assert summary.p95_slippage_bps == pytest.approx(18.0)
    assert summary.maker_share == pytest.approx(0.4)


def test_summary_of_nothing_is_nan() -> None:
    summary = summarize_quality([], [])

    assert summary.orders == 0
    assert math.isnan(summary.mean_slippage_bps)
    assert math.isnan(summary.maker_share)


@given(steps=st.integers(min_value=1, max_value=100_000), count=st.integers(1, 10))
def test_split_sums_to_quantity_on_step(steps: int, count: int) -> None:
    """Slices of a quantity on the step add up to it, and every slice is on the step."""
    quantity = round(steps * 0.001, 3)

    parts = split_quantity(quantity, count, make_rules())

    assert math.fsum(parts) == pytest.approx(quantity, abs=1e-9)
    assert all(abs(part * 1000 - round(part * 1000)) < 1e-6 for part in parts)
    assert all(part == parts[0] for part in parts[:-1])
    assert parts[-1] >= parts[0]
