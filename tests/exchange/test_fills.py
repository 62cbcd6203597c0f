"""Fill model: stops, take-profits, gaps and slippage on single candles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantum_trader.core.types import PositionSide
from quantum_trader.exchange.fills import (
    limit_fill_price,
    liquidation_comes_first,
    liquidation_fill_price,
    market_fill_price,
    protective_exit,
    slippage,
    stop_fill_price,
)

LONG = PositionSide.LONG
SHORT = PositionSide.SHORT


def test_stop_fills_at_stop_when_low_crosses_it() -> None:
    # Long entry 100, stop 2% below: candle O100 H101 L94 C94.
    exit_ = protective_exit(LONG, 98.0, None, 100.0, 101.0, 94.0)
    assert exit_ is not None
    price, reason = exit_
    assert price == 98.0
    assert reason == "stop_loss"
    assert (price - 100.0) / 100.0 == pytest.approx(-0.02)


def test_stop_triggers_on_wick_although_close_above() -> None:
    # Candle O100 H101 L97 C99: the low reaches the stop at 98 although the close is above it.
    assert protective_exit(LONG, 98.0, None, 100.0, 101.0, 97.0) == (98.0, "stop_loss")


def test_stop_wins_when_both_levels_inside_candle() -> None:
    # Long entry 1.00, TP 1.10, SL 0.90, candle O1.00 H1.15 L0.85 C1.05.
    exit_ = protective_exit(LONG, 0.90, 1.10, 1.00, 1.15, 0.85)
    assert exit_ is not None
    price, reason = exit_
    assert price == 0.90
    assert reason == "stop_loss"
    assert (price - 1.00) / 1.00 == pytest.approx(-0.10)


def test_long_stop_gapped_through_fills_at_open() -> None:
    # Long 1 unit at 100, SL 97.5, next candle O85 H88 L84 C87: exit 85, PnL -15.
    exit_ = protective_exit(LONG, 97.5, None, 85.0, 88.0, 84.0)
    assert exit_ is not None
    price, reason = exit_
    assert price == 85.0
    assert reason == "stop_loss"
    assert 1.0 * (price - 100.0) == -15.0


def test_short_stop_gapped_through_fills_at_open() -> None:
    # Mirror: short 1 unit at 100, SL 102.5, candle O115 H116 L112: exit max(115, 102.5).
    exit_ = protective_exit(SHORT, 102.5, None, 115.0, 116.0, 112.0)
    assert exit_ == (115.0, "stop_loss")


def test_short_stop_inside_candle_fills_at_stop() -> None:
    assert protective_exit(SHORT, 102.5, None, 100.0, 103.0, 99.0) == (102.5, "stop_loss")


def test_take_profit_gapped_favourably_fills_at_open() -> None:
    assert protective_exit(LONG, None, 110.0, 112.0, 115.0, 111.0) == (112.0, "take_profit")


def test_take_profit_inside_candle_fills_at_limit() -> None:
    assert protective_exit(LONG, 95.0, 110.0, 105.0, 111.0, 104.0) == (110.0, "take_profit")


def test_short_take_profit_fills_at_limit() -> None:
    assert protective_exit(SHORT, 105.0, 90.0, 95.0, 96.0, 89.0) == (90.0, "take_profit")


def test_favourable_gap_beats_stop_inside_candle() -> None:
    # The open is already beyond the target, so the limit fills there before any later low.
    assert protective_exit(LONG, 98.0, 110.0, 112.0, 113.0, 97.0) == (112.0, "take_profit")


def test_stop_above_market_fills_at_open() -> None:
    # A long's stop left at 1.20 above the market: candle O1.17 H1.18 L1.15 C1.16.
    assert protective_exit(LONG, 1.20, None, 1.17, 1.18, 1.15) == (1.17, "stop_loss")


def test_stop_below_low_does_not_trigger() -> None:
    assert protective_exit(LONG, 1.14, None, 1.17, 1.18, 1.15) is None


def test_no_levels_no_exit() -> None:
    assert protective_exit(LONG, None, None, 100.0, 120.0, 80.0) is None


def test_stop_slippage_uses_fixed_bps_only() -> None:
    # 10 bps below the stop of 98: 98 * 0.999 = 97.902, inside [94, 101].
    exit_ = protective_exit(LONG, 98.0, None, 100.0, 101.0, 94.0, stop_slippage_bps=10.0)
    assert exit_ is not None
    assert exit_[0] == pytest.approx(97.902)


def test_stop_slippage_clamped_to_low() -> None:
    # 98 * 0.99 = 97.02 would lie below the low of 97.5: the fill is the low.
    exit_ = protective_exit(LONG, 98.0, None, 100.0, 101.0, 97.5, stop_slippage_bps=100.0)
    assert exit_ == (97.5, "stop_loss")


def test_slippage_formula_worked_example() -> None:
    # Buy 50 at 100 on candle H102 L98 V1000, 1 bps, 2% of range, impact 0.1:
    # 0.01 + 0.02 * 4 + 0.1 * 0.05 * 4 = 0.11.
    offset = slippage(100.0, 1, 102.0, 98.0, 50.0, 1000.0, 1.0, 0.02, 0.1)
    assert offset == pytest.approx(0.11)


def test_slippage_sell_is_negative() -> None:
    offset = slippage(100.0, -1, 102.0, 98.0, 50.0, 1000.0, 1.0, 0.02, 0.1)
    assert offset == pytest.approx(-0.11)


def test_slippage_participation_capped_at_one() -> None:
    # Quantity 5000 over volume 1000 counts as 1: 0.1 * 1 * 4 = 0.4.
    assert slippage(100.0, 1, 102.0, 98.0, 5000.0, 1000.0, 0.0, 0.0, 0.1) == pytest.approx(0.4)


def test_slippage_zero_volume_counts_as_full_participation() -> None:
    assert slippage(100.0, 1, 102.0, 98.0, 1.0, 0.0, 0.0, 0.0, 0.1) == pytest.approx(0.4)


def test_market_fill_price_moves_against_buyer() -> None:
    price = market_fill_price(100.0, 102.0, 98.0, 1, 50.0, 1000.0, 1.0, 0.02, 0.1)
    assert price == pytest.approx(100.11)


def test_market_fill_price_clamped_to_high() -> None:
    # Offset 100 * 0.05 = 5 would buy at 105, above the high of 102.
    assert market_fill_price(100.0, 102.0, 98.0, 1, 1.0, 10.0, 500.0, 0.0, 0.0) == 102.0


def test_market_fill_price_clamped_to_low_for_sell() -> None:
    assert market_fill_price(100.0, 102.0, 98.0, -1, 1.0, 10.0, 500.0, 0.0, 0.0) == 98.0


def test_buy_limit_fills_at_limit_when_touched() -> None:
    assert limit_fill_price(1, 95.0, 100.0, 101.0, 94.0) == 95.0


def test_buy_limit_fills_at_open_below_limit() -> None:
    assert limit_fill_price(1, 95.0, 93.0, 94.0, 92.0) == 93.0


def test_buy_limit_not_touched() -> None:
    assert limit_fill_price(1, 95.0, 100.0, 101.0, 96.0) is None


def test_buy_stop_fills_at_trigger_or_gapped_open() -> None:
    assert stop_fill_price(1, 105.0, 100.0, 106.0, 99.0) == 105.0
    assert stop_fill_price(1, 105.0, 107.0, 108.0, 106.0) == 107.0
    assert stop_fill_price(1, 105.0, 100.0, 104.0, 99.0) is None


def test_liquidation_fill_price_long() -> None:
    assert liquidation_fill_price(LONG, 90.0, 95.0, 96.0, 89.0) == 90.0
    assert liquidation_fill_price(LONG, 90.0, 85.0, 86.0, 84.0) == 85.0
    assert liquidation_fill_price(LONG, 90.0, 95.0, 96.0, 91.0) is None


def test_liquidation_fill_price_short() -> None:
    assert liquidation_fill_price(SHORT, 110.0, 105.0, 111.0, 104.0) == 110.0
    assert liquidation_fill_price(SHORT, 110.0, 115.0, 116.0, 114.0) == 115.0


def test_liquidation_first_without_stop() -> None:
    assert liquidation_comes_first(LONG, 90.0, None, None, 95.0)


def test_liquidation_first_when_stop_beyond_it() -> None:
    # A long's stop at 85 lies below the liquidation price of 90: liquidation comes first.
    assert liquidation_comes_first(LONG, 90.0, 85.0, None, 95.0)


def test_stop_first_when_between_open_and_liquidation() -> None:
    assert not liquidation_comes_first(LONG, 90.0, 93.0, None, 95.0)
    assert not liquidation_comes_first(SHORT, 110.0, 106.0, None, 105.0)


def test_liquidation_first_when_opened_beyond_it() -> None:
    assert liquidation_comes_first(LONG, 90.0, 93.0, None, 88.0)
    assert liquidation_comes_first(SHORT, 110.0, 106.0, None, 112.0)


def test_take_profit_gap_beats_liquidation() -> None:
    assert not liquidation_comes_first(LONG, 90.0, None, 105.0, 106.0)


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def candles(draw: st.DrawFn) -> tuple[float, float, float]:
    low = draw(prices)
    high = draw(st.floats(min_value=low, max_value=low * 2))
    open_ = draw(st.floats(min_value=low, max_value=high))
    return open_, high, low


@given(
    candle=candles(),
    stop=st.one_of(st.none(), prices),
    take_profit=st.one_of(st.none(), prices),
    side=st.sampled_from([LONG, SHORT]),
    bps=st.floats(min_value=0.0, max_value=500.0),
)
def test_protective_exit_within_candle(
    candle: tuple[float, float, float],
    stop: float | None,
    take_profit: float | None,
    side: PositionSide,
    bps: float,
) -> None:
    open_, high, low = candle
    exit_ = protective_exit(side, stop, take_profit, open_, high, low, bps)
    if exit_ is not None:
        assert low <= exit_[0] <= high


@given(
    candle=candles(),
    sign=st.sampled_from([1, -1]),
    quantity=st.floats(min_value=0.0, max_value=1e6),
    volume=st.floats(min_value=0.0, max_value=1e6),
    bps=st.floats(min_value=0.0, max_value=500.0),
    share=st.floats(min_value=0.0, max_value=1.0),
    impact=st.floats(min_value=0.0, max_value=10.0),
)
def test_market_fill_within_candle(
    candle: tuple[float, float, float],
    sign: int,
    quantity: float,
    volume: float,
    bps: float,
    share: float,
    impact: float,
) -> None:
    open_, high, low = candle
    price = market_fill_price(open_, high, low, sign, quantity, volume, bps, share, impact)
    assert low <= price <= high


@given(candle=candles(), level=prices, sign=st.sampled_from([1, -1]))
def test_limit_and_stop_fills_within_candle(
    candle: tuple[float, float, float], level: float, sign: int
) -> None:
    open_, high, low = candle
    for price in (
        limit_fill_price(sign, level, open_, high, low),
        stop_fill_price(sign, level, open_, high, low, 5.0),
    ):
        if price is not None:
            assert low <= price <= high
