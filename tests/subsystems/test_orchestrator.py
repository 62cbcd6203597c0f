"""Orchestrator Policy: each rule, their combination order, the entry gate and the modes."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantum_trader.engine.decisions import Action
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Health, Mode
from quantum_trader.subsystems.meta_strategy import RiskMode
from quantum_trader.subsystems.orchestrator import (
    OrchestratorPolicy,
    PolicyInputs,
    PolicySettings,
    TradingPolicy,
)
from quantum_trader.subsystems.supervisor_os import (
    Directives,
    GlobalMode,
    HedgeFundOS,
    HfosSettings,
    SystemSnapshot,
)

# Ranging and calm (volatility 1% per candle under the 2% threshold); cost 0.2% is below
# 0.5 x 1% = 0.5%, so no rule fires and the policy is the base one.
BASE = PolicyInputs(
    regime="ranging",
    volatility=0.01,
    volatility_high=0.02,
    risk_mode=RiskMode.NORMAL,
    msc_active_profiles=frozenset({"ml_ensemble"}),
    ensemble_quality=None,
    round_trip_cost=0.002,
    directives=None,
    base_min_confidence=0.56,
    base_risk_per_trade=0.01,
    base_max_positions=5,
    universe=["BTC/USDT", "ETH/USDT"],
)
SAFE = Directives(GlobalMode.SAFE, 0.60, 0.5, 1.0, 2, reason="safe", binding=True)
CRITICAL = Directives(GlobalMode.CRITICAL, 0.60, 0.0, 1.0, 0, reason="critical", binding=True)


def orchestrator(mode: Mode = Mode.ENFORCED, **overrides: object) -> OrchestratorPolicy:
    return OrchestratorPolicy(PolicySettings(mode=mode, **overrides))


def decide(**changes: Any) -> TradingPolicy:
    return orchestrator().decide(0, replace(BASE, **changes))


# The base policy


def test_no_rule_gives_base_policy() -> None:
    policy = decide()
    assert policy.allow_new_trades is True
    assert policy.min_confidence == pytest.approx(0.56)
    assert policy.risk_per_trade == pytest.approx(0.01)
    assert policy.max_positions == 5
    assert policy.allowed_symbols == frozenset({"BTC/USDT", "ETH/USDT"})
    assert policy.entry_style == "market"
    assert policy.exit_style == "fixed"
    assert policy.leverage_cap is None
    assert policy.binding is True


# Step 1: AI-HFOS directives


def test_critical_directives_stop_new_trades() -> None:
    policy = decide(directives=CRITICAL)
    assert policy.allow_new_trades is False
    assert policy.risk_per_trade == 0.0
    assert policy.max_positions == 0
    assert "critical" in policy.reason


def test_safe_directives_bind() -> None:
    policy = decide(directives=SAFE)
    assert policy.allow_new_trades is True
    # max(base 0.56, floor 0.60)
    assert policy.min_confidence == pytest.approx(0.60)
    # 0.01 x size scale 0.5
    assert policy.risk_per_trade == pytest.approx(0.005)
    # min(base 5, directive 2)
    assert policy.max_positions == 2
    assert policy.leverage_cap == 1.0


def test_base_confidence_above_floor_wins() -> None:
    assert decide(directives=SAFE, base_min_confidence=0.62).min_confidence == pytest.approx(0.62)


def test_base_max_positions_below_directive_wins() -> None:
    roomy = replace(SAFE, max_positions=10)
    assert decide(directives=roomy, base_max_positions=3).max_positions == 3


def test_non_binding_directives_are_ignored() -> None:
    policy = decide(directives=replace(CRITICAL, binding=False))
    assert policy.allow_new_trades is True
    assert policy.risk_per_trade == pytest.approx(0.01)
    assert policy.max_positions == 5
    assert "not binding" in policy.reason


def test_zero_max_positions_stops_new_trades() -> None:
    policy = decide(directives=replace(SAFE, max_positions=0))
    assert policy.allow_new_trades is False
    assert policy.max_positions == 0


def test_hfos_safe_mode_flows_into_policy() -> None:
    supervisor = HedgeFundOS(HfosSettings())
    directives = supervisor.evaluate(0, SystemSnapshot(health={"Ranker": Health.DEGRADED}))
    policy = decide(directives=directives)
    # safe: floor 0.56 + 0.04, size 0.5, 2 positions
    assert policy.min_confidence == pytest.approx(0.60)
    assert policy.risk_per_trade == pytest.approx(0.005)
    assert policy.max_positions == 2


# Step 2: MSC AI profiles


def test_no_active_profile_stops_new_trades() -> None:
    policy = decide(msc_active_profiles=frozenset())
    assert policy.allow_new_trades is False
    assert "no active strategy profile" in policy.reason


# Step 3 and 4: regime and volatility


def test_volatile_regime_halves_risk_and_uses_limit_entries() -> None:
    policy = decide(regime="volatile")
    assert policy.risk_per_trade == pytest.approx(0.005)
    assert policy.entry_style == "limit"
    assert policy.exit_style == "fixed"


def test_volatility_above_threshold_is_volatile() -> None:
    assert decide(volatility=0.0201).entry_style == "limit"
    assert decide(volatility=0.02).entry_style == "market"


def test_unknown_volatility_is_volatile() -> None:
    policy = decide(volatility=math.nan)
    assert policy.risk_per_trade == pytest.approx(0.005)
    assert policy.entry_style == "limit"


def test_trending_regime_uses_trailing_exits() -> None:
    policy = decide(regime="trending")
    assert policy.exit_style == "trailing"
    assert policy.entry_style == "market"
    assert policy.risk_per_trade == pytest.approx(0.01)


def test_volatile_trend_gets_both_styles() -> None:
    policy = decide(regime="trending", volatility=0.03)
    assert policy.exit_style == "trailing"
    assert policy.entry_style == "limit"


# Step 5: ensemble quality


def test_poor_ensemble_raises_confidence() -> None:
    # 0.56 + 0.02
    assert decide(ensemble_quality=0.4999).min_confidence == pytest.approx(0.58)
    assert decide(ensemble_quality=0.5).min_confidence == pytest.approx(0.56)


def test_unknown_ensemble_quality_changes_nothing() -> None:
    assert decide(ensemble_quality=None).min_confidence == pytest.approx(0.56)
    assert decide(ensemble_quality=math.nan).min_confidence == pytest.approx(0.56)


# Step 6: trading cost


def test_high_cost_raises_confidence() -> None:
    # threshold 0.5 x volatility 0.01 = 0.005; the rule needs strictly more
    assert decide(round_trip_cost=0.005).min_confidence == pytest.approx(0.56)
    assert decide(round_trip_cost=0.0051).min_confidence == pytest.approx(0.58)


@pytest.mark.parametrize(
    "changes",
    [{"round_trip_cost": math.nan}, {"round_trip_cost": -0.001}, {"volatility": 0.0}],
)
def test_unknown_cost_reads_as_high(changes: dict[str, float]) -> None:
    assert decide(**changes).min_confidence == pytest.approx(0.58)


def test_cost_ratio_follows_setting() -> None:
    # threshold 0.1 x 0.01 = 0.001 < cost 0.002
    policy = orchestrator(high_cost_ratio=0.1).decide(0, BASE)
    assert policy.min_confidence == pytest.approx(0.58)


# Step 7: combination order


def test_rules_combine_in_order() -> None:
    policy = decide(directives=SAFE, regime="volatile", ensemble_quality=0.45, round_trip_cost=0.01)
    # max(0.56, floor 0.60) + 0.02 ensemble + 0.02 cost
    assert policy.min_confidence == pytest.approx(0.64)
    # 0.01 x 0.5 size scale x 0.5 volatile
    assert policy.risk_per_trade == pytest.approx(0.0025)
    assert policy.max_positions == 2
    assert policy.entry_style == "limit"


def test_raises_stop_at_cap() -> None:
    # 0.94 + 0.02 + 0.02 = 0.98, capped at 0.95
    policy = decide(base_min_confidence=0.94, ensemble_quality=0.4, round_trip_cost=0.01)
    assert policy.min_confidence == pytest.approx(0.95)


def test_base_above_cap_stays() -> None:
    policy = decide(base_min_confidence=0.97, ensemble_quality=0.4)
    assert policy.min_confidence == pytest.approx(0.97)


def test_empty_universe_stops_new_trades() -> None:
    policy = decide(universe=[])
    assert policy.allow_new_trades is False
    assert policy.allowed_symbols == frozenset()


# Bad configuration


@pytest.mark.parametrize(
    "changes",
    [
        {"regime": "sideways"},
        {"base_min_confidence": 1.0},
        {"base_risk_per_trade": 0.0},
        {"base_max_positions": 0},
    ],
)
def test_invalid_configuration_raises(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        decide(**changes)


# The entry gate


def test_allows_checks_symbol_and_confidence() -> None:
    gate = orchestrator()
    gate.decide(0, BASE)
    assert gate.allows(1, "BTC/USDT", 0.56) is True
    assert gate.allows(1, "BTC/USDT", 0.5599) is False
    assert gate.allows(1, "BTC/USDT", math.nan) is False
    assert gate.allows(1, "SOL/USDT", 0.9) is False
    assert gate.seen == 4
    assert gate.vetoed == 3


def test_allows_checks_open_positions() -> None:
    gate = orchestrator()
    gate.decide(0, BASE)
    assert gate.allows(1, "BTC/USDT", 0.7, open_positions=4) is True
    assert gate.allows(1, "BTC/USDT", 0.7, open_positions=5) is False


def test_veto_is_recorded() -> None:
    gate = orchestrator()
    gate.decide(0, replace(BASE, directives=CRITICAL))
    assert gate.allows(7, "ETH/USDT", 0.9) is False
    veto = gate.log.decisions[-1]
    assert veto.action is Action.VETO
    assert veto.subsystem == "Orchestrator Policy"
    assert veto.symbol == "ETH/USDT"
    assert veto.time_ns == 7
    assert "allows no new trades" in veto.reason


def test_allows_before_decide_passes() -> None:
    gate = orchestrator()
    assert gate.allows(0, "SOL/USDT", 0.1) is True
    assert gate.seen == 1


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_not_enforced_records_would_be_veto(mode: Mode) -> None:
    gate = orchestrator(mode)
    policy = gate.decide(0, replace(BASE, regime="volatile"))
    assert policy.binding is False
    assert gate.allows(1, "SOL/USDT", 0.9) is True
    assert gate.vetoed == 0
    assert gate.log.decisions[-1].action is Action.APPROVE
    assert "would veto" in gate.log.decisions[-1].reason
    assert gate.risk_scale() == 1.0
    assert gate.scale_risk(1, "BTC/USDT", 0.01) == 0.01
    assert gate.changed == 0


def test_off_mode_returns_base_policy_unrecorded() -> None:
    gate = orchestrator(Mode.OFF)
    policy = gate.decide(0, replace(BASE, directives=CRITICAL))
    assert policy.allow_new_trades is True
    assert policy.risk_per_trade == pytest.approx(0.01)
    assert gate.allows(1, "SOL/USDT", 0.1) is True
    assert gate.seen == 0
    assert gate.log.decisions == []


# Risk scale


def test_risk_scale_is_policy_over_base() -> None:
    gate = orchestrator()
    gate.decide(0, replace(BASE, directives=SAFE, regime="volatile"))
    # 0.0025 / 0.01
    assert gate.risk_scale() == pytest.approx(0.25)


def test_scale_risk_counts_and_records_resize() -> None:
    gate = orchestrator()
    gate.decide(0, replace(BASE, regime="volatile"))
    assert gate.scale_risk(3, "BTC/USDT", 0.008) == pytest.approx(0.004)
    assert gate.changed == 1
    assert gate.log.decisions[-1].action is Action.RESIZE


def test_scale_risk_at_one_changes_nothing() -> None:
    gate = orchestrator()
    gate.decide(0, BASE)
    assert gate.scale_risk(3, "BTC/USDT", 0.008) == 0.008
    assert gate.changed == 0


def test_scale_risk_rejects_negative_risk() -> None:
    with pytest.raises(ConfigurationError, match=r"risk -0\.1"):
        orchestrator().scale_risk(0, "BTC/USDT", -0.1)


# Policy records


def test_policy_recorded_on_first_and_change_only() -> None:
    gate = orchestrator()
    gate.decide(0, BASE)
    gate.decide(24, BASE)
    gate.decide(48, replace(BASE, regime="trending"))
    changes = [d for d in gate.log.decisions if d.action is Action.MODE_CHANGE]
    assert [d.time_ns for d in changes] == [0, 48]
    assert "trailing" in changes[1].reason
    assert changes[1].numbers["risk_per_trade"] == pytest.approx(0.01)
    assert gate.last_heartbeat is not None


def test_due_every_cadence_steps() -> None:
    gate = orchestrator(cadence=4)
    assert gate.due(8)
    assert not gate.due(9)


@given(
    floor=st.floats(0.5, 0.9),
    size_scale=st.floats(0.0, 1.5),
    quality=st.none() | st.floats(0.0, 1.0),
    volatility=st.floats(0.0, 0.1),
    cost=st.floats(0.0, 0.01),
)
def test_policy_never_looser_than_base_and_directives(
    floor: float, size_scale: float, quality: float | None, volatility: float, cost: float
) -> None:
    directives = Directives(GlobalMode.NORMAL, floor, size_scale, 3.0, 4, binding=True)
    policy = decide(
        directives=directives, ensemble_quality=quality, volatility=volatility, round_trip_cost=cost
    )
    assert policy.min_confidence >= max(0.56, floor) - 1e-12
    assert policy.risk_per_trade <= 0.01 * size_scale + 1e-12
    assert policy.max_positions <= 4
