"""AI-HFOS: the global mode rules and their boundaries, the directives, conflicts and modes."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from quantum_trader.engine.decisions import Action
from quantum_trader.subsystems.base import Health, Mode, Subsystem
from quantum_trader.subsystems.meta_strategy import RiskMode
from quantum_trader.subsystems.supervisor_os import (
    Directives,
    GlobalMode,
    HedgeFundOS,
    HfosSettings,
    SystemSnapshot,
    collect_health,
)

CALM = SystemSnapshot(
    health={"ESS": Health.HEALTHY, "Trading Mathematician": Health.HEALTHY},
    recent_win_rate=0.5,
    recent_profit_factor=1.2,
)
# Meets every aggressive condition with the smallest margins: drawdown just under 2%, profit
# factor exactly 1.5 and win rate exactly 0.5.
BULLISH = SystemSnapshot(
    health={"ESS": Health.HEALTHY, "AELM": Health.HEALTHY},
    drawdown=0.0199,
    recent_win_rate=0.5,
    recent_profit_factor=1.5,
    msc_risk_mode=RiskMode.AGGRESSIVE.value,
)


def hfos(mode: Mode = Mode.ENFORCED, **overrides: object) -> HedgeFundOS:
    return HedgeFundOS(HfosSettings(mode=mode, **overrides))


def mode_of(snapshot: SystemSnapshot, **overrides: Any) -> GlobalMode:
    return hfos(**overrides).evaluate(0, snapshot).global_mode


def calm(**changes: Any) -> SystemSnapshot:
    return replace(CALM, **changes)


def bullish(**changes: Any) -> SystemSnapshot:
    return replace(BULLISH, **changes)


# Normal mode and its directives


def test_calm_account_is_normal() -> None:
    directives = hfos().evaluate(0, CALM)
    assert directives.global_mode is GlobalMode.NORMAL
    assert directives.size_scale == 1.0
    assert directives.confidence_floor == pytest.approx(0.56)
    assert directives.leverage_cap == 3.0
    assert directives.max_positions == 5
    assert directives.binding is True


def test_directives_before_evaluation_are_normal() -> None:
    directives = hfos().directives
    assert directives.global_mode is GlobalMode.NORMAL
    assert directives.size_scale == 1.0


# Critical mode


def test_halted_ess_is_critical() -> None:
    directives = hfos().evaluate(0, calm(ess_state="halted"))
    assert directives.global_mode is GlobalMode.CRITICAL
    assert directives.size_scale == 0.0
    assert directives.max_positions == 0
    assert directives.leverage_cap == 1.0
    # floor 0.56 + safe raise 0.04
    assert directives.confidence_floor == pytest.approx(0.60)


def test_unknown_ess_state_reads_as_halted() -> None:
    assert mode_of(calm(ess_state="paused")) is GlobalMode.CRITICAL


@pytest.mark.parametrize("name", ["ESS", "Trading Mathematician", "AELM"])
def test_failed_safety_subsystem_is_critical(name: str) -> None:
    assert mode_of(calm(health={name: Health.FAILED})) is GlobalMode.CRITICAL


def test_failed_other_subsystem_is_only_safe() -> None:
    assert mode_of(calm(health={"Universe": Health.FAILED})) is GlobalMode.SAFE


def test_degraded_safety_subsystem_is_only_safe() -> None:
    assert mode_of(calm(health={"ESS": Health.DEGRADED})) is GlobalMode.SAFE


def test_critical_drawdown_boundary() -> None:
    assert mode_of(calm(drawdown=0.12)) is GlobalMode.CRITICAL
    assert mode_of(calm(drawdown=0.1199)) is GlobalMode.SAFE


def test_critical_failed_count_boundary() -> None:
    assert mode_of(calm(failed_subsystems=3)) is GlobalMode.CRITICAL
    assert mode_of(calm(failed_subsystems=2)) is GlobalMode.SAFE


def test_critical_drawdown_follows_setting() -> None:
    # With the critical drawdown raised to 20%, 12% is only above the safe 6%.
    assert mode_of(calm(drawdown=0.12), critical_drawdown=0.2) is GlobalMode.SAFE


# Safe mode


def test_safe_directives() -> None:
    directives = hfos().evaluate(0, calm(drawdown=0.06))
    assert directives.global_mode is GlobalMode.SAFE
    assert directives.size_scale == 0.5
    # floor 0.56 + 0.04
    assert directives.confidence_floor == pytest.approx(0.60)
    assert directives.leverage_cap == 1.0
    assert directives.max_positions == 2


def test_safe_drawdown_boundary() -> None:
    assert mode_of(calm(drawdown=0.06)) is GlobalMode.SAFE
    assert mode_of(calm(drawdown=0.0599)) is GlobalMode.NORMAL


def test_safe_daily_loss_boundary() -> None:
    assert mode_of(calm(daily_loss=0.03)) is GlobalMode.SAFE
    assert mode_of(calm(daily_loss=0.0299)) is GlobalMode.NORMAL


def test_one_unhealthy_subsystem_is_safe() -> None:
    assert mode_of(calm(health={"Ranker": Health.DEGRADED})) is GlobalMode.SAFE
    assert mode_of(calm(failed_subsystems=1)) is GlobalMode.SAFE


def test_stopped_subsystem_is_not_unhealthy() -> None:
    health = {"ESS": Health.STOPPED, "Ranker": Health.STOPPED}
    assert mode_of(calm(health=health)) is GlobalMode.NORMAL


def test_failure_reported_twice_counts_once() -> None:
    # Self-Healing counts 1 failure and the health map shows the same one: 1 < 2.
    snapshot = calm(health={"Ranker": Health.FAILED}, failed_subsystems=1)
    assert mode_of(snapshot, safe_unhealthy_subsystems=2) is GlobalMode.NORMAL


def test_defensive_msc_is_safe() -> None:
    assert mode_of(calm(msc_risk_mode=RiskMode.DEFENSIVE.value)) is GlobalMode.SAFE


def test_unknown_msc_mode_reads_as_defensive() -> None:
    assert mode_of(calm(msc_risk_mode="reckless")) is GlobalMode.SAFE


def test_reducing_ess_is_safe() -> None:
    assert mode_of(calm(ess_state="reducing")) is GlobalMode.SAFE


@pytest.mark.parametrize(
    "changes", [{"drawdown": math.nan}, {"drawdown": -0.01}, {"daily_loss": math.inf}]
)
def test_invalid_loss_figure_is_safe(changes: dict[str, float]) -> None:
    assert mode_of(calm(**changes)) is GlobalMode.SAFE


# Aggressive mode


def test_aggressive_directives() -> None:
    directives = hfos().evaluate(0, BULLISH)
    assert directives.global_mode is GlobalMode.AGGRESSIVE
    assert directives.size_scale == 1.25
    assert directives.confidence_floor == pytest.approx(0.56)
    assert directives.leverage_cap == 3.0
    assert directives.max_positions == 5


@pytest.mark.parametrize(
    "changes",
    [
        {"drawdown": 0.02},
        {"recent_profit_factor": 1.4999},
        {"recent_profit_factor": math.nan},
        {"recent_win_rate": 0.4999},
        {"ensemble_hit_rate": 0.4999},
        {"msc_risk_mode": RiskMode.NORMAL.value},
    ],
)
def test_aggressive_boundary_falls_back_to_normal(changes: dict[str, object]) -> None:
    assert mode_of(bullish(**changes)) is GlobalMode.NORMAL


def test_aggressive_allows_hit_rate_at_threshold() -> None:
    assert mode_of(bullish(ensemble_hit_rate=0.5)) is GlobalMode.AGGRESSIVE


def test_aggressive_allows_infinite_profit_factor() -> None:
    assert mode_of(bullish(recent_profit_factor=math.inf)) is GlobalMode.AGGRESSIVE


def test_aggressive_msc_with_degraded_health_gives_safe() -> None:
    """MSC AI asks for aggressive, health asks for safe: the most conservative mode wins."""
    directives = hfos().evaluate(0, bullish(health={"Ranker": Health.DEGRADED}))
    assert directives.global_mode is GlobalMode.SAFE
    assert directives.size_scale == 0.5
    assert "most conservative" in directives.reason


def test_aggressive_msc_with_daily_loss_gives_safe() -> None:
    assert mode_of(bullish(daily_loss=0.03)) is GlobalMode.SAFE


def test_aggressive_msc_with_halted_ess_gives_critical() -> None:
    assert mode_of(bullish(ess_state="halted")) is GlobalMode.CRITICAL


# Settings


def test_size_scale_above_cap_is_rejected() -> None:
    with pytest.raises(ValidationError):
        HfosSettings(aggressive_size_scale=1.51)


def test_safe_drawdown_above_critical_is_rejected() -> None:
    with pytest.raises(ValidationError, match="safe_drawdown"):
        HfosSettings(safe_drawdown=0.15)


def test_floor_plus_raise_reaching_one_is_rejected() -> None:
    with pytest.raises(ValidationError, match="confidence_floor"):
        HfosSettings(confidence_floor=0.97, safe_confidence_raise=0.03)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError):
        HfosSettings(size=2.0)  # type: ignore[call-arg]


# Decisions, counters and modes


def test_decision_recorded_on_first_and_changed_mode() -> None:
    supervisor = hfos()
    supervisor.evaluate(0, CALM)
    supervisor.evaluate(1, CALM)
    supervisor.evaluate(2, calm(drawdown=0.07))
    decisions = supervisor.log.decisions
    assert len(decisions) == 2
    assert decisions[0].action is Action.MODE_CHANGE
    assert decisions[1].subsystem == "AI-HFOS"
    assert decisions[1].time_ns == 2
    assert decisions[1].numbers["size_scale"] == 0.5
    assert decisions[1].numbers["drawdown"] == 0.07
    assert "drawdown 7.00% >= 6.00%" in decisions[1].reason


def test_counters_count_evaluations_and_changes() -> None:
    supervisor = hfos()
    for snapshot in (CALM, CALM, calm(drawdown=0.07), CALM):
        supervisor.evaluate(0, snapshot)
    assert supervisor.seen == 4
    # normal -> safe -> normal; the first evaluation is no change
    assert supervisor.changed == 2
    assert supervisor.vetoed == 0


def test_evaluate_beats_the_heartbeat() -> None:
    supervisor = hfos()
    supervisor.evaluate(0, CALM)
    assert supervisor.last_heartbeat is not None


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_not_enforced_directives_are_not_binding(mode: Mode) -> None:
    supervisor = hfos(mode)
    directives = supervisor.evaluate(0, calm(ess_state="halted"))
    assert directives.global_mode is GlobalMode.CRITICAL
    assert directives.binding is False
    assert supervisor.changed == 0
    assert supervisor.log.decisions[0].reason.startswith("[")


def test_off_mode_keeps_initial_directives() -> None:
    supervisor = hfos(Mode.OFF)
    directives = supervisor.evaluate(0, calm(ess_state="halted"))
    assert directives.global_mode is GlobalMode.NORMAL
    assert supervisor.seen == 0
    assert supervisor.log.decisions == []


def test_due_every_cadence_steps() -> None:
    supervisor = hfos(cadence=24)
    assert supervisor.due(0)
    assert supervisor.due(48)
    assert not supervisor.due(23)


def test_collect_health_keys_by_short_name() -> None:
    running = Subsystem(Mode.ENFORCED, 1)
    running.short_name = "Ranker"
    running.start()
    broken = Subsystem(Mode.ENFORCED, 1)
    broken.short_name = "AELM"
    broken.fail("exchange timed out")
    health = collect_health([running, broken])
    assert health == {"Ranker": Health.HEALTHY, "AELM": Health.FAILED}


def test_directive_limits_ignore_reason() -> None:
    first = Directives(GlobalMode.SAFE, 0.6, 0.5, 1.0, 2, reason="a", binding=True)
    second = Directives(GlobalMode.SAFE, 0.6, 0.5, 1.0, 2, reason="b", binding=False)
    assert first.limits() == second.limits()


@given(
    drawdown=st.floats(allow_nan=True),
    daily_loss=st.floats(allow_nan=True),
    profit_factor=st.floats(allow_nan=True),
    win_rate=st.floats(0, 1),
    msc=st.sampled_from([m.value for m in RiskMode]),
    ess=st.sampled_from(["active", "reducing", "halted"]),
)
def test_directives_stay_within_limits(
    drawdown: float, daily_loss: float, profit_factor: float, win_rate: float, msc: str, ess: str
) -> None:
    snapshot = SystemSnapshot(
        ess_state=ess,
        drawdown=drawdown,
        daily_loss=daily_loss,
        recent_win_rate=win_rate,
        recent_profit_factor=profit_factor,
        msc_risk_mode=msc,
    )
    directives = hfos().evaluate(0, snapshot)
    assert 0.0 <= directives.size_scale <= 1.5
    if ess == "halted" or (0.12 <= drawdown <= 1.0):
        assert directives.global_mode is GlobalMode.CRITICAL
    if not 0.0 <= drawdown < 0.06:
        assert directives.global_mode in (GlobalMode.SAFE, GlobalMode.CRITICAL)
