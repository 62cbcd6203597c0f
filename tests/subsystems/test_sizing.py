"""Trading Mathematician: stops, caps, leverage and exchange rounding, with hand-derived values."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import MarketType, PositionSide
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.subsystems.sizing import (
    SizingDecision,
    SizingRejection,
    SizingResult,
    TradingMathematician,
)

SPOT = MarketType.SPOT
FUTURES = MarketType.FUTURES
LONG = PositionSide.LONG
SHORT = PositionSide.SHORT


def make_rules(
    step: float = 0.001,
    min_notional: float = 5.0,
    min_quantity: float = 0.0,
    taker_fee: float = 0.001,
    market_type: MarketType = SPOT,
    max_leverage: float = 20.0,
) -> MarketRules:
    return MarketRules(
        symbol="BTC/USDT",
        market_type=market_type,
        tick_size=0.01,
        step_size=step,
        min_notional=min_notional,
        min_quantity=min_quantity,
        maker_fee=taker_fee,
        taker_fee=taker_fee,
        max_leverage=max_leverage,
    )


def make_sizer(
    market_type: MarketType = SPOT, maintenance: float = 0.005, **risk: Any
) -> TradingMathematician:
    return TradingMathematician(RiskSettings(**risk), maintenance, market_type)


def approved(result: SizingResult) -> SizingDecision:
    assert isinstance(result, SizingDecision), result
    return result


def rejected(result: SizingResult) -> SizingRejection:
    assert isinstance(result, SizingRejection), result
    return result


# Minimum notional after truncation: 10 USDT at 27777.78 with step 0.00001 and min notional 10.
# 10 / 27777.78 = 0.00035999997, truncated to 0.00035, worth 0.00035 x 27777.78 = 9.722223.
# One more step, 0.00036, is worth 10.0000008 and costs 10.0100008 with a 0.1% fee.


def size_ten_usdt_stake(cash: float) -> SizingResult:
    sizer = make_sizer(sizing="stake", stake_amount=10.0)
    rules = make_rules(step=0.00001, min_notional=10.0)
    return sizer.size("BTC/USDT", LONG, 27777.78, 500.0, 10_000.0, cash, rules)


def test_min_notional_bump_unaffordable_rejected() -> None:
    result = rejected(size_ten_usdt_stake(cash=10.0))
    assert "9.722223" in result.reason
    assert "min notional 10" in result.reason
    assert "0.00036" in result.reason
    assert result.numbers["notional"] == pytest.approx(9.722223, abs=1e-9)
    assert result.numbers["quantity"] == 0.00035


def test_min_notional_bump_one_step() -> None:
    result = approved(size_ten_usdt_stake(cash=20.0))
    assert result.quantity == 0.00036
    assert result.notional == pytest.approx(10.0000008, abs=1e-9)
    assert "bumped up one step from 0.00035 to 0.00036" in result.reason


def test_tiny_cash_rejected_below_min_notional() -> None:
    sizer = make_sizer(sizing="stake", stake_amount=10.0)
    rules = make_rules(step=0.00001, min_notional=10.0)
    result = rejected(sizer.size("BTC/USDT", LONG, 27777.78, 500.0, 10_000.0, 1e-9, rules))
    assert "min notional 10" in result.reason
    assert result.numbers["quantity"] == 0.0


def test_all_cash_spend_includes_taker_fee() -> None:
    # value + fee = cash: value = 100 / 1.00075 = 99.9250562..., floored to the step 0.000001.
    sizer = make_sizer(sizing="stake", stake_amount=1_000.0)
    rules = make_rules(step=0.000001, min_notional=5.0, taker_fee=0.00075)
    result = approved(sizer.size("X/USDT", LONG, 1.0, 0.01, 10_000.0, 100.0, rules))
    assert round(result.notional, 6) == 99.925056
    assert round(result.entry_fee, 6) == 0.074944
    assert round(result.notional + result.entry_fee, 6) == 100.0
    assert result.notional + result.entry_fee <= 100.0
    assert "by available cash 100" in result.reason


@pytest.mark.parametrize("price", [0.0, -5.0, math.nan, math.inf])
def test_invalid_price_rejected(price: float) -> None:
    result = rejected(
        make_sizer().size("BTC/USDT", LONG, price, 1.0, 1_000.0, 1_000.0, make_rules())
    )
    assert result.reason == f"invalid reference price {price!r}; no order"


def test_zero_price_reason_text() -> None:
    result = rejected(make_sizer().size("BTC/USDT", LONG, 0.0, 1.0, 1_000.0, 1_000.0, make_rules()))
    assert result.reason == "invalid reference price 0.0; no order"


def test_risk_sizing_uses_atr_stop() -> None:
    # Risk 1% of 10000 = 100; stop = 2 x ATR 10 = 20; quantity 100 / 20 = 5, notional 5000.
    sizer = make_sizer(max_position_share=1.0)
    result = approved(
        sizer.size("BTC/USDT", LONG, 1_000.0, 10.0, 10_000.0, 100_000.0, make_rules())
    )
    assert result.quantity == 5.0
    assert result.stop_distance == 20.0
    assert result.take_profit_distance == 40.0
    assert result.risk_amount == 100.0
    assert result.leverage == 1.0


def test_stop_pct_overrides_atr() -> None:
    # Stop 2% of 1000 = 20 even with ATR NaN; target 3% = 30.
    sizer = make_sizer(max_position_share=1.0)
    result = approved(
        sizer.size(
            "BTC/USDT",
            LONG,
            1_000.0,
            math.nan,
            10_000.0,
            100_000.0,
            make_rules(),
            stop_pct=0.02,
            take_profit_pct=0.03,
        )
    )
    assert result.stop_distance == pytest.approx(20.0)
    assert result.take_profit_distance == pytest.approx(30.0)


def test_nan_stop_pct_falls_back_to_atr() -> None:
    sizer = make_sizer(max_position_share=1.0)
    result = approved(
        sizer.size(
            "BTC/USDT", LONG, 1_000.0, 10.0, 10_000.0, 100_000.0, make_rules(), stop_pct=math.nan
        )
    )
    assert result.stop_distance == 20.0


@pytest.mark.parametrize("atr", [math.nan, 0.0, -1.0])
def test_invalid_atr_rejected(atr: float) -> None:
    result = rejected(make_sizer().size("BTC/USDT", LONG, 100.0, atr, 1e4, 1e4, make_rules()))
    assert "invalid ATR" in result.reason


def test_reward_risk_below_minimum_rejected() -> None:
    # Target 1% over stop 2% is a reward-to-risk of 0.5, below the minimum 1.
    result = rejected(
        make_sizer().size(
            "BTC/USDT",
            LONG,
            100.0,
            1.0,
            1e4,
            1e4,
            make_rules(),
            stop_pct=0.02,
            take_profit_pct=0.01,
        )
    )
    assert "reward-to-risk 0.5 is below min_reward_risk 1" in result.reason


def test_position_share_cap_resizes() -> None:
    # Risk 100 over stop 200 gives 0.5 at 20000 = 10000 notional; the cap is 0.25 x 10000 = 2500.
    sizer = make_sizer()
    result = approved(sizer.size("BTC/USDT", LONG, 20_000.0, 100.0, 10_000.0, 1e6, make_rules()))
    assert result.quantity == 0.125
    assert result.notional == 2_500.0
    assert "resized from 0.5 to 0.125 by max_position_share 0.25" in result.reason
    assert result.risk_amount == 25.0


def test_spot_cash_cap_resizes_with_fee() -> None:
    # Cash 1000 affords value 1000 / 1.001 = 999.000999, so 0.999000999 at 1000, floored 0.999.
    sizer = make_sizer(max_position_share=1.0)
    result = approved(sizer.size("BTC/USDT", LONG, 1_000.0, 10.0, 10_000.0, 1_000.0, make_rules()))
    assert result.quantity == 0.999
    assert "resized from 5 to 0.999001 by available cash 1000" in result.reason


def test_short_on_spot_rejected() -> None:
    result = rejected(make_sizer().size("BTC/USDT", SHORT, 100.0, 1.0, 1e4, 1e4, make_rules()))
    assert "futures" in result.reason


def test_futures_share_cap_scales_with_leverage() -> None:
    # Leverage 3, m 0.005, stop 1%: long liquidation 100 x (2/3) / 0.995 = 67.0, below 98.5.
    # Risk 100 over stop 1 gives 100 units = 10000 notional; cap 0.25 x 10000 x 3 = 7500.
    sizer = make_sizer(FUTURES, leverage=3.0)
    rules = make_rules(market_type=FUTURES, taker_fee=0.0005)
    result = approved(
        sizer.size("BTC/USDT", LONG, 100.0, 1.0, 10_000.0, 10_000.0, rules, stop_pct=0.01)
    )
    assert result.leverage == 3.0
    assert result.quantity == 75.0
    assert result.margin == pytest.approx(2_500.0)


def test_futures_cash_cap_counts_margin_and_fee() -> None:
    # margin + fee = v/3 + 0.0005 v <= 1000, so v <= 1000 / 0.33383333 = 2995.5067,
    # 29.955067 units at 100, floored to 29.955: margin 998.5, fee 1.49775.
    sizer = make_sizer(FUTURES, leverage=3.0)
    rules = make_rules(market_type=FUTURES, taker_fee=0.0005)
    result = approved(
        sizer.size("BTC/USDT", LONG, 100.0, 1.0, 10_000.0, 1_000.0, rules, stop_pct=0.01)
    )
    assert result.quantity == 29.955
    assert result.margin == pytest.approx(998.5)
    assert result.entry_fee == pytest.approx(1.49775)


def test_leverage_lowered_for_liquidation() -> None:
    # m = 0.25, stop 2% of 100, buffer 0.5: liquidation must be <= 100 - 2 x 1.5 = 97.
    # 5x: 100 x 0.8 / 0.75 = 106.67 (above the entry); 4x: 100 x 0.75 / 0.75 = 100;
    # 3x: 100 x (2/3) / 0.75 = 88.89, which clears the stop.
    sizer = make_sizer(FUTURES, maintenance=0.25, leverage=5.0, max_leverage=5.0)
    rules = make_rules(market_type=FUTURES)
    result = approved(sizer.size("BTC/USDT", LONG, 100.0, 1.0, 1e4, 1e4, rules, stop_pct=0.02))
    assert result.leverage == 3.0
    assert "leverage lowered from 5x to 3x" in result.reason


def test_leverage_kept_when_safe() -> None:
    sizer = make_sizer(FUTURES, leverage=3.0)
    rules = make_rules(market_type=FUTURES)
    result = approved(sizer.size("BTC/USDT", LONG, 100.0, 1.0, 1e4, 1e4, rules, stop_pct=0.02))
    assert result.leverage == 3.0
    assert "lowered" not in result.reason


def test_short_rejected_when_1x_unsafe() -> None:
    # Short at 1x with m = 0.25: liquidation 100 x 2 / 1.25 = 160. A 45% stop with buffer 0.5
    # needs the liquidation at or above 100 + 45 x 1.5 = 167.5.
    sizer = make_sizer(FUTURES, maintenance=0.25, leverage=2.0)
    rules = make_rules(market_type=FUTURES)
    result = rejected(sizer.size("BTC/USDT", SHORT, 100.0, 1.0, 1e4, 1e4, rules, stop_pct=0.45))
    assert "even at 1x the liquidation price 160" in result.reason


def test_min_quantity_bump() -> None:
    # Stake 5 at 100 is 0.05 units; the min quantity is 0.051, one step of 0.001 above.
    sizer = make_sizer(sizing="stake", stake_amount=5.0)
    rules = make_rules(step=0.001, min_notional=1.0, min_quantity=0.051)
    result = approved(sizer.size("BTC/USDT", LONG, 100.0, 1.0, 1e4, 1e4, rules))
    assert result.quantity == 0.051


# Property tests: random markets and accounts; every approved size obeys the caps.

_STEPS = st.sampled_from([0.00001, 0.001, 0.01, 1.0])


@st.composite
def sizing_cases(draw: st.DrawFn) -> dict[str, Any]:
    market_type = draw(st.sampled_from([SPOT, FUTURES]))
    max_leverage = draw(st.floats(1.0, 20.0))
    risk = RiskSettings(
        risk_per_trade=draw(st.floats(0.001, 0.05)),
        max_position_share=draw(st.floats(0.05, 1.0)),
        leverage=draw(st.floats(1.0, max_leverage)),
        max_leverage=max_leverage,
        stop_atr_multiple=draw(st.floats(0.5, 5.0)),
        liquidation_buffer=draw(st.floats(0.0, 2.0)),
    )
    price = draw(st.floats(0.001, 1e6))
    return {
        "risk": risk,
        "market_type": market_type,
        "maintenance": draw(st.floats(0.001, 0.2)),
        "side": draw(st.sampled_from([LONG, SHORT] if market_type is FUTURES else [LONG])),
        "price": price,
        "atr": price * draw(st.floats(0.0005, 0.1)),
        "equity": draw(st.floats(10.0, 1e8)),
        "cash_share": draw(st.floats(0.0, 2.0)),
        "rules": make_rules(
            step=draw(_STEPS),
            min_notional=draw(st.sampled_from([0.0, 5.0, 10.0])),
            taker_fee=draw(st.sampled_from([0.0, 0.0005, 0.001])),
            market_type=market_type,
        ),
    }


@settings(max_examples=300, deadline=None)
@given(sizing_cases())
def test_sizing_properties(case: dict[str, Any]) -> None:
    risk: RiskSettings = case["risk"]
    rules: MarketRules = case["rules"]
    price, equity = case["price"], case["equity"]
    cash = equity * case["cash_share"]
    sizer = TradingMathematician(risk, case["maintenance"], case["market_type"])
    result = sizer.size("X/USDT", case["side"], price, case["atr"], equity, cash, rules)
    if isinstance(result, SizingRejection):
        return

    futures = case["market_type"] is FUTURES
    one_step_value = rules.step_size * price
    tolerance = 1e-9 * max(1.0, result.notional)
    assert result.quantity > 0
    share_cap = risk.max_position_share * equity * (result.leverage if futures else 1.0)
    assert result.notional <= share_cap + one_step_value + tolerance
    committed = result.notional / result.leverage if futures else result.notional
    assert committed + result.notional * rules.taker_fee <= cash + tolerance
    risk_budget = equity * risk.risk_per_trade
    assert result.risk_amount <= risk_budget + rules.step_size * result.stop_distance + tolerance

    if not futures:
        assert result.leverage == 1.0
        return
    leverage, m = result.leverage, case["maintenance"]
    if case["side"] is LONG:
        liquidation = price * (1 - 1 / leverage) / (1 - m)
        assert leverage == 1.0 or liquidation < price - result.stop_distance
    else:
        liquidation = price * (1 + 1 / leverage) / (1 + m)
        assert liquidation > price + result.stop_distance
