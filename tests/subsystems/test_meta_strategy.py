"""MSC AI: trade records, the regime, risk-mode thresholds, profile activation and the modes."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from quantum_trader.core.types import ExitReason, PositionSide, Trade
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError, SkipCycle
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.meta_strategy import (
    MEAN_REVERSION,
    ML_ENSEMBLE,
    PROFILES,
    RANGING,
    TREND_FOLLOWING,
    TRENDING,
    VOLATILE,
    AccountStats,
    MetaDecision,
    MetaSettings,
    MetaStrategyController,
    RiskMode,
    TradeRecord,
    classify_regime,
    profile_score,
    summarise_trades,
)

T0 = pd.Timestamp("2024-01-01", tz="UTC")
NEUTRAL = AccountStats()


def trade(pnl: float) -> Trade:
    return Trade(
        "BTC/USDT",
        PositionSide.LONG,
        T0,
        100.0,
        T0,
        100.0,
        1.0,
        0.0,
        0.0,
        pnl,
        pnl / 100.0,
        1.0,
        ExitReason.EXIT_SIGNAL,
    )


def trades(*pnls: float) -> list[Trade]:
    return [trade(pnl) for pnl in pnls]


def controller(mode: Mode = Mode.ENFORCED, **overrides: object) -> MetaStrategyController:
    return MetaStrategyController(MetaSettings(mode=mode, **overrides))


def risk_mode(account: AccountStats) -> RiskMode:
    return controller().update(0, account, RANGING, {}).risk_mode


# Trade records and account stats


def test_losing_streak_counts_final_losses() -> None:
    # Profit 5, loss 5 x 1 = 5: PF 1.0; one win in six trades.
    record = summarise_trades(trades(5, -1, -1, -1, -1, -1))
    assert record.losing_streak == 5
    assert record.trades == 6
    assert record.win_rate == pytest.approx(1 / 6)
    assert record.profit_factor == pytest.approx(1.0)


def test_break_even_trade_ends_losing_streak() -> None:
    record = summarise_trades(trades(-1, -1, 0, -1))
    assert record.losing_streak == 1
    assert record.win_rate == 0.0


def test_profit_factor_is_gross_profit_over_gross_loss() -> None:
    # Profit 6 + 3 = 9, loss 2 + 4 = 6: PF 1.5; two wins in four.
    record = summarise_trades(trades(6, -2, 3, -4))
    assert record.profit_factor == pytest.approx(1.5)
    assert record.win_rate == 0.5
    assert record.losing_streak == 1


def test_profit_factor_without_losses_is_infinite() -> None:
    record = summarise_trades(trades(2, 3))
    assert record.profit_factor == math.inf
    assert record.judged_profit_factor == math.inf
    assert record.win_rate == 1.0


def test_profit_factor_without_profit_or_loss_is_none() -> None:
    empty = summarise_trades([])
    flat = summarise_trades(trades(0, 0))
    assert empty.profit_factor is None
    assert empty.trades == 0
    assert empty.win_rate == 0.0
    assert flat.profit_factor is None
    assert flat.judged_profit_factor == 1.0


def test_nan_pnl_rejected() -> None:
    with pytest.raises(ConfigurationError, match="NaN pnl"):
        summarise_trades(trades(1.0, math.nan))


def test_account_drawdown_from_peak() -> None:
    # (100 - 92) / 100 = 0.08.
    stats = AccountStats.from_trades([], equity_peak=100.0, equity_now=92.0)
    assert stats.drawdown == pytest.approx(0.08)


def test_account_equity_above_stale_peak_has_no_drawdown() -> None:
    stats = AccountStats.from_trades([], equity_peak=100.0, equity_now=105.0)
    assert stats.drawdown == 0.0


def test_account_stats_use_last_lookback_trades() -> None:
    # The last 3 of -9, -9, 4, -1, 2: profit 6, loss 1, PF 6; two wins in three.
    stats = AccountStats.from_trades(trades(-9, -9, 4, -1, 2), 100.0, 100.0, lookback=3)
    assert stats.trades == 3
    assert stats.profit_factor == pytest.approx(6.0)
    assert stats.win_rate == pytest.approx(2 / 3)
    assert stats.losing_streak == 0


@pytest.mark.parametrize(("peak", "now"), [(0.0, 10.0), (-5.0, 1.0), (100.0, -1.0)])
def test_account_invalid_equity_rejected(peak: float, now: float) -> None:
    with pytest.raises(ConfigurationError, match="equity"):
        AccountStats.from_trades([], peak, now)


def test_account_invalid_lookback_rejected() -> None:
    with pytest.raises(ConfigurationError, match="lookback=0"):
        AccountStats.from_trades([], 100.0, 100.0, lookback=0)


@pytest.mark.parametrize(
    "fields",
    [
        {"drawdown": 1.5},
        {"drawdown": -0.1},
        {"trades": 2, "losing_streak": 3},
        {"win_rate": 1.1},
        {"profit_factor": -1.0},
    ],
)
def test_account_stats_invalid_fields_rejected(fields: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        AccountStats(**fields)  # type: ignore[arg-type]


# Regime


@pytest.mark.parametrize(
    ("efficiency", "volatility", "expected"),
    [
        (0.3, 0.01, TRENDING),  # efficiency at the 0.3 floor trends
        (0.2999, 0.01, RANGING),
        (0.9, 0.0201, VOLATILE),  # volatility above vol_high wins over a trend
        (0.1, 0.02, RANGING),  # volatility equal to vol_high is not volatile
        (0.0, 0.0, RANGING),
        (1.0, 0.02, TRENDING),
    ],
)
def test_classify_regime_thresholds(efficiency: float, volatility: float, expected: str) -> None:
    assert classify_regime(efficiency, volatility, vol_high=0.02) == expected


def test_classify_regime_custom_trend_floor() -> None:
    assert classify_regime(0.4, 0.01, 0.02, trending_efficiency=0.5) == RANGING
    assert classify_regime(0.5, 0.01, 0.02, trending_efficiency=0.5) == TRENDING


def test_classify_regime_nan_skips_cycle() -> None:
    with pytest.raises(SkipCycle, match="warmed up"):
        classify_regime(math.nan, 0.01, 0.02)
    with pytest.raises(SkipCycle, match="warmed up"):
        classify_regime(0.5, math.nan, 0.02)


@pytest.mark.parametrize(
    ("efficiency", "volatility", "vol_high", "trend_floor"),
    [(1.2, 0.01, 0.02, 0.3), (-0.1, 0.01, 0.02, 0.3), (0.5, -0.01, 0.02, 0.3),
     (0.5, 0.01, 0.0, 0.3), (0.5, 0.01, 0.02, 0.0)],
)  # fmt: skip
def test_classify_regime_invalid_inputs_rejected(
    efficiency: float, volatility: float, vol_high: float, trend_floor: float
) -> None:
    with pytest.raises(ConfigurationError):
        classify_regime(efficiency, volatility, vol_high, trend_floor)


# Profile score


def test_score_without_trades_is_neutral() -> None:
    assert profile_score(TradeRecord(), prior_trades=10) == 0.5


def test_score_shrinks_quality_towards_neutral() -> None:
    # PF 3 -> 3 / 4 = 0.75; quality (0.75 + 0.6) / 2 = 0.675; weight 10 / (10 + 10) = 0.5;
    # score 0.5 + 0.175 x 0.5 = 0.5875.
    record = TradeRecord(trades=10, win_rate=0.6, profit_factor=3.0)
    assert profile_score(record, prior_trades=10) == pytest.approx(0.5875)


def test_score_with_infinite_profit_factor() -> None:
    # Quality (1 + 1) / 2 = 1; weight 30 / 40 = 0.75; score 0.5 + 0.5 x 0.75 = 0.875.
    record = TradeRecord(trades=30, win_rate=1.0, profit_factor=math.inf)
    assert profile_score(record, prior_trades=10) == pytest.approx(0.875)


def test_score_reads_missing_profit_factor_as_break_even() -> None:
    # PF None -> 1 -> 0.5; quality (0.5 + 0) / 2 = 0.25; weight 0.5; score 0.5 - 0.125 = 0.375.
    record = TradeRecord(trades=10, win_rate=0.0, profit_factor=None)
    assert profile_score(record, prior_trades=10) == pytest.approx(0.375)


def test_score_needs_prior_trades() -> None:
    with pytest.raises(ConfigurationError, match="prior_trades=0"):
        profile_score(TradeRecord(), prior_trades=0)


# Risk mode thresholds


def test_five_final_losses_make_defensive() -> None:
    # Eight trades (too few for the PF rule), PF 6 / 5 = 1.2, streak 5 >= 5.
    account = AccountStats.from_trades(trades(2, 2, 2, -1, -1, -1, -1, -1), 100.0, 100.0)
    assert account.losing_streak == 5
    assert risk_mode(account) is RiskMode.DEFENSIVE


def test_four_final_losses_stay_normal() -> None:
    account = AccountStats.from_trades(trades(2, 2, 2, 2, -1, -1, -1, -1), 100.0, 100.0)
    assert account.losing_streak == 4
    assert risk_mode(account) is RiskMode.NORMAL


def test_drawdown_at_limit_makes_defensive() -> None:
    # (100 - 92) / 100 = 0.08 >= 0.08.
    account = AccountStats.from_trades([], 100.0, 92.0)
    assert risk_mode(account) is RiskMode.DEFENSIVE


def test_drawdown_below_limit_is_not_defensive() -> None:
    # (10000 - 9201) / 10000 = 0.0799 < 0.08.
    account = AccountStats.from_trades([], 10_000.0, 9_201.0)
    assert risk_mode(account) is RiskMode.NORMAL


def test_profit_factor_below_floor_makes_defensive() -> None:
    # 3.95 x 5 = 19.75 profit over 5 x 5 = 25 loss: PF 0.79 < 0.8 over 10 trades.
    account = AccountStats.from_trades(trades(*[3.95, -5.0] * 5), 100.0, 100.0)
    assert account.profit_factor == pytest.approx(0.79)
    assert risk_mode(account) is RiskMode.DEFENSIVE


def test_profit_factor_at_floor_stays_normal() -> None:
    # 4 x 5 = 20 over 25: PF 0.8 exactly, not below 0.8.
    account = AccountStats.from_trades(trades(*[4.0, -5.0] * 5), 100.0, 100.0)
    assert account.profit_factor == 0.8
    assert risk_mode(account) is RiskMode.NORMAL


def test_profit_factor_rule_needs_ten_trades() -> None:
    account = AccountStats(trades=9, win_rate=0.5, profit_factor=0.5, losing_streak=1)
    assert risk_mode(account) is RiskMode.NORMAL


def test_flat_record_is_not_defensive() -> None:
    account = AccountStats.from_trades(trades(*[0.0] * 10), 100.0, 100.0)
    assert risk_mode(account) is RiskMode.NORMAL


def test_hand_built_record_makes_aggressive() -> None:
    # Eleven wins of 3 = 33, nine losses 8 x 2.5 + 2 = 22: PF 33 / 22 = 1.5, win rate
    # 11 / 20 = 0.55, the last trade wins. Drawdown (1000 - 971) / 1000 = 0.029 < 0.03.
    pnls = [-2.5] * 8 + [-2.0] + [3.0] * 11
    account = AccountStats.from_trades(trades(*pnls), 1_000.0, 971.0)
    assert account.win_rate == 0.55
    assert account.profit_factor == 1.5
    assert risk_mode(account) is RiskMode.AGGRESSIVE


AGGRESSIVE = {
    "trades": 20,
    "win_rate": 0.55,
    "profit_factor": 1.5,
    "losing_streak": 0,
    "drawdown": 0.0299,
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, RiskMode.AGGRESSIVE),
        ({"drawdown": 0.03}, RiskMode.NORMAL),
        ({"trades": 19}, RiskMode.NORMAL),
        ({"win_rate": 0.5499}, RiskMode.NORMAL),
        ({"profit_factor": 1.4999}, RiskMode.NORMAL),
        ({"profit_factor": math.inf}, RiskMode.AGGRESSIVE),
        ({"profit_factor": None}, RiskMode.NORMAL),
        ({"losing_streak": 5}, RiskMode.DEFENSIVE),
    ],
)
def test_aggressive_boundaries(change: dict[str, float | None], expected: RiskMode) -> None:
    account = AccountStats(**{**AGGRESSIVE, **change})  # type: ignore[arg-type]
    assert risk_mode(account) is expected


@pytest.mark.parametrize(
    ("account", "scale"),
    [
        (AccountStats(drawdown=0.1), 0.5),
        (NEUTRAL, 1.0),
        (AccountStats(**AGGRESSIVE), 1.25),  # type: ignore[arg-type]
    ],
)
def test_risk_scale_per_mode(account: AccountStats, scale: float) -> None:
    msc = controller()
    decision = msc.update(0, account, RANGING, {})
    assert decision.risk_scale == scale
    assert msc.risk_scale() == scale


# Profile activation


@pytest.mark.parametrize(
    ("regime", "active"),
    [
        (TRENDING, {ML_ENSEMBLE, TREND_FOLLOWING}),
        (RANGING, {ML_ENSEMBLE, MEAN_REVERSION}),
        (VOLATILE, {ML_ENSEMBLE}),
    ],
)
def test_profiles_follow_regime(regime: str, active: set[str]) -> None:
    decision = controller().update(0, NEUTRAL, regime, {})
    assert decision.active_profiles == frozenset(active)


def test_profile_below_profit_factor_floor_inactive() -> None:
    # ml_ensemble: 20 / 25 = PF 0.8 < 0.9 over 10 trades.
    decision = controller().update(0, NEUTRAL, TRENDING, {ML_ENSEMBLE: trades(*[4.0, -5.0] * 5)})
    assert decision.active_profiles == frozenset({TREND_FOLLOWING})
    assert "ml_ensemble inactive: profit factor 0.80 < 0.9 over 10 trades" in decision.reason


def test_profile_at_profit_factor_floor_active() -> None:
    # 9 x 5 = 45 over 10 x 5 = 50: PF 0.9 exactly.
    decision = controller().update(0, NEUTRAL, VOLATILE, {ML_ENSEMBLE: trades(*[9.0, -10.0] * 5)})
    assert decision.active_profiles == frozenset({ML_ENSEMBLE})


def test_profile_with_few_trades_gets_benefit_of_doubt() -> None:
    # Nine losses: PF 0, but 9 < 10 trades.
    decision = controller().update(0, NEUTRAL, RANGING, {MEAN_REVERSION: trades(*[-1.0] * 9)})
    assert MEAN_REVERSION in decision.active_profiles


def test_profile_judged_on_last_lookback_trades() -> None:
    # Ten old losses, then ten wins: the last 10 have PF infinite.
    history = trades(*[-1.0] * 10 + [1.0] * 10)
    decision = controller(lookback_trades=10).update(0, NEUTRAL, VOLATILE, {ML_ENSEMBLE: history})
    assert decision.active_profiles == frozenset({ML_ENSEMBLE})


def test_profile_fitting_regime_with_poor_record_inactive() -> None:
    history = {TREND_FOLLOWING: trades(*[-1.0] * 10)}
    decision = controller().update(0, NEUTRAL, TRENDING, history)
    assert decision.active_profiles == frozenset({ML_ENSEMBLE})


def test_best_score_kept_when_no_profile_qualifies() -> None:
    """Volatile regime and ml_ensemble at PF 0.8 over 10 trades: nothing qualifies.

    ml_ensemble: quality (0.8 / 1.8 + 0.5) / 2 = 0.4722, weight 0.5, score 0.4861.
    mean_reversion: five wins, quality 1, weight 5 / 15, score 0.5 + 0.5 / 3 = 0.6667.
    trend_following: no trades, 0.5. The best is mean_reversion.
    """
    history = {ML_ENSEMBLE: trades(*[4.0, -5.0] * 5), MEAN_REVERSION: trades(*[1.0] * 5)}
    decision = controller().update(0, NEUTRAL, VOLATILE, history)
    assert decision.active_profiles == frozenset({MEAN_REVERSION})
    assert decision.scores[ML_ENSEMBLE] == pytest.approx(0.48611, abs=1e-5)
    assert decision.scores[MEAN_REVERSION] == pytest.approx(2 / 3)
    assert decision.scores[TREND_FOLLOWING] == 0.5


def test_equal_scores_keep_earlier_profile() -> None:
    # ml_ensemble fails its record in a volatile regime; the two others both score 0.5, and
    # trend_following comes first in the profile order.
    history = {ML_ENSEMBLE: trades(*[4.0, -5.0] * 5)}
    decision = controller().update(0, NEUTRAL, VOLATILE, history)
    assert decision.active_profiles == frozenset({TREND_FOLLOWING})


def test_only_configured_profiles_considered() -> None:
    msc = controller(profiles=(TREND_FOLLOWING,))
    decision = msc.update(0, NEUTRAL, RANGING, {})
    assert decision.active_profiles == frozenset({TREND_FOLLOWING})
    assert set(decision.scores) == {TREND_FOLLOWING}
    assert msc.allows(0, "BTC/USDT", ML_ENSEMBLE) is False


# Decisions, vetoes and resizes


def test_first_update_and_changes_recorded() -> None:
    log = DecisionLog()
    msc = MetaStrategyController(MetaSettings(), log)
    msc.update(1, NEUTRAL, RANGING, {})
    msc.update(2, NEUTRAL, RANGING, {})  # nothing changed, nothing recorded
    msc.update(3, NEUTRAL, TRENDING, {})  # active set changed
    msc.update(4, AccountStats(drawdown=0.08), TRENDING, {})  # risk mode changed
    assert [d.time_ns for d in log.decisions] == [1, 3, 4]
    assert all(d.action is Action.MODE_CHANGE for d in log.decisions)
    assert all(d.subsystem == "MSC AI" for d in log.decisions)
    assert log.decisions[2].reason.startswith("[enforced] defensive mode: drawdown 8.00% >= 8.00%")
    assert log.decisions[2].numbers["risk_scale"] == 0.5


def test_enforced_vetoes_inactive_profile() -> None:
    msc = controller()
    msc.update(0, NEUTRAL, RANGING, {})
    assert msc.allows(5, "ETH/USDT", TREND_FOLLOWING) is False
    assert msc.allows(5, "ETH/USDT", MEAN_REVERSION) is True
    assert msc.seen == 2
    assert msc.vetoed == 1
    veto = msc.log.decisions[-1]
    assert veto.action is Action.VETO
    assert veto.symbol == "ETH/USDT"
    assert "trend_following is not active" in veto.reason


def test_every_profile_passes_before_first_update() -> None:
    msc = controller()
    assert all(msc.allows(0, "BTC/USDT", profile) for profile in PROFILES)
    assert msc.vetoed == 0
    assert msc.risk_scale() == 1.0


def test_enforced_defensive_halves_risk() -> None:
    msc = controller()
    msc.update(0, AccountStats(drawdown=0.1), RANGING, {})
    assert msc.scale_risk(7, "BTC/USDT", 0.01) == pytest.approx(0.005)
    assert msc.changed == 1
    resize = msc.log.decisions[-1]
    assert resize.action is Action.RESIZE
    assert resize.numbers["scaled_risk"] == pytest.approx(0.005)


def test_normal_mode_leaves_risk_unchanged() -> None:
    msc = controller()
    msc.update(0, NEUTRAL, RANGING, {})
    records = len(msc.log.decisions)
    assert msc.scale_risk(7, "BTC/USDT", 0.01) == 0.01
    assert msc.changed == 0
    assert len(msc.log.decisions) == records


def test_aggressive_scales_risk_up() -> None:
    msc = controller()
    msc.update(0, AccountStats(**AGGRESSIVE), RANGING, {})  # type: ignore[arg-type]
    assert msc.scale_risk(7, "BTC/USDT", 0.01) == pytest.approx(0.0125)


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_non_enforced_never_vetoes_or_rescales(mode: Mode) -> None:
    msc = controller(mode)
    decision = msc.update(0, AccountStats(drawdown=0.1), RANGING, {})
    assert decision.binding is False
    assert decision.risk_mode is RiskMode.DEFENSIVE
    assert decision.risk_scale == 0.5
    assert msc.risk_scale() == 1.0
    assert msc.allows(1, "BTC/USDT", TREND_FOLLOWING) is True
    assert msc.scale_risk(1, "BTC/USDT", 0.01) == 0.01
    assert msc.vetoed == 0
    assert msc.changed == 0
    assert msc.seen == 1
    actions = [d.action for d in msc.log.decisions]
    assert actions == [Action.MODE_CHANGE, Action.APPROVE, Action.APPROVE]
    assert "would veto" in msc.log.decisions[1].reason
    assert "would scale risk by 0.5" in msc.log.decisions[2].reason


def test_enforced_decision_is_binding() -> None:
    assert controller().update(0, NEUTRAL, RANGING, {}).binding is True


def test_off_mode_does_not_run() -> None:
    msc = controller(Mode.OFF)
    decision = msc.update(0, AccountStats(drawdown=0.5), RANGING, {})
    assert isinstance(decision, MetaDecision)
    assert decision.risk_mode is RiskMode.NORMAL
    assert decision.binding is False
    assert msc.allows(0, "BTC/USDT", TREND_FOLLOWING) is True
    assert msc.scale_risk(0, "BTC/USDT", 0.01) == 0.01
    assert msc.seen == 0
    assert msc.log.decisions == []


def test_update_sets_heartbeat() -> None:
    msc = controller()
    msc.update(0, NEUTRAL, RANGING, {})
    assert msc.last_heartbeat is not None


def test_unknown_regime_rejected() -> None:
    with pytest.raises(ConfigurationError, match="regime 'sideways' is unknown"):
        controller().update(0, NEUTRAL, "sideways", {})


def test_unknown_profile_rejected() -> None:
    msc = controller()
    with pytest.raises(ConfigurationError, match="grid"):
        msc.update(0, NEUTRAL, RANGING, {"grid": []})
    with pytest.raises(ConfigurationError, match="grid"):
        msc.allows(0, "BTC/USDT", "grid")


@pytest.mark.parametrize("risk", [-0.01, math.nan, math.inf])
def test_invalid_risk_rejected(risk: float) -> None:
    with pytest.raises(ConfigurationError, match="risk"):
        controller().scale_risk(0, "BTC/USDT", risk)


# Settings


def test_settings_defaults() -> None:
    settings = MetaSettings()
    msc = MetaStrategyController(settings)
    assert settings.mode is Mode.ENFORCED
    assert msc.cadence == 24
    assert settings.lookback_trades == 30
    assert settings.profiles == PROFILES
    assert msc.short_name == "MSC AI"


@pytest.mark.parametrize(
    "fields",
    [
        {"aggressive_risk_scale": 1.6},
        {"defensive_risk_scale": 0.0},
        {"defensive_risk_scale": 1.2},  # above the normal scale of 1.0
        {"aggressive_max_drawdown": 0.08},  # not below defensive_drawdown
        {"aggressive_profit_factor": 0.8},  # not above defensive_profit_factor
        {"profiles": ("grid",)},
        {"profiles": (ML_ENSEMBLE, ML_ENSEMBLE)},
        {"profiles": ()},
        {"cadence": 0},
        {"unknown_field": 1},
    ],
)
def test_settings_invalid_values_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MetaSettings(**fields)


def test_settings_frozen() -> None:
    settings = MetaSettings()
    with pytest.raises(ValidationError):
        settings.cadence = 5  # type: ignore[misc]
