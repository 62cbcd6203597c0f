"""Trading Mathematician: volatility and Kelly sizing, liquidation margin, modes and counters."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import ExitReason, MarketType, PositionSide, Trade
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.sizing import (
    SizingDecision,
    SizingRejection,
    SizingResult,
    TradingMathematician,
)
from quantum_trader.subsystems.sizing_methods import estimate_kelly, full_kelly

SPOT = MarketType.SPOT
FUTURES = MarketType.FUTURES
LONG = PositionSide.LONG
SHORT = PositionSide.SHORT
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def make_rules(market_type: MarketType = SPOT, step: float = 0.001) -> MarketRules:
    return MarketRules(
        symbol="BTC/USDT",
        market_type=market_type,
        tick_size=0.01,
        step_size=step,
        min_notional=5.0,
        min_quantity=0.0,
        maker_fee=0.001,
        taker_fee=0.001,
        max_leverage=20.0,
    )


def make_trade(pnl_ratio: float) -> Trade:
    return Trade(
        symbol="BTC/USDT",
        side=LONG,
        entry_time=T0,
        entry_price=100.0,
        exit_time=T0 + pd.Timedelta(hours=1),
        exit_price=100.0 * (1.0 + pnl_ratio),
        quantity=1.0,
        fees=0.0,
        funding=0.0,
        pnl=100.0 * pnl_ratio,
        pnl_ratio=pnl_ratio,
        leverage=1.0,
        exit_reason=ExitReason.EXIT_SIGNAL,
    )


def edge_trades(wins: int = 22, losses: int = 18) -> list[Trade]:
    """22 wins of +3% and 18 losses of -2%: p = 22 / 40 = 0.55 and b = 0.03 / 0.02 = 1.5."""
    return [make_trade(0.03)] * wins + [make_trade(-0.02)] * losses


def make_sizer(
    market_type: MarketType = SPOT,
    maintenance: float = 0.005,
    mode: Mode = Mode.ENFORCED,
    log: DecisionLog | None = None,
    **risk: Any,
) -> TradingMathematician:
    risk.setdefault("max_position_share", 1.0)
    return TradingMathematician(RiskSettings(**risk), maintenance, market_type, mode=mode, log=log)


def size_long(sizer: TradingMathematician, **keywords: Any) -> SizingResult:
    """Price 1000, ATR 10 (stop 2 x 10 = 20), equity 10000, cash 100000."""
    return sizer.size(
        "BTC/USDT", LONG, 1_000.0, 10.0, 10_000.0, 100_000.0, make_rules(), **keywords
    )


def approved(result: SizingResult) -> SizingDecision:
    assert isinstance(result, SizingDecision), result
    return result


def rejected(result: SizingResult) -> SizingRejection:
    assert isinstance(result, SizingRejection), result
    return result


# Kelly: f* = p - (1 - p) / b = 0.55 - 0.45 / 1.5 = 0.25; a quarter of it is 0.0625.


def test_kelly_estimate_from_trades() -> None:
    estimate = estimate_kelly(edge_trades(), window=100)
    assert estimate.trades == 40
    assert estimate.win_rate == pytest.approx(0.55)
    assert estimate.payoff_ratio == pytest.approx(1.5)
    assert estimate.full_kelly == pytest.approx(0.25)


def test_full_kelly_formula() -> None:
    assert full_kelly(0.55, 1.5) == pytest.approx(0.25)
    assert full_kelly(0.5, 1.0) == 0.0
    assert full_kelly(0.6, math.inf) == 0.6


def test_kelly_capped_at_max_kelly_risk() -> None:
    # min(0.25 x 0.25, 0.02) = 0.02: risk 200 over stop 20 = 10 units.
    sizer = make_sizer(sizing="kelly", max_kelly_risk=0.02)
    result = approved(size_long(sizer, recent_trades=edge_trades()))
    assert result.risk_share == pytest.approx(0.02)
    assert result.risk_amount == pytest.approx(200.0)
    assert result.quantity == 10.0
    assert "capped at max_kelly_risk 2.00%" in result.reason


def test_kelly_fraction_below_cap() -> None:
    # 0.1 x 0.25 = 0.025 < 0.05: risk 250 over a 10% stop of 100 = 2.5 units.
    sizer = make_sizer(sizing="kelly", kelly_fraction=0.1, max_kelly_risk=0.05)
    result = approved(size_long(sizer, recent_trades=edge_trades(), stop_pct=0.1))
    assert result.risk_share == pytest.approx(0.025)
    assert result.quantity == 2.5
    assert "capped" not in result.reason


def test_kelly_default_quarter_kelly() -> None:
    # Quarter Kelly 0.0625 with a cap of 0.05: risk 500 over a 10% stop of 100 = 5 units.
    sizer = make_sizer(sizing="kelly", max_kelly_risk=0.05)
    result = approved(size_long(sizer, recent_trades=edge_trades(), stop_pct=0.1))
    assert result.risk_share == pytest.approx(0.05)
    assert result.quantity == 5.0


def test_kelly_before_min_trades_fixed_fraction() -> None:
    # 29 trades < 30: risk_per_trade 1% of 10000 = 100 over stop 20 = 5 units.
    sizer = make_sizer(sizing="kelly", max_kelly_risk=0.02)
    result = approved(size_long(sizer, recent_trades=edge_trades(wins=22, losses=7)))
    assert result.risk_share == pytest.approx(0.01)
    assert result.quantity == 5.0
    assert "Kelly needs 30 closed trades and has 29" in result.reason


def test_kelly_without_trades_fixed_fraction() -> None:
    sizer = make_sizer(sizing="kelly")
    result = approved(size_long(sizer))
    assert result.quantity == 5.0
    assert "has 0" in result.reason


def test_kelly_without_edge_rejected() -> None:
    # 16 wins of +2% and 24 losses of -2%: p = 0.4, b = 1, f* = 0.4 - 0.6 = -0.2.
    sizer = make_sizer(sizing="kelly")
    trades = [make_trade(0.02)] * 16 + [make_trade(-0.02)] * 24
    result = rejected(size_long(sizer, recent_trades=trades))
    assert result.reason.startswith("no edge")
    assert result.numbers["full_kelly"] == pytest.approx(-0.2)
    assert result.numbers["win_rate"] == pytest.approx(0.4)


def test_kelly_without_wins_rejected() -> None:
    sizer = make_sizer(sizing="kelly")
    result = rejected(size_long(sizer, recent_trades=[make_trade(-0.01)] * 30))
    assert result.reason.startswith("no edge")


def test_kelly_reads_only_window() -> None:
    # Ten old losers fall outside the window of 40, so the estimate is the 0.55 / 1.5 one.
    sizer = make_sizer(sizing="kelly", kelly_window=40, max_kelly_risk=0.02)
    trades = [make_trade(-0.5)] * 10 + edge_trades()
    result = approved(size_long(sizer, recent_trades=trades))
    assert result.risk_share == pytest.approx(0.02)


def test_kelly_skips_nonfinite_pnl() -> None:
    estimate = estimate_kelly([make_trade(math.nan), *edge_trades()], window=100)
    assert estimate.trades == 40
    assert estimate.full_kelly == pytest.approx(0.25)


def test_kelly_all_winners_uses_win_rate() -> None:
    # With no loss b is infinite and f* = p = 1; 0.25 x 1 = 0.25 is capped at 0.01.
    estimate = estimate_kelly([make_trade(0.01)] * 30, window=100)
    assert estimate.full_kelly == 1.0
    sizer = make_sizer(sizing="kelly")
    result = approved(size_long(sizer, recent_trades=[make_trade(0.01)] * 30))
    assert result.risk_share == pytest.approx(0.01)


def test_kelly_risk_scale_applies_after_cap() -> None:
    # min(0.0625, 0.02) x 0.5 = 0.01: risk 100 over stop 20 = 5 units.
    sizer = make_sizer(sizing="kelly", max_kelly_risk=0.02)
    result = approved(size_long(sizer, recent_trades=edge_trades(), risk_scale=0.5))
    assert result.risk_share == pytest.approx(0.01)
    assert result.quantity == 5.0


def test_kelly_min_trades_above_window_invalid() -> None:
    with pytest.raises(ValueError, match="kelly_min_trades=50 is above"):
        RiskSettings(sizing="kelly", kelly_window=40, kelly_min_trades=50)


# Volatility sizing: share = risk_per_trade x clip(target / realised, 0.25, 1.5).


def test_volatility_double_target_halves_risk() -> None:
    # 0.005 / 0.01 = 0.5: share 0.5%, risk 50 over stop 20 = 2.5 units.
    sizer = make_sizer(sizing="volatility", target_volatility=0.005)
    result = approved(size_long(sizer, volatility=0.01))
    assert result.risk_share == pytest.approx(0.005)
    assert result.risk_amount == pytest.approx(50.0)
    assert result.quantity == 2.5


def test_volatility_scale_capped() -> None:
    # 0.005 / 0.001 = 5 is capped at 1.5: share 1.5%, risk 150 over stop 20 = 7.5 units.
    sizer = make_sizer(sizing="volatility", target_volatility=0.005)
    result = approved(size_long(sizer, volatility=0.001))
    assert result.risk_share == pytest.approx(0.015)
    assert result.quantity == 7.5


def test_volatility_scale_floored() -> None:
    # 0.005 / 0.1 = 0.05 is raised to the floor 0.25: share 0.25%, risk 25 = 1.25 units.
    sizer = make_sizer(sizing="volatility", target_volatility=0.005)
    result = approved(size_long(sizer, volatility=0.1))
    assert result.risk_share == pytest.approx(0.0025)
    assert result.quantity == 1.25


@pytest.mark.parametrize("volatility", [None, math.nan, 0.0, -0.01, math.inf])
def test_volatility_unknown_uses_fixed_fraction(volatility: float | None) -> None:
    sizer = make_sizer(sizing="volatility")
    result = approved(size_long(sizer, volatility=volatility))
    assert result.risk_share == pytest.approx(0.01)
    assert result.quantity == 5.0
    assert "unknown" in result.reason


def test_volatility_ignored_by_risk_sizing() -> None:
    result = approved(size_long(make_sizer(), volatility=0.1))
    assert result.risk_share == pytest.approx(0.01)


# Leverage against the liquidation formulas long P = E (1 - 1/L) / (1 - m) and
# short P = E (1 + 1/L) / (1 + m).


def test_liquidation_at_stop_lowers_leverage() -> None:
    # m = 0.2, 2x long at 100: P = 100 x 0.5 / 0.8 = 62.5, exactly the stop of a 37.5% stop.
    # A liquidation at the stop is not beyond it, even with buffer 0, so the leverage is 1x.
    sizer = make_sizer(FUTURES, maintenance=0.2, leverage=2.0, liquidation_buffer=0.0)
    rules = make_rules(FUTURES)
    result = approved(sizer.size("BTC/USDT", LONG, 100.0, 1.0, 1e4, 1e4, rules, stop_pct=0.375))
    assert result.leverage == 1.0


def test_short_leverage_lowered_to_clear_buffer() -> None:
    # m = 0.1, stop 8% of 100, buffer 0.5: P must be >= 100 + 8 x 1.5 = 112.
    # 5x: 100 x 1.2 / 1.1 = 109.09 (too close); 4x: 100 x 1.25 / 1.1 = 113.64 clears it.
    sizer = make_sizer(FUTURES, maintenance=0.1, leverage=5.0, max_leverage=5.0)
    rules = make_rules(FUTURES)
    result = approved(sizer.size("BTC/USDT", SHORT, 100.0, 1.0, 1e4, 1e4, rules, stop_pct=0.08))
    assert result.leverage == 4.0
    assert "leverage lowered from 5x to 4x" in result.reason


# The subsystem: modes, counters and the decision log.


def test_subsystem_names_and_default_mode() -> None:
    sizer = TradingMathematician(RiskSettings(), 0.005, SPOT)
    assert sizer.short_name == "Trading Mathematician"
    assert sizer.mode is Mode.ENFORCED
    assert sizer.cadence == 1


@pytest.mark.parametrize("mode", [Mode.OFF, Mode.OBSERVE])
def test_off_or_observe_mode_rejected(mode: Mode) -> None:
    with pytest.raises(ConfigurationError, match="every order needs a size"):
        make_sizer(mode=mode)


def test_counters_and_log_when_enforced() -> None:
    log = DecisionLog()
    sizer = make_sizer(log=log, max_position_share=0.25)
    plain = approved(size_long(sizer, time_ns=1))  # 5 units = 5000 > cap 2500: resized
    assert plain.quantity == 2.5
    small = approved(size_long(sizer, stop_pct=0.1, time_ns=2))  # 100 / 100 = 1 unit: fits
    assert small.quantity == 1.0
    rejected(sizer.size("BTC/USDT", LONG, math.nan, 10.0, 1e4, 1e4, make_rules(), time_ns=3))
    assert sizer.counters() == {"seen": 3, "changed": 1, "vetoed": 1}
    actions = [decision.action for decision in log.decisions]
    assert actions == [Action.RESIZE, Action.APPROVE, Action.REJECT]
    assert log.decisions[0].subsystem == "Trading Mathematician"
    assert log.decisions[0].time_ns == 1
    assert log.decisions[0].numbers["quantity"] == 2.5
    assert sizer.last_heartbeat is not None


def test_advisory_results_not_binding() -> None:
    sizer = make_sizer(mode=Mode.ADVISORY, max_position_share=0.25)
    result = approved(size_long(sizer))
    assert result.binding is False
    assert result.quantity == 2.5
    rejection = rejected(sizer.size("BTC/USDT", LONG, 0.0, 10.0, 1e4, 1e4, make_rules(), time_ns=3))
    assert rejection.binding is False
    assert sizer.counters() == {"seen": 2, "changed": 0, "vetoed": 0}
    assert sizer.log.decisions[0].reason.startswith("[advisory] approved")


# Property tests over every sizing method, with random trades and volatility.

_METHODS = st.sampled_from(["risk", "stake", "volatility", "kelly"])


@st.composite
def full_cases(draw: st.DrawFn) -> dict[str, Any]:
    market_type = draw(st.sampled_from([SPOT, FUTURES]))
    max_leverage = draw(st.floats(1.0, 20.0))
    risk = RiskSettings(
        sizing=draw(_METHODS),
        stake_amount=draw(st.floats(1.0, 1e5)),
        risk_per_trade=draw(st.floats(0.001, 0.05)),
        max_position_share=draw(st.floats(0.05, 1.0)),
        leverage=draw(st.floats(1.0, max_leverage)),
        max_leverage=max_leverage,
        liquidation_buffer=draw(st.floats(0.0, 2.0)),
        target_volatility=draw(st.floats(0.001, 0.05)),
        kelly_fraction=draw(st.floats(0.05, 1.0)),
        kelly_min_trades=draw(st.integers(2, 20)),
        kelly_window=40,
        max_kelly_risk=draw(st.floats(0.001, 0.05)),
    )
    price = draw(st.floats(0.001, 1e6))
    count = draw(st.integers(0, 40))
    wins = draw(st.integers(0, count))
    win, loss = draw(st.floats(0.001, 0.1)), draw(st.floats(0.001, 0.1))
    return {
        "risk": risk,
        "market_type": market_type,
        "maintenance": draw(st.floats(0.001, 0.2)),
        "side": draw(st.sampled_from([LONG, SHORT] if market_type is FUTURES else [LONG])),
        "price": price,
        "atr": price * draw(st.floats(0.0005, 0.1)),
        "equity": draw(st.floats(10.0, 1e8)),
        "cash_share": draw(st.floats(0.0, 2.0)),
        "risk_scale": draw(st.floats(0.1, 1.5)),
        "volatility": draw(st.one_of(st.none(), st.floats(0.0001, 0.1))),
        "pnl_ratios": [win] * wins + [-loss] * (count - wins),
        "rules": make_rules(market_type, step=draw(st.sampled_from([0.00001, 0.001, 1.0]))),
    }


@settings(max_examples=300, deadline=None)
@given(full_cases())
def test_full_sizing_properties(case: dict[str, Any]) -> None:
    risk: RiskSettings = case["risk"]
    rules: MarketRules = case["rules"]
    price, equity, scale = case["price"], case["equity"], case["risk_scale"]
    trades = [make_trade(ratio) for ratio in case["pnl_ratios"]]
    sizer = TradingMathematician(risk, case["maintenance"], case["market_type"])
    result = sizer.size(
        "X/USDT",
        case["side"],
        price,
        case["atr"],
        equity,
        equity * case["cash_share"],
        rules,
        risk_scale=scale,
        recent_trades=trades,
        volatility=case["volatility"],
    )
    if isinstance(result, SizingRejection):
        return

    futures = case["market_type"] is FUTURES
    tolerance = 1e-9 * max(1.0, result.notional)
    assert result.quantity >= 0
    share_cap = risk.max_position_share * equity * (result.leverage if futures else 1.0)
    assert result.notional <= share_cap + rules.step_size * price + tolerance
    one_step_risk = rules.step_size * result.stop_distance
    assert result.risk_amount <= equity * result.risk_share + one_step_risk + tolerance
    if risk.sizing == "kelly" and len(trades) >= risk.kelly_min_trades:
        assert result.risk_share <= risk.max_kelly_risk * scale * (1 + 1e-12)
    if futures:
        _assert_liquidation_beyond_stop(case, result)


def _assert_liquidation_beyond_stop(case: dict[str, Any], result: SizingDecision) -> None:
    price, m, leverage = case["price"], case["maintenance"], result.leverage
    buffer_distance = case["risk"].liquidation_buffer * result.stop_distance
    if case["side"] is LONG:
        if leverage == 1.0:
            return  # a 1x long is never liquidated
        liquidation = price * (1 - 1 / leverage) / (1 - m)
        stop = price - result.stop_distance
        assert liquidation < stop
        assert stop - liquidation >= buffer_distance * (1 - 1e-9)
    else:
        liquidation = price * (1 + 1 / leverage) / (1 + m)
        stop = price + result.stop_distance
        assert liquidation > stop
        assert liquidation - stop >= buffer_distance * (1 - 1e-9)
