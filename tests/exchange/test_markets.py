"""Exchange rounding, minimum sizes and the table of market rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.markets import (
    MarketRules,
    check_order_size,
    default_market_rules,
    derive_increments,
    floor_quantity,
    round_price,
)

SPOT = MarketType.SPOT
FUTURES = MarketType.FUTURES


def _btc_rules(min_notional: float = 10.0) -> MarketRules:
    return MarketRules("BTC/USDT", SPOT, 0.01, 0.00001, min_notional, 0.00001, 0.001, 0.001)


def test_floor_quantity_truncates_float_noise() -> None:
    assert floor_quantity(0.00035999997, 0.00001) == 0.00035


def test_floor_quantity_keeps_exact_multiple() -> None:
    assert floor_quantity(0.3, 0.1) == 0.3


def test_floor_quantity_keeps_computed_multiple() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 and 0.7 - 0.4 is 0.29999999999999993 in floats.
    assert floor_quantity(0.1 + 0.2, 0.1) == 0.3
    assert floor_quantity(0.7 - 0.4, 0.1) == 0.3


def test_floor_quantity_whole_steps() -> None:
    assert floor_quantity(12.9, 1.0) == 12.0
    assert floor_quantity(0.0, 0.001) == 0.0


def test_floor_quantity_rejects_zero_step() -> None:
    with pytest.raises(ConfigurationError, match="step size"):
        floor_quantity(1.0, 0.0)


def test_round_price_to_nearest_tick() -> None:
    assert round_price(27777.784, 0.01) == 27777.78
    assert round_price(27777.786, 0.01) == 27777.79
    assert round_price(0.21666, 0.0001) == 0.2167


@given(
    steps=st.integers(min_value=0, max_value=10_000_000),
    step=st.sampled_from([0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0]),
)
def test_floor_quantity_keeps_whole_steps(steps: int, step: float) -> None:
    quantity = steps * step
    assert floor_quantity(quantity, step) == pytest.approx(quantity, rel=1e-12, abs=1e-15)


@given(
    quantity=st.floats(min_value=0.0, max_value=1e6),
    step=st.sampled_from([0.00001, 0.001, 0.1, 1.0]),
)
def test_floor_quantity_never_exceeds_by_more_than_noise(quantity: float, step: float) -> None:
    floored = floor_quantity(quantity, step)
    assert floored <= quantity * (1 + 1e-9) + 1e-12
    assert quantity - floored < step * (1 + 1e-9)


def test_min_notional_checked_after_truncation() -> None:
    # Budget 10 USDT at 27777.78: 0.00035999997 truncates to 0.00035, notional 9.722223 < 10.
    quantity = 10.0 / 27777.78
    reason = check_order_size(quantity, 27777.78, _btc_rules(min_notional=10.0))
    assert reason is not None
    assert "9.722223" in reason
    assert "minimum notional 10" in reason


def test_one_step_more_meets_min_notional() -> None:
    # 0.00036 * 27777.78 = 10.0000008 >= 10.
    assert check_order_size(0.00036, 27777.78, _btc_rules(min_notional=10.0)) is None


def test_below_min_quantity_rejected() -> None:
    rules = default_market_rules("BTC/USDT", FUTURES, 0.0005, 0.0002)
    reason = check_order_size(0.0009, 100_000.0, rules)
    assert reason is not None
    assert "minimum quantity 0.001" in reason


def test_zero_price_rejected_without_division_error() -> None:
    reason = check_order_size(1.0, 0.0, _btc_rules())
    assert reason is not None
    assert "price" in reason


def test_default_spot_rules_btc() -> None:
    rules = default_market_rules("BTC/USDT", SPOT, 0.001, 0.001)
    assert rules.tick_size == 0.01
    assert rules.step_size == 0.00001
    assert rules.min_notional == 5.0


def test_default_futures_rules_by_ccxt_name() -> None:
    rules = default_market_rules("XRP/USDT:USDT", FUTURES, 0.0005, 0.0002)
    assert rules.symbol == "XRP/USDT:USDT"
    assert rules.step_size == 0.1
    assert rules.min_notional == 5.0
    assert rules.tick_size == 0.0001


@pytest.mark.parametrize(
    ("symbol", "step", "min_notional"),
    [
        ("BTC/USDT", 0.001, 100.0),
        ("ETH/USDT", 0.001, 20.0),
        ("SOL/USDT", 1.0, 5.0),
        ("BNB/USDT", 0.01, 5.0),
    ],
)
def test_default_futures_rules_table(symbol: str, step: float, min_notional: float) -> None:
    rules = default_market_rules(symbol, FUTURES, 0.0005, 0.0002)
    assert rules.step_size == step
    assert rules.min_notional == min_notional


def test_default_rules_carry_fees() -> None:
    rules = default_market_rules("ETH/USDT", SPOT, taker_fee=0.001, maker_fee=0.0008)
    assert rules.taker_fee == 0.001
    assert rules.maker_fee == 0.0008


def test_unknown_symbol_without_reference_price_raises() -> None:
    with pytest.raises(ConfigurationError, match="DOGE/USDT"):
        default_market_rules("DOGE/USDT", SPOT, 0.001, 0.001)


def test_unknown_symbol_derives_increments() -> None:
    rules = default_market_rules("DOGE/USDT", SPOT, 0.001, 0.001, reference_price=0.1234)
    # 6 significant digits of 0.1234 -> tick 0.000001; 0.1 / 0.1234 = 0.81 -> step 0.1.
    assert rules.tick_size == 0.000001
    assert rules.step_size == 0.1
    assert rules.min_quantity == 0.1


def test_derive_increments_for_btc_price() -> None:
    # 27777.78: tick 0.1 keeps 6 digits; one step of 0.000001 is worth 0.028 quote.
    assert derive_increments(27777.78) == (0.1, 0.000001)


def test_derive_increments_rejects_zero_price() -> None:
    with pytest.raises(ConfigurationError, match="reference price"):
        derive_increments(0.0)
