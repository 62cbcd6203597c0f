"""PIL: the R multiple, every class threshold, the recommendations, the record and the modes.

The base position is a long entered at 100 with its initial stop at 98, so 1R = 2 and the
R multiple is (mark - 100) / 2.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from quantum_trader.core.types import PositionSide
from quantum_trader.engine.decisions import Action
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.position_intelligence import (
    PositionAssessment,
    PositionClass,
    PositionIntelligence,
    PositionSettings,
    PositionView,
    Recommendation,
)

T0 = 1_726_272_000 * 1_000_000_000


def view(**changes: object) -> PositionView:
    base = PositionView(
        symbol="BTC/USDT",
        side=PositionSide.LONG,
        entry_price=100.0,
        quantity=1.0,
        stop_price=98.0,
        initial_risk_per_unit=2.0,
        mark=100.0,
        age_candles=10,
        trend=0.0,
        mfe_r=0.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def assess(position: PositionView, **settings: object) -> PositionAssessment:
    pil = PositionIntelligence(PositionSettings(**settings))
    return pil.review(T0, [position])[0]


def test_r_multiple_of_long() -> None:
    # (104 - 100) / 2 = 2.
    assert view(mark=104.0).r_multiple == pytest.approx(2.0)


def test_r_multiple_of_short() -> None:
    # -1 x (97 - 100) / 2 = 1.5.
    short = view(side=PositionSide.SHORT, stop_price=102.0, mark=97.0)
    assert short.r_multiple == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("mark", "trend", "expected"),
    [
        (104.0, 0.0, PositionClass.WINNER),  # R 2
        (103.0, 0.0, PositionClass.WINNER),  # R 1.5, on the threshold
        (102.9, 1.0, PositionClass.POTENTIAL_WINNER),  # R 1.45 with the trend
        (101.0, 1.0, PositionClass.POTENTIAL_WINNER),  # R 0.5 with the trend
        (101.0, 0.0, PositionClass.BREAKEVEN),  # R 0.5 without the trend
        (102.0, -1.0, PositionClass.BREAKEVEN),  # R 1 against the trend, still a profit
        (100.9, 1.0, PositionClass.BREAKEVEN),  # R 0.45, below potential winner
        (100.0, 0.0, PositionClass.BREAKEVEN),  # R 0
        (99.6, 0.0, PositionClass.BREAKEVEN),  # R -0.2, above -0.25
        (99.5, 0.0, PositionClass.STRUGGLING),  # R -0.25, on the threshold
        (98.6, 1.0, PositionClass.STRUGGLING),  # R -0.7 with the trend
        (98.5, 0.0, PositionClass.LOSER),  # R -0.75, on the threshold
        (99.8, -1.0, PositionClass.LOSER),  # R -0.1 against the trend
        (96.0, 1.0, PositionClass.LOSER),  # R -2
    ],
)
def test_class_thresholds(mark: float, trend: float, expected: PositionClass) -> None:
    assert assess(view(mark=mark, trend=trend)).classification is expected


def test_trend_strength_counts_by_sign() -> None:
    # R 0.5 with a trend strength of 0.3 in the position's direction.
    assert assess(view(mark=101.0, trend=0.3)).classification is PositionClass.POTENTIAL_WINNER


def test_nan_trend_counts_as_flat() -> None:
    # R -0.1 with an unknown trend is not against the position.
    assert assess(view(mark=99.8, trend=math.nan)).classification is PositionClass.BREAKEVEN


def test_short_against_uptrend_is_loser() -> None:
    # Short at 100, mark 100.2: R = -1 x 0.2 / 2 = -0.1, and a rising trend opposes a short.
    short = view(side=PositionSide.SHORT, stop_price=102.0, mark=100.2, trend=1.0)
    assert assess(short).classification is PositionClass.LOSER


def test_stale_breakeven_is_struggling() -> None:
    # R 0 and 289 candles old, one more than max_age_candles 288.
    result = assess(view(age_candles=289))
    assert result.classification is PositionClass.STRUGGLING
    assert result.recommendation is Recommendation.REDUCE
    assert result.reduce_share == pytest.approx(0.5)


def test_breakeven_at_max_age_holds() -> None:
    result = assess(view(age_candles=288))
    assert result.classification is PositionClass.BREAKEVEN
    assert result.recommendation is Recommendation.HOLD


def test_old_potential_winner_is_not_stale() -> None:
    # R 1 with the trend stays a potential winner however old.
    result = assess(view(mark=102.0, trend=1.0, age_candles=10_000))
    assert result.classification is PositionClass.POTENTIAL_WINNER


def test_winner_without_trend_tightens_stop() -> None:
    # R 2, flat trend: lock 1R, so the stop goes to 100 + 1 x 2 = 102.
    result = assess(view(mark=104.0))
    assert result.recommendation is Recommendation.TIGHTEN_STOP
    assert result.new_stop == pytest.approx(102.0)
    assert result.reduce_share == 0.0


def test_trend_winner_at_two_r_scales_in() -> None:
    result = assess(view(mark=104.0, trend=1.0))
    assert result.recommendation is Recommendation.SCALE_IN
    assert result.new_stop is None


def test_trend_winner_below_two_r_tightens() -> None:
    # R (103.9 - 100) / 2 = 1.95, below scale_in_r 2.
    result = assess(view(mark=103.9, trend=1.0))
    assert result.recommendation is Recommendation.TIGHTEN_STOP
    assert result.new_stop == pytest.approx(102.0)


def test_stop_at_lock_level_holds() -> None:
    result = assess(view(mark=104.0, stop_price=102.0))
    assert result.recommendation is Recommendation.HOLD
    assert result.new_stop is None


def test_stop_beyond_lock_level_holds() -> None:
    assert assess(view(mark=104.0, stop_price=103.0)).recommendation is Recommendation.HOLD


def test_winner_without_stop_tightens() -> None:
    result = assess(view(mark=104.0, stop_price=None))
    assert result.new_stop == pytest.approx(102.0)


def test_short_winner_tightens_stop_downwards() -> None:
    # Short at 100 with 1R = 2, mark 97: R 1.5. The lock stop is 100 - 1 x 2 = 98.
    short = view(side=PositionSide.SHORT, stop_price=102.0, mark=97.0)
    result = assess(short)
    assert result.classification is PositionClass.WINNER
    assert result.new_stop == pytest.approx(98.0)


def test_lock_r_setting_moves_the_stop() -> None:
    # lock_r 0.5: 100 + 0.5 x 2 = 101.
    assert assess(view(mark=104.0), lock_r=0.5).new_stop == pytest.approx(101.0)


def test_struggling_reduces_by_half() -> None:
    result = assess(view(mark=99.0))  # R -0.5
    assert result.recommendation is Recommendation.REDUCE
    assert result.reduce_share == pytest.approx(0.5)


def test_reduce_share_setting() -> None:
    assert assess(view(mark=99.0), reduce_share=0.25).reduce_share == pytest.approx(0.25)


def test_loser_exits_whole_position() -> None:
    result = assess(view(mark=97.0))  # R -1.5
    assert result.recommendation is Recommendation.EXIT
    assert result.reduce_share == 1.0


@pytest.mark.parametrize("mark", [101.0, 100.0])
def test_potential_winner_and_breakeven_hold(mark: float) -> None:
    assert assess(view(mark=mark, trend=1.0)).recommendation is Recommendation.HOLD


def test_thresholds_are_settings() -> None:
    # winner_r 3: R 2 with the trend becomes a potential winner.
    result = assess(view(mark=104.0, trend=1.0), winner_r=3.0, scale_in_r=3.0)
    assert result.classification is PositionClass.POTENTIAL_WINNER


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"loser_r": -0.25, "struggling_r": -0.25}, "loser_r"),
        ({"potential_winner_r": 1.5}, "potential_winner_r"),
        ({"lock_r": 1.5}, "lock_r"),
        ({"scale_in_r": 1.4}, "scale_in_r"),
        ({"reduce_share": 1.0}, "reduce_share"),
        ({"cadence": 0}, "cadence"),
    ],
)
def test_invalid_settings_are_rejected(changes: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        PositionSettings(**changes)


def test_default_cadence_is_twelve_candles() -> None:
    assert PositionSettings().cadence == 12


@pytest.mark.parametrize(
    "changes",
    [
        {"mark": math.nan},
        {"mark": 0.0},
        {"initial_risk_per_unit": 0.0},
        {"entry_price": math.inf},
        {"quantity": -1.0},
        {"stop_price": math.nan},
        {"age_candles": -1},
        {"initial_quantity": math.nan},
    ],
)
def test_invalid_position_skipped_and_recorded(changes: dict[str, object]) -> None:
    pil = PositionIntelligence(PositionSettings())
    assert pil.review(T0, [view(**changes)]) == []
    assert pil.log.decisions[-1].action is Action.REJECT
    assert pil.seen == 0


def test_invalid_position_does_not_block_others() -> None:
    pil = PositionIntelligence(PositionSettings())
    results = pil.review(T0, [view(mark=math.nan), view(symbol="ETH/USDT", mark=97.0)])
    assert [result.symbol for result in results] == ["ETH/USDT"]


def test_record_only_on_change() -> None:
    pil = PositionIntelligence(PositionSettings())
    first = pil.review(T0, [view(mark=99.0)])[0]
    second = pil.review(T0 + 1, [view(mark=99.2, age_candles=22)])[0]  # R -0.4, still reduce
    third = pil.review(T0 + 2, [view(mark=97.0, age_candles=34)])[0]  # R -1.5: loser
    assert first.changed
    assert not second.changed
    assert third.changed
    assert len(pil.log.decisions) == 2
    assert pil.log.decisions[0].action is Action.RESIZE
    assert pil.log.decisions[1].numbers["r_multiple"] == pytest.approx(-1.5)


def test_hold_is_recorded_as_approval() -> None:
    pil = PositionIntelligence(PositionSettings())
    pil.review(T0, [view()])
    decision = pil.log.decisions[0]
    assert decision.action is Action.APPROVE
    assert decision.subsystem == "PIL"
    assert "breakeven" in decision.reason


def test_reopened_position_is_recorded_again() -> None:
    pil = PositionIntelligence(PositionSettings())
    pil.review(T0, [view(age_candles=30)])
    # Same class, but a younger age means a new position on the symbol.
    again = pil.review(T0 + 1, [view(age_candles=2)])[0]
    assert again.changed
    assert len(pil.log.decisions) == 2


def test_closed_position_is_forgotten() -> None:
    pil = PositionIntelligence(PositionSettings())
    pil.review(T0, [view(age_candles=5)])
    pil.review(T0 + 1, [])
    assert pil.review(T0 + 2, [view(age_candles=29)])[0].changed


def test_duplicate_symbol_is_assessed_once() -> None:
    pil = PositionIntelligence(PositionSettings())
    results = pil.review(T0, [view(mark=97.0), view(mark=104.0)])
    assert len(results) == 1
    assert results[0].classification is PositionClass.LOSER


def test_counters_count_new_actions_only() -> None:
    pil = PositionIntelligence(PositionSettings())
    pil.review(T0, [view(), view(symbol="ETH/USDT", mark=97.0)])  # hold and exit
    pil.review(T0 + 1, [view(age_candles=22), view(symbol="ETH/USDT", mark=96.0)])
    assert pil.seen == 4
    assert pil.changed == 1
    assert pil.vetoed == 0


def test_enforced_assessment_binds() -> None:
    assert assess(view(mark=97.0)).binding


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_non_enforced_assessment_not_binding(mode: Mode) -> None:
    pil = PositionIntelligence(PositionSettings(mode=mode))
    result = pil.review(T0, [view(mark=97.0)])[0]
    assert result.recommendation is Recommendation.EXIT
    assert not result.binding
    assert pil.changed == 0
    assert pil.log.decisions[0].reason.startswith(f"[{mode}]")


def test_off_mode_does_nothing() -> None:
    pil = PositionIntelligence(PositionSettings(mode=Mode.OFF))
    assert pil.review(T0, [view(mark=97.0)]) == []
    assert pil.last_heartbeat is None
    assert pil.log.decisions == []


def test_review_beats_heartbeat() -> None:
    pil = PositionIntelligence(PositionSettings())
    pil.review(T0, [])
    assert pil.last_heartbeat is not None


def test_due_every_cadence() -> None:
    pil = PositionIntelligence(PositionSettings())
    assert [row for row in range(30) if pil.due(row)] == [0, 12, 24]


@given(
    side=st.sampled_from([PositionSide.LONG, PositionSide.SHORT]),
    r_multiple=st.floats(-5, 10),
    stop_r=st.one_of(st.none(), st.floats(-1, 5)),
    trend=st.floats(-1, 1),
)
def test_tightened_stop_never_widens(
    side: PositionSide, r_multiple: float, stop_r: float | None, trend: float
) -> None:
    """A new stop lies strictly between the current stop and the mark."""
    entry, risk = 100.0, 2.0
    mark = entry + side * r_multiple * risk
    stop = None if stop_r is None else entry + side * stop_r * risk
    position = view(side=side, mark=mark, stop_price=stop, trend=trend)
    result = assess(position)
    if result.new_stop is None:
        return
    assert side * (mark - result.new_stop) > 0
    if stop is not None:
        assert side * (result.new_stop - stop) > 0
