"""OpportunityRanker: weights, each factor's formula, the score, the top-N cut and the modes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from quantum_trader.engine.decisions import Action
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.market_stats import compute_market_stats, snapshot
from quantum_trader.subsystems.opportunity_ranker import (
    FactorWeights,
    OpportunityRanker,
    RankerSettings,
    RankInput,
)

T0 = 1_726_272_000 * 1_000_000_000
TANH_1 = 0.7615941559557649  # tanh(1)


def candidate(symbol: str = "SOL/USDT", **changes: object) -> RankInput:
    """With the default settings every factor of this candidate is easy to compute by hand:
    trend 1.5 / 3 = 0.5; volatility quality 0.0025 / 0.005 = 0.5; liquidity
    log(1e8 / 1e6) / log(1e10 / 1e6) = 2 / 4 = 0.5; regime fit 0.4; recent results 0.5 (no
    trades); cost 1 - 0.001 / 0.0025 = 0.6."""
    base = RankInput(
        symbol=symbol,
        trend_strength=1.5,
        trend_direction=1,
        atr_ratio=0.0025,
        quote_volume=1e8,
        efficiency=0.4,
        round_trip_cost=0.001,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def make_ranker(**changes: object) -> OpportunityRanker:
    return OpportunityRanker(RankerSettings(**changes))


def test_weights_not_summing_to_one_are_rejected() -> None:
    # 0.5 + 0.15 + 0.15 + 0.2 + 0.1 + 0.15 = 1.25.
    with pytest.raises(ValidationError, match=r"trend=0\.5, .* sum to 1\.25"):
        FactorWeights(trend=0.5)


def test_negative_weight_is_rejected() -> None:
    # 0.55 + 0.15 + 0.15 + 0.2 + 0.1 - 0.15 = 1, so only the sign is wrong.
    with pytest.raises(ValidationError, match="cost"):
        FactorWeights(trend=0.55, cost=-0.15)


def test_default_weights_sum_to_one() -> None:
    assert math.fsum(FactorWeights().as_dict().values()) == pytest.approx(1.0, abs=1e-12)


def test_weights_within_tolerance_are_accepted() -> None:
    weights = FactorWeights(trend=0.25 + 5e-10)
    assert weights.trend == 0.25 + 5e-10


def test_liquidity_bounds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="liquidity_floor"):
        RankerSettings(liquidity_floor=1e9, liquidity_full=1e9)


def test_hand_computed_factors_and_score() -> None:
    ranker = make_ranker()
    ranking = ranker.rank(T0, [candidate()])
    factors = ranking.factors["SOL/USDT"]
    assert factors["trend"] == pytest.approx(0.5)
    assert factors["volatility_quality"] == pytest.approx(0.5)
    assert factors["liquidity"] == pytest.approx(0.5)
    assert factors["regime_fit"] == pytest.approx(0.4)
    assert factors["recent_results"] == pytest.approx(0.5)
    assert factors["cost"] == pytest.approx(0.6)
    # 0.25x0.5 + 0.15x0.5 + 0.15x0.5 + 0.2x0.4 + 0.1x0.5 + 0.15x0.6
    # = 0.125 + 0.075 + 0.075 + 0.08 + 0.05 + 0.09 = 0.495.
    assert ranking.scores["SOL/USDT"] == pytest.approx(0.495)


def test_trend_factor_caps_at_one() -> None:
    assert make_ranker().factors(candidate(trend_strength=6.0))["trend"] == 1.0


def test_trend_against_side_scores_zero() -> None:
    ranker = make_ranker()
    assert ranker.factors(candidate(side=-1))["trend"] == 0.0
    assert ranker.factors(candidate(side=1))["trend"] == pytest.approx(0.5)


def test_mean_reversion_prefers_weak_trend_and_range() -> None:
    # Strength 0.75 / 3 = 0.25, so the trend factor is 1 - 0.25 = 0.75. Regime fit is 1 - 0.4.
    factors = make_ranker().factors(candidate(trend_strength=0.75, side=-1, style="mean_reversion"))
    assert factors["trend"] == pytest.approx(0.75)
    assert factors["regime_fit"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("atr_ratio", "expected"),
    [
        (0.005, 1.0),  # at the target
        (0.00125, 0.25),  # 0.00125 / 0.005
        (0.0075, 0.75),  # (0.015 - 0.0075) / 0.01
        (0.01, 0.5),  # (0.015 - 0.01) / 0.01
        (0.015, 0.0),  # 3x the target
        (0.03, 0.0),
        (0.0, 0.0),
    ],
)
def test_volatility_quality_triangle(atr_ratio: float, expected: float) -> None:
    factors = make_ranker().factors(candidate(atr_ratio=atr_ratio))
    assert factors["volatility_quality"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("volume", "expected"),
    [(1e6, 0.0), (1e5, 0.0), (1e7, 0.25), (1e10, 1.0), (1e12, 1.0), (0.0, 0.0)],
)
def test_liquidity_is_log_scaled(volume: float, expected: float) -> None:
    # log10 between 6 and 10: 1e7 is 1/4 of the way.
    assert make_ranker().factors(candidate(quote_volume=volume))["liquidity"] == pytest.approx(
        expected
    )


def test_recent_results_use_last_trades() -> None:
    # The last two of [-0.5, 0.02, 0.02] average 0.02 = pnl_scale: 0.5 + 0.5 x tanh(1) = 0.8808.
    ranker = make_ranker(recent_trades=2)
    for pnl_ratio in (-0.5, 0.02, 0.02):
        ranker.on_trade_closed("SOL/USDT", pnl_ratio)
    factors = ranker.factors(candidate())
    assert factors["recent_results"] == pytest.approx(0.5 + 0.5 * TANH_1)
    assert ranker.factors(candidate("ETH/USDT"))["recent_results"] == 0.5


def test_losing_trades_lower_recent_results() -> None:
    ranker = make_ranker()
    ranker.on_trade_closed("SOL/USDT", -0.02)
    ranker.on_trade_closed("SOL/USDT", math.nan)
    assert ranker.factors(candidate())["recent_results"] == pytest.approx(0.5 - 0.5 * TANH_1)


def test_cost_as_large_as_atr_scores_zero() -> None:
    ranker = make_ranker()
    assert ranker.factors(candidate(round_trip_cost=0.0025))["cost"] == 0.0
    assert ranker.factors(candidate(round_trip_cost=0.01))["cost"] == 0.0
    assert ranker.factors(candidate(round_trip_cost=0.0))["cost"] == 1.0


def test_nan_inputs_score_zero_without_raising() -> None:
    bad = candidate(
        trend_strength=math.nan,
        atr_ratio=math.nan,
        quote_volume=None,
        efficiency=math.inf,
        round_trip_cost=math.nan,
    )
    ranking = make_ranker().rank(T0, [bad])
    factors = ranking.factors["SOL/USDT"]
    assert factors["trend"] == 0.0
    assert factors["volatility_quality"] == 0.0
    assert factors["liquidity"] == 0.0
    assert factors["regime_fit"] == 0.0
    assert factors["cost"] == 0.0
    # Only recent results (0.5, weight 0.1) remain: 0.05.
    assert ranking.scores["SOL/USDT"] == pytest.approx(0.05)


@example(strength=0.0, atr_ratio=0.0, volume=5e-324, efficiency=0.0, cost=0.0)
@given(
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
)
def test_score_always_in_unit_interval(
    strength: float, atr_ratio: float, volume: float, efficiency: float, cost: float
) -> None:
    item = candidate(
        trend_strength=strength,
        atr_ratio=atr_ratio,
        quote_volume=volume,
        efficiency=efficiency,
        round_trip_cost=cost,
    )
    score = make_ranker().rank(T0, [item]).scores["SOL/USDT"]
    assert 0.0 <= score <= 1.0


def synthetic_candles(drift: float, noise: float, volume: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = 600
    if drift:
        close = 100.0 * np.exp(drift * np.arange(rows) + rng.normal(0.0, noise, rows))
    else:
        close = 100.0 * (1.0 + rng.normal(0.0, noise, rows))
    return pd.DataFrame(
        {
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
            "volume": np.full(rows, volume),
        }
    )


def candidate_from_candles(symbol: str, candles: pd.DataFrame) -> RankInput:
    stats = compute_market_stats(candles, 288)
    shot = snapshot(stats, len(stats) - 1, symbol, 0.01)
    return RankInput.from_snapshot(shot, round_trip_cost=0.002, side=1)


def test_clean_trend_beats_noise_and_illiquid() -> None:
    # TREND rises 0.1% a candle with 0.05% noise and trades 1000 units a candle, about 4.6e7
    # quote over 288 candles. NOISE is flat with 0.2% noise and the same volume. THIN is TREND
    # with 0.01 units a candle, about 460 quote, below the liquidity floor of 1e6.
    trend = candidate_from_candles("TREND", synthetic_candles(0.001, 0.0005, 1000.0, 1))
    noise = candidate_from_candles("NOISE", synthetic_candles(0.0, 0.002, 1000.0, 2))
    thin = candidate_from_candles("THIN", synthetic_candles(0.001, 0.0005, 0.01, 1))
    ranking = make_ranker().rank(T0, [noise, thin, trend])
    assert ranking.scores["TREND"] > ranking.scores["NOISE"]
    assert ranking.scores["TREND"] > ranking.scores["THIN"]
    assert ranking.factors["TREND"]["regime_fit"] > ranking.factors["NOISE"]["regime_fit"]
    assert ranking.factors["THIN"]["liquidity"] == 0.0
    assert ranking.order[0] == "TREND"


def test_top_n_cut_and_veto() -> None:
    ranker = make_ranker(top_n=2)
    strengths = {"A": 0.3, "B": 2.7, "C": 1.5, "D": 0.9}
    ranking = ranker.rank(T0, [candidate(s, trend_strength=v) for s, v in strengths.items()])
    assert ranking.order == ["B", "C", "D", "A"]
    assert ranking.top == ["B", "C"]
    assert ranking.binding
    assert ranker.seen == 4
    assert ranker.changed == 2

    assert ranker.allows("B", T0)
    assert not ranker.allows("D", T0)
    assert not ranker.allows("Z", T0)
    assert ranker.vetoed == 2
    approve, veto, unknown = ranker.log.decisions
    assert approve.action is Action.APPROVE
    assert "rank 1 of 4" in approve.reason
    assert veto.action is Action.VETO
    assert "entry vetoed: rank 3 of 4" in veto.reason
    assert veto.numbers["rank"] == 3.0
    assert veto.numbers["trend"] == pytest.approx(0.3)
    assert "not in the last ranking" in unknown.reason


def test_ties_broken_by_symbol() -> None:
    ranking = make_ranker(top_n=1).rank(T0, [candidate("B"), candidate("A")])
    assert ranking.scores["A"] == ranking.scores["B"]
    assert ranking.order == ["A", "B"]
    assert ranking.top == ["A"]


def test_duplicate_input_is_scored_once() -> None:
    ranker = make_ranker()
    ranking = ranker.rank(T0, [candidate("A"), candidate("A", trend_strength=3.0)])
    assert ranker.seen == 1
    assert ranking.factors["A"]["trend"] == pytest.approx(0.5)


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_non_enforced_mode_never_vetoes(mode: Mode) -> None:
    ranker = make_ranker(mode=mode, top_n=1)
    ranking = ranker.rank(T0, [candidate("A"), candidate("B"), candidate("C")])
    assert not ranking.binding
    assert ranking.top == ["A"]
    assert ranker.allows("B", T0)
    assert ranker.allows("C", T0)
    assert ranker.allows("Z", T0)
    assert ranker.vetoed == 0
    assert ranker.changed == 0
    assert all(d.action is Action.APPROVE for d in ranker.log.decisions)
    assert f"[{mode}] not enforced, would veto: rank 2 of 3" in ranker.log.decisions[0].reason


def test_off_mode_allows_without_record() -> None:
    ranker = make_ranker(mode=Mode.OFF)
    assert ranker.allows("A", T0)
    assert ranker.log.decisions == []


def test_from_snapshot_copies_statistics() -> None:
    stats = compute_market_stats(synthetic_candles(0.001, 0.0005, 1000.0, 1), 288)
    shot = snapshot(stats, 599, "SOL/USDT", 0.01)
    item = RankInput.from_snapshot(shot, round_trip_cost=0.002, side=-1, style="mean_reversion")
    assert item.symbol == "SOL/USDT"
    assert item.trend_strength == shot.trend_strength
    assert item.trend_direction == shot.trend_direction
    assert item.atr_ratio == shot.atr_ratio
    assert item.quote_volume == shot.quote_volume
    assert item.efficiency == shot.efficiency
    assert item.round_trip_cost == 0.002
    assert item.side == -1
    assert item.style == "mean_reversion"


def test_due_every_cadence_rows() -> None:
    ranker = make_ranker(cadence=4)
    assert ranker.due(0)
    assert not ranker.due(3)
    assert ranker.due(8)
