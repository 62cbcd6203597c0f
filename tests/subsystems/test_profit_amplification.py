"""PAL: scale-in, partial take profit, trailing stop, the limits, the modes and no new positions.

The base position is a long of 1 entered at 100 with its initial stop at 98, so 1R = 2 and
R = (mark - 100) / 2. Assessments come from a real PIL with default settings.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TypeVar

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
from quantum_trader.subsystems.profit_amplification import (
    AmplifierSettings,
    AmplifyAction,
    AmplifyLimits,
    MoveStop,
    ProfitAmplifier,
    ScaleIn,
    TakePartial,
)

T0 = 1_726_272_000 * 1_000_000_000
WIDE = AmplifyLimits(max_add_notional=1_000_000.0)

ActionT = TypeVar("ActionT", ScaleIn, TakePartial, MoveStop)


def view(**changes: object) -> PositionView:
    base = PositionView(
        symbol="BTC/USDT",
        side=PositionSide.LONG,
        entry_price=100.0,
        quantity=1.0,
        stop_price=98.0,
        initial_risk_per_unit=2.0,
        mark=104.0,
        age_candles=10,
        trend=0.0,
        mfe_r=0.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def assess(position: PositionView) -> PositionAssessment:
    return PositionIntelligence(PositionSettings()).review(T0, [position])[0]


def run(
    position: PositionView,
    atr: float = 1.0,
    limits: AmplifyLimits = WIDE,
    pal: ProfitAmplifier | None = None,
) -> list[AmplifyAction]:
    amplifier = pal if pal is not None else ProfitAmplifier(AmplifierSettings())
    return amplifier.amplify(T0, assess(position), position, atr, limits)


def of_type(actions: list[AmplifyAction], kind: type[ActionT]) -> list[ActionT]:
    return [action for action in actions if isinstance(action, kind)]


def test_winner_at_two_r_banks_and_trails() -> None:
    # R (104 - 100) / 2 = 2 with a flat trend: a winner. Partial: 0.5 x 1 = 0.5.
    # Trailing: 104 - 2 x ATR 1 = 102, above the stop at 98.
    assert assess(view()).classification is PositionClass.WINNER
    actions = run(view())
    assert actions == [
        TakePartial("BTC/USDT", 0.5, True, actions[0].reason),
        MoveStop("BTC/USDT", 102.0, True, actions[1].reason),
    ]


def test_trailing_beats_lock_stop_when_tighter() -> None:
    # ATR 0.5: trail 104 - 2 x 0.5 = 103, tighter than the lock stop 100 + 2 = 102.
    stops = of_type(run(view(), atr=0.5), MoveStop)
    assert stops == [MoveStop("BTC/USDT", 103.0, True, stops[0].reason)]
    assert "trailing" in stops[0].reason


def test_lock_stop_beats_trailing_when_tighter() -> None:
    # Mark 103: R 1.5, trail 103 - 2 = 101, lock stop 102. R < 2, so no partial.
    actions = run(view(mark=103.0))
    assert actions == [MoveStop("BTC/USDT", 102.0, True, actions[0].reason)]
    assert "profit-locking" in actions[0].reason


def test_long_stop_never_moves_down() -> None:
    # The stop is at 103, and the trail 104 - 2 = 102 would lower it.
    assert of_type(run(view(stop_price=103.0)), MoveStop) == []


def test_short_trails_above_mark() -> None:
    # Short at 100 with 1R = 2, mark 96: R 2. Trail 96 + 2 x 1 = 98, below the stop at 102.
    short = view(side=PositionSide.SHORT, stop_price=102.0, mark=96.0)
    stops = of_type(run(short), MoveStop)
    assert stops == [MoveStop("BTC/USDT", 98.0, True, stops[0].reason)]


def test_short_stop_never_moves_up() -> None:
    short = view(side=PositionSide.SHORT, stop_price=97.5, mark=96.0)
    assert of_type(run(short), MoveStop) == []


def test_missing_stop_gets_one() -> None:
    stops = of_type(run(view(stop_price=None)), MoveStop)
    assert stops == [MoveStop("BTC/USDT", 102.0, True, stops[0].reason)]
    assert "from no stop" in stops[0].reason


def test_trailing_starts_at_max_excursion() -> None:
    # Mark 102 with the trend: R 1, a potential winner. The excursion reached 1.6R, so the
    # trail is on: 102 - 2 x 1 = 100, above the stop at 98.
    position = view(mark=102.0, trend=1.0, mfe_r=1.6)
    stops = of_type(run(position), MoveStop)
    assert stops == [MoveStop("BTC/USDT", 100.0, True, stops[0].reason)]


def test_potential_winner_before_trailing_start() -> None:
    position = view(mark=102.0, trend=1.0, mfe_r=1.2)
    assert assess(position).classification is PositionClass.POTENTIAL_WINNER
    assert run(position) == []


def test_scale_in_half_initial_quantity() -> None:
    # R 2 with the trend, so PIL recommends a scale-in: 0.5 x 1 = 0.5 (notional 52), no partial.
    actions = run(view(trend=1.0))
    assert of_type(actions, ScaleIn) == [ScaleIn("BTC/USDT", 0.5, True, actions[0].reason)]
    assert of_type(actions, TakePartial) == []


def test_scale_in_uses_initial_quantity() -> None:
    # After a partial the position is 0.5, but the add is 0.5 x initial 2 = 1.
    position = view(trend=1.0, quantity=0.5, initial_quantity=2.0)
    assert [action.quantity for action in of_type(run(position), ScaleIn)] == [1.0]


def test_scale_in_cut_to_max_notional() -> None:
    # 0.5 at 104 is 52, above the cap 26: cut to 26 / 104 = 0.25.
    actions = run(view(trend=1.0), limits=AmplifyLimits(max_add_notional=26.0))
    scale_ins = of_type(actions, ScaleIn)
    assert scale_ins == [ScaleIn("BTC/USDT", 0.25, True, scale_ins[0].reason)]
    assert "cut from 0.5" in scale_ins[0].reason


def test_scale_in_cut_then_floored_to_step() -> None:
    # Cap 30: 30 / 104 = 0.288..., floored to the step 0.1 gives 0.2.
    limits = AmplifyLimits(max_add_notional=30.0, quantity_step=0.1)
    scale_ins = of_type(run(view(trend=1.0), limits=limits), ScaleIn)
    assert [action.quantity for action in scale_ins] == [pytest.approx(0.2)]


@pytest.mark.parametrize(
    "limits",
    [
        AmplifyLimits(max_add_notional=0.0),
        AmplifyLimits(max_add_notional=math.nan),
        # 10 / 104 = 0.096, which floors to 0 at step 0.1.
        AmplifyLimits(max_add_notional=10.0, quantity_step=0.1),
        # 0.25 x 104 = 26, below the minimum notional 30.
        AmplifyLimits(max_add_notional=26.0, min_add_notional=30.0),
    ],
)
def test_scale_in_dropped_by_limits(limits: AmplifyLimits) -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    actions = run(view(trend=1.0), limits=limits, pal=pal)
    assert of_type(actions, ScaleIn) == []
    assert any(d.action is Action.REJECT and "dropped" in d.reason for d in pal.log.decisions)


def test_dropped_scale_in_allows_partial() -> None:
    # The add is blocked, so the R 2 partial applies: 0.5 x 1 = 0.5.
    actions = run(view(trend=1.0), limits=AmplifyLimits(max_add_notional=0.0))
    assert [action.quantity for action in of_type(actions, TakePartial)] == [0.5]


def test_one_scale_in_per_position() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(trend=1.0), pal=pal)
    # The add filled: 1.5 held. The second call takes the partial instead: 0.5 x 1.5 = 0.75.
    later = view(trend=1.0, quantity=1.5, initial_quantity=1.0, age_candles=22)
    actions = run(later, pal=pal)
    assert of_type(actions, ScaleIn) == []
    assert [action.quantity for action in of_type(actions, TakePartial)] == [0.75]


def test_one_partial_per_position() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(), pal=pal)
    later = view(quantity=0.5, initial_quantity=1.0, mark=105.0, stop_price=102.0, age_candles=22)
    assert of_type(run(later, pal=pal), TakePartial) == []


def test_new_position_on_symbol_starts_over() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(age_candles=30), pal=pal)
    # A younger age means the earlier position closed and this one is new.
    assert len(of_type(run(view(age_candles=4), pal=pal), TakePartial)) == 1


def test_forget_starts_over() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(), pal=pal)
    pal.forget("BTC/USDT")
    assert len(of_type(run(view(age_candles=22), pal=pal), TakePartial)) == 1


def test_partial_floored_to_step() -> None:
    # 0.5 x 0.3 = 0.15, floored to the step 0.1 gives 0.1.
    limits = AmplifyLimits(max_add_notional=1e6, quantity_step=0.1)
    actions = run(view(quantity=0.3), limits=limits)
    assert [action.quantity for action in of_type(actions, TakePartial)] == [pytest.approx(0.1)]


def test_no_open_position_no_action() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    actions = pal.amplify(T0, assess(view(trend=1.0)), None, 1.0, WIDE)
    assert actions == []
    assert pal.log.decisions[-1].action is Action.REJECT
    assert "opens none" in pal.log.decisions[-1].reason


def test_zero_quantity_no_action() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    assessment = assess(view(trend=1.0))
    assert pal.amplify(T0, assessment, view(trend=1.0, quantity=0.0), 1.0, WIDE) == []


def test_mismatched_symbol_no_action() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    other = view(symbol="ETH/USDT")
    assert pal.amplify(T0, assess(view()), other, 1.0, WIDE) == []


@pytest.mark.parametrize("changes", [{"mark": math.nan}, {"initial_quantity": 0.0}])
def test_invalid_position_no_action(changes: dict[str, float]) -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    position = view(trend=1.0, **changes)
    assert pal.amplify(T0, assess(view(trend=1.0)), position, 1.0, WIDE) == []
    assert pal.log.decisions[-1].action is Action.REJECT


@pytest.mark.parametrize("mark", [97.0, 99.0, 100.0])
def test_non_winners_get_no_action(mark: float) -> None:
    # R -1.5 loser, R -0.5 struggling, R 0 breakeven.
    assert run(view(mark=mark)) == []


def test_invalid_atr_skips_trailing_only() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    actions = run(view(mark=105.0, stop_price=103.0), atr=math.nan, pal=pal)
    # R 2.5: the partial 0.5 still applies. The lock stop 102 is below the stop at 103.
    assert [type(action) for action in actions] == [TakePartial]
    assert any("ATR nan is invalid" in d.reason for d in pal.log.decisions)


def test_stop_beyond_mark_is_not_set() -> None:
    assessment = PositionAssessment(
        "BTC/USDT", PositionClass.WINNER, 2.0, Recommendation.TIGHTEN_STOP, 105.0, 0.0, True, ""
    )
    pal = ProfitAmplifier(AmplifierSettings())
    actions = pal.amplify(T0, assessment, view(stop_price=103.0), 1.0, WIDE)
    assert of_type(actions, MoveStop) == []


def test_counters_and_records() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(), pal=pal)
    run(view(mark=97.0), pal=pal)
    assert pal.seen == 2
    assert pal.changed == 2
    assert pal.vetoed == 0
    assert [d.action for d in pal.log.decisions] == [Action.RESIZE, Action.RESIZE]
    assert pal.log.decisions[0].numbers["quantity"] == pytest.approx(0.5)
    assert pal.log.decisions[1].numbers["new_stop"] == pytest.approx(102.0)
    assert pal.log.decisions[1].subsystem == "PAL"


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_non_enforced_actions_do_not_bind(mode: Mode) -> None:
    pal = ProfitAmplifier(AmplifierSettings(mode=mode))
    actions = run(view(trend=1.0), pal=pal)
    assert [type(action) for action in actions] == [ScaleIn, MoveStop]
    assert all(not action.binding for action in actions)
    assert pal.changed == 0
    # Nothing was carried out, so the next call still offers the scale-in.
    assert of_type(run(view(trend=1.0, age_candles=22), pal=pal), ScaleIn) != []


def test_off_mode_does_nothing() -> None:
    pal = ProfitAmplifier(AmplifierSettings(mode=Mode.OFF))
    assert run(view(), pal=pal) == []
    assert pal.seen == 0
    assert pal.last_heartbeat is None


def test_amplify_beats_heartbeat() -> None:
    pal = ProfitAmplifier(AmplifierSettings())
    run(view(mark=100.0), pal=pal)
    assert pal.last_heartbeat is not None


def test_default_settings() -> None:
    settings = AmplifierSettings()
    assert settings.scale_in_share == 0.5
    assert settings.max_scale_ins == 1
    assert settings.partial_take_profit_r == 2.0
    assert settings.partial_share == 0.5
    assert settings.trailing_start_r == 1.5
    assert settings.trail_atr == 2.0


@pytest.mark.parametrize(
    "changes",
    [{"scale_in_share": 0.0}, {"partial_share": 1.0}, {"trail_atr": 0.0}, {"unknown": 1}],
)
def test_invalid_settings_are_rejected(changes: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        AmplifierSettings(**changes)


@given(
    side=st.sampled_from([PositionSide.LONG, PositionSide.SHORT]),
    r_multiple=st.floats(0.5, 10),
    stop_r=st.one_of(st.none(), st.floats(-1, 9)),
    atr=st.floats(0.01, 5),
    trend=st.sampled_from([-1.0, 0.0, 1.0]),
)
def test_stop_moves_only_towards_mark(
    side: PositionSide, r_multiple: float, stop_r: float | None, atr: float, trend: float
) -> None:
    """A moved stop is tighter than the current one and still short of the mark."""
    mark = 100.0 + side * r_multiple * 2.0
    stop = None if stop_r is None else 100.0 + side * stop_r * 2.0
    position = view(side=side, mark=mark, stop_price=stop, trend=trend)
    for action in of_type(run(position, atr=atr), MoveStop):
        assert isinstance(action, MoveStop)
        assert side * (mark - action.new_stop) > 0
        if stop is not None:
            assert side * (action.new_stop - stop) > 0
