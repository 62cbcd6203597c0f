"""Model Supervisor: PSI, causal hit rate and Brier score, bias, weights, vetoes and modes."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from quantum_trader.core.types import PositionSide
from quantum_trader.engine.decisions import Action
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.feature_drift import (
    PSI_EPSILON,
    drift_by_fold,
    feature_drift,
    population_stability_index,
    psi_series,
)
from quantum_trader.subsystems.model_health import (
    SupervisionArrays,
    SupervisorSettings,
    VetoReason,
    supervise,
)
from quantum_trader.subsystems.model_supervisor import ModelSupervisor

LONG = PositionSide.LONG
SHORT = PositionSide.SHORT
HOUR_NS = 3_600 * 1_000_000_000


def periodic(pattern: list[float], rows: int) -> np.ndarray:
    return np.resize(np.asarray(pattern, dtype=np.float64), rows)


def settings(**overrides: Any) -> SupervisorSettings:
    return SupervisorSettings(**overrides)


# --- population stability index -------------------------------------------------------------


def test_psi_identical_samples_is_zero() -> None:
    sample = np.arange(1.0, 101.0)
    assert population_stability_index(sample, sample) == pytest.approx(0.0, abs=1e-12)


def test_psi_four_bin_hand_example() -> None:
    # Quantiles of 1..8 at 0.25, 0.5, 0.75 (linear): 2.75, 4.5, 6.25, so each bin contains 2/8.
    # The actual sample puts 1, 3, 5 in the first three bins and 7, 7, 8, 8, 8 in the last:
    # 3 x (0.125 - 0.25) ln(0.5) + (0.625 - 0.25) ln(2.5)
    # = 0.2599302 + 0.3436090 = 0.6035392
    expected = np.arange(1.0, 9.0)
    actual = np.array([1.0, 3.0, 5.0, 7.0, 7.0, 8.0, 8.0, 8.0])
    assert population_stability_index(expected, actual, bins=4) == pytest.approx(0.6035392)


def test_psi_empty_bin_uses_epsilon() -> None:
    # Shares 0.25, 0.25, 0.5, 0 against 0.25 each; the empty bin counts as 1e-4:
    # 0.25 ln 2 + (1e-4 - 0.25) ln(1e-4 / 0.25) = 0.1732868 + 1.9552291 = 2.1285159
    expected = np.arange(1.0, 9.0)
    actual = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 5.0, 6.0])
    assert PSI_EPSILON == 1e-4
    assert population_stability_index(expected, actual, bins=4) == pytest.approx(2.1285159)


def test_feature_drift_maps_names_to_psi() -> None:
    train = np.column_stack([np.arange(1.0, 9.0), np.arange(1.0, 9.0)])
    recent = np.column_stack([np.arange(1.0, 9.0), [1.0, 3.0, 5.0, 7.0, 7.0, 8.0, 8.0, 8.0]])
    drift = feature_drift(train, recent, ["rsi", "atr"], bins=4)
    assert drift["rsi"] == pytest.approx(0.0, abs=1e-12)
    assert drift["atr"] == pytest.approx(0.6035392)


def test_feature_drift_rejects_name_count() -> None:
    with pytest.raises(ConfigurationError, match="one name per column"):
        feature_drift(np.zeros((10, 2)), np.zeros((10, 2)), ["rsi"])


def test_psi_series_detects_two_std_shift() -> None:
    # For a normal feature and 10 quantile bins, the population PSI of a window in which a
    # share f has shifted by 2 std is 0.04 at f = 0.1 (20 of 200 rows) and 0.45 at f = 0.4
    # (80 rows); it passes retrain_psi = 0.2 near f = 0.25, i.e. about 50 rows after the shift.
    rng = np.random.default_rng(0)
    train = rng.normal(0.0, 1.0, 1000)
    series = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(2.0, 1.0, 500)])
    psi = psi_series(train, series, window=200)
    first = int(np.argmax(psi > 0.2))
    assert np.isnan(psi[198])
    assert np.nanmax(psi[:1000]) < 0.2
    assert 1000 + 20 <= first <= 1000 + 80


def test_drift_by_fold_compares_test_rows_with_training() -> None:
    rng = np.random.default_rng(1)
    steady = rng.normal(0.0, 1.0, 2000)
    shifted = np.concatenate([rng.normal(0.0, 1.0, 1500), rng.normal(2.0, 1.0, 500)])
    times = np.arange(2000, dtype=np.int64) * HOUR_NS
    fold = SimpleNamespace(
        train_start=pd.Timestamp(0, unit="ns", tz="UTC"),
        train_end=pd.Timestamp(1000 * HOUR_NS, unit="ns", tz="UTC"),
        test_start=pd.Timestamp(1000 * HOUR_NS, unit="ns", tz="UTC"),
        test_end=pd.Timestamp(2000 * HOUR_NS, unit="ns", tz="UTC"),
    )
    drift = drift_by_fold(np.column_stack([steady, shifted]), times, [fold], window=200)
    assert np.isnan(drift[:1000]).all()
    assert np.isfinite(drift[1000:]).all()
    # Fully shifted window: the population PSI of a 2 std shift is 3.31.
    assert drift[1999] > 1.0


# --- causal statistics ---------------------------------------------------------------------


def random_inputs(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) > 0.5).astype(np.float64)
    votes = {name: rng.random(rows) for name in ("lightgbm", "linear", "xgboost")}
    ensemble = np.mean(list(votes.values()), axis=0)
    return votes, ensemble, labels


def assert_rows_equal(a: SupervisionArrays, b: SupervisionArrays, last: int) -> None:
    rows = slice(0, last + 1)
    for table in ("hit_rate", "brier", "samples", "long_share", "flags", "weights"):
        for name, values in getattr(a, table).items():
            np.testing.assert_array_equal(values[rows], getattr(b, table)[name][rows])
    np.testing.assert_array_equal(a.reweighted[rows], b.reweighted[rows])
    np.testing.assert_array_equal(a.veto_reason[rows], b.veto_reason[rows])


def test_outcome_unused_before_horizon_passes() -> None:
    # Row i may read the labels of rows <= i - horizon only; later labels are still unknown.
    horizon, row = 4, 400
    s = settings(window=100, min_samples=20, bias_window=30)
    votes, ensemble, labels = random_inputs(600, seed=3)
    full = supervise(votes, ensemble, labels, horizon, s)

    flipped = labels.copy()
    flipped[row - horizon + 1 :] = 1.0 - flipped[row - horizon + 1 :]
    assert_rows_equal(full, supervise(votes, ensemble, flipped, horizon, s), row)

    unknown = labels.copy()
    unknown[row - horizon + 1 :] = np.nan
    assert_rows_equal(full, supervise(votes, ensemble, unknown, horizon, s), row)


def test_outcome_used_from_horizon_on() -> None:
    # The label of row i - horizon is known at row i, so flipping it must change row i.
    horizon, row = 4, 400
    s = settings(window=100, min_samples=20, bias_window=30)
    votes, ensemble, labels = random_inputs(600, seed=3)
    flipped = labels.copy()
    flipped[row - horizon] = 1.0 - flipped[row - horizon]
    before = supervise(votes, ensemble, labels, horizon, s)
    after = supervise(votes, ensemble, flipped, horizon, s)
    assert before.hit_rate["ensemble"][row - 1] == after.hit_rate["ensemble"][row - 1]
    assert before.hit_rate["ensemble"][row] != after.hit_rate["ensemble"][row]


def test_always_wrong_ensemble_vetoed_after_min_samples() -> None:
    # Labels 1, 1, 0, 0 repeat; the ensemble outputs 0.45 before a rise and 0.55 before a fall, so
    # it is always wrong: hit rate 0 and Brier score 0.55^2 = 0.3025. With horizon 4, row i has
    # i - 3 resolved predictions, reaching min_samples = 50 at row 53.
    labels = periodic([1.0, 1.0, 0.0, 0.0], 200)
    ensemble = np.where(labels > 0.5, 0.45, 0.55)
    result = supervise({"linear": ensemble}, ensemble, labels, 4, settings())
    assert result.samples["ensemble"][53] == 50
    assert result.hit_rate["ensemble"][53] == 0.0
    assert result.brier["ensemble"][53] == pytest.approx(0.3025)
    assert not result.veto[52]
    assert result.veto[53]
    assert result.veto_reason[53] & VetoReason.LOW_HIT_RATE
    assert result.veto_reason[53] & VetoReason.HIGH_BRIER


# --- directional bias ------------------------------------------------------------------------


def test_constant_long_ensemble_vetoed_at_min_samples() -> None:
    # p = 0.9 on every row: 50 long calls out of 50 at row 49 (min_samples = bias_window = 50).
    labels = periodic([1.0, 1.0, 0.0, 0.0], 200)
    ensemble = np.full(200, 0.9)
    result = supervise({"linear": ensemble}, ensemble, labels, 1, settings())
    assert not result.veto[48]
    assert result.veto[49]
    assert result.veto_reason[49] == VetoReason.BIASED_LONG | VetoReason.NO_HEALTHY_MEMBER
    assert result.long_share["ensemble"][49] == 1.0


def test_member_turning_long_flagged_on_36th_row() -> None:
    # Member "biased" alternates 0.6 / 0.4 (long on even rows) until row 499, then outputs 0.9.
    # At row 499 + k the last 50 calls contain k longs plus 7 longs from the even rows in
    # 450 + k .. 499 (for k = 35 and 36). k = 35: 42 / 50 = 0.84, not above 0.85;
    # k = 36: 43 / 50 = 0.86, above. So the first flagged row is 535.
    rows = 700
    labels = periodic([1.0, 1.0, 0.0, 0.0], rows)
    biased = np.where(np.arange(rows) % 2 == 0, 0.6, 0.4)
    biased[500:] = 0.9
    sound = np.where(labels > 0.5, 0.8, 0.2)
    votes = {"biased": biased, "sound": sound}
    result = supervise(votes, sound, labels, 1, settings())
    assert result.long_share["biased"][534] == pytest.approx(0.84)
    assert not result.flags["biased"][534] & VetoReason.BIASED_LONG
    assert result.flags["biased"][535] & VetoReason.BIASED_LONG
    assert result.weights["biased"][535] == 0.0
    assert result.weights["sound"][535] == 1.0


# --- weights -------------------------------------------------------------------------------

# Period 10, labels 1, 0, 1, 0, ... Member "a" calls right on positions 0-5 and wrong on 6-9
# (6 hits in any 10 rows); "b" right on 0-4, wrong on 5-9 (5 hits). Calls are 0.6 or 0.4.
# Brier: a = (6 x 0.16 + 4 x 0.36) / 10 = 0.24, b = (5 x 0.16 + 5 x 0.36) / 10 = 0.26.
# Long shares: a 5 / 10, b 6 / 10. Both are healthy with window = min_samples = 10.
LABELS_10 = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
A_CALLS = [0.6, 0.4, 0.6, 0.4, 0.6, 0.4, 0.4, 0.6, 0.4, 0.6]
B_CALLS = [0.6, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6, 0.4, 0.6]


def skill_inputs() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    votes = {"a": periodic(A_CALLS, 60), "b": periodic(B_CALLS, 60)}
    ensemble = periodic([0.57, 0.43], 60)
    return votes, ensemble, periodic(LABELS_10, 60)


def skill_settings(**overrides: Any) -> SupervisorSettings:
    return settings(window=10, min_samples=10, bias_window=10, **overrides)


def test_weights_follow_skill_with_floor() -> None:
    # K = 2, floor 0.1: skill a = 0.1, b = 0; w_a = 0.1 / 2 + 0.9 x 1 = 0.95, w_b = 0.05.
    votes, ensemble, labels = skill_inputs()
    result = supervise(votes, ensemble, labels, 1, skill_settings())
    assert result.hit_rate["a"][30] == pytest.approx(0.6)
    assert result.brier["b"][30] == pytest.approx(0.26)
    assert result.weights["a"][30] == pytest.approx(0.95)
    assert result.weights["b"][30] == pytest.approx(0.05)
    # Row 35: a outputs 0.4, b 0.6, the ensemble 0.43; the shift from equal weights is
    # (0.95 - 0.5) x 0.4 + (0.05 - 0.5) x 0.6 = -0.09, so 0.43 - 0.09 = 0.34.
    assert result.reweighted[35] == pytest.approx(0.34)


def test_weights_equal_before_min_samples() -> None:
    votes, ensemble, labels = skill_inputs()
    result = supervise(votes, ensemble, labels, 1, skill_settings())
    # Row 9 has 9 resolved predictions, one short of min_samples.
    assert result.weights["a"][9] == 0.5
    assert result.weights["b"][9] == 0.5


def test_weights_sum_to_one_and_respect_floor() -> None:
    s = settings(window=60, min_samples=20, bias_window=20, weight_floor=0.3)
    for seed in range(5):
        votes, ensemble, labels = random_inputs(400, seed)
        result = supervise(votes, ensemble, labels, 2, s)
        stacked = np.stack([result.weights[m] for m in result.members])
        healthy = np.stack([result.flags[m] == 0 for m in result.members])
        count = healthy.sum(axis=0)
        assert np.allclose(stacked.sum(axis=0), 1.0)
        some = count > 0
        floor = 0.3 / np.maximum(count, 1)
        for k in range(len(result.members)):
            kept = healthy[k] & some
            dropped = ~healthy[k] & some
            assert (stacked[k][kept] >= floor[kept] - 1e-12).all()
            assert (stacked[k][dropped] == 0.0).all()


def test_reweighted_is_nan_without_votes() -> None:
    votes, ensemble, labels = skill_inputs()
    votes["a"][40] = np.nan
    result = supervise(votes, ensemble, labels, 1, skill_settings())
    assert math.isnan(result.reweighted[40])


def test_cadence_holds_statistics() -> None:
    votes, ensemble, labels = random_inputs(300, seed=5)
    every = supervise(votes, ensemble, labels, 4, settings(window=50, min_samples=20))
    held = supervise(votes, ensemble, labels, 4, settings(window=50, min_samples=20, cadence=5))
    assert held.hit_rate["linear"][107] == every.hit_rate["linear"][105]
    assert held.weights["linear"][109] == every.weights["linear"][105]


def test_settings_reject_min_samples_above_window() -> None:
    with pytest.raises(ValidationError, match="min_samples"):
        SupervisorSettings(window=40, min_samples=50)


def test_supervise_rejects_mismatched_lengths() -> None:
    with pytest.raises(ConfigurationError, match="one value per candle row"):
        supervise({"linear": np.zeros(5)}, np.zeros(6), np.zeros(6), 1, settings())


# --- the subsystem ---------------------------------------------------------------------------


def wrong_supervisor(mode: Mode) -> ModelSupervisor:
    labels = periodic([1.0, 1.0, 0.0, 0.0], 200)
    ensemble = np.where(labels > 0.5, 0.45, 0.55)
    supervisor = ModelSupervisor(settings(mode=mode))
    supervisor.update("BTC/USDT", {"linear": ensemble}, ensemble, labels, 4)
    return supervisor


def test_observe_mode_records_without_vetoing() -> None:
    supervisor = wrong_supervisor(Mode.OBSERVE)
    verdict = supervisor.review(1, "BTC/USDT", 60, SHORT)
    assert verdict.veto
    assert not verdict.binding
    assert not verdict.blocks
    assert supervisor.vetoed == 0
    assert supervisor.seen == 1
    assert supervisor.flagged == 1
    assert len(supervisor.log.decisions) == 1
    assert supervisor.log.decisions[0].action is Action.APPROVE
    assert supervisor.log.decisions[0].reason.startswith("[observe] would block")


def test_enforced_mode_vetoes_and_counts() -> None:
    supervisor = wrong_supervisor(Mode.ENFORCED)
    verdict = supervisor.review(1, "BTC/USDT", 60, SHORT)
    assert verdict.blocks
    assert "hit rate 0.000 below 0.48" in verdict.reason
    assert supervisor.vetoed == 1
    assert supervisor.log.decisions[0].action is Action.VETO


def test_off_mode_does_not_run() -> None:
    supervisor = wrong_supervisor(Mode.OFF)
    verdict = supervisor.review(1, "BTC/USDT", 60, SHORT)
    assert not verdict.veto
    assert supervisor.seen == 0
    assert supervisor.log.decisions == []


def test_long_bias_does_not_veto_short_entry() -> None:
    labels = periodic([1.0, 1.0, 0.0, 0.0], 200)
    sound = np.where(labels > 0.5, 0.8, 0.2)
    supervisor = ModelSupervisor(settings())
    supervisor.update("ETH/USDT", {"sound": sound}, np.full(200, 0.9), labels, 1)
    # Row 49: bias active (50 calls) but only 49 resolved predictions, so no decay yet.
    long_verdict = supervisor.review(1, "ETH/USDT", 49, LONG)
    short_verdict = supervisor.review(2, "ETH/USDT", 49, SHORT)
    assert long_verdict.veto
    assert "long share 1.00 above max_bias 0.85" in long_verdict.reason
    assert not short_verdict.veto


def test_changes_entry_at_threshold() -> None:
    # Ensemble 0.57 at rows 30 and 35. Row 35: a 0.4, b 0.6, weights 0.95 / 0.05, so the shift
    # is -0.09 and 0.57 becomes 0.48: the long entry at 0.56 is dropped (changed). Row 30: both
    # members say 0.6, so the shift is 0 and nothing changes. Row 37: both 0.6 again.
    votes, _, labels = skill_inputs()
    ensemble = periodic([0.57, 0.43, 0.57, 0.43, 0.57, 0.57, 0.43, 0.43, 0.57, 0.43], 60)
    supervisor = ModelSupervisor(skill_settings())
    supervisor.update("SOL/USDT", votes, ensemble, labels, 1)
    assert supervisor.changes_entry("SOL/USDT", 35, LONG, 0.56)
    assert not supervisor.changes_entry("SOL/USDT", 30, LONG, 0.56)
    assert not supervisor.changes_entry("SOL/USDT", 37, LONG, 0.56)
    verdict = supervisor.review(1, "SOL/USDT", 35, LONG, entry_confidence=0.56)
    assert verdict.changed
    assert verdict.blocks
    assert supervisor.changed + supervisor.vetoed == 1


def test_equal_weights_never_change_entry() -> None:
    """Before min_samples the weights are equal, so the reweighted value is the ensemble."""
    votes, ensemble, labels = skill_inputs()
    result = supervise(votes, ensemble, labels, 1, settings(min_samples=50, window=60))
    assert result.reweighted[20] == ensemble[20]


def test_decay_requests_retraining_once() -> None:
    supervisor = wrong_supervisor(Mode.OBSERVE)
    supervisor.review(1, "BTC/USDT", 60, SHORT)
    supervisor.review(2, "BTC/USDT", 61, SHORT)
    assert len(supervisor.retrain_requests) == 1
    assert supervisor.retrain_requests[0].model == "linear"
    assert supervisor.retrain_requests[0].time_ns == 1


def test_drift_vetoes_and_requests_retraining() -> None:
    # Drift 0.22: above retrain_psi 0.2, below psi_threshold 0.25; drift 0.3: above both.
    votes, ensemble, labels = skill_inputs()
    drift = np.full(60, 0.05)
    drift[40] = 0.22
    drift[45] = 0.3
    config = skill_settings(psi_threshold=0.25)
    supervisor = ModelSupervisor(config)
    supervisor.attach("XRP/USDT", supervise(votes, ensemble, labels, 1, config, drift=drift))
    assert not supervisor.review(1, "XRP/USDT", 40, LONG).veto
    assert supervisor.retrain_requests[0].model == "ensemble"
    verdict = supervisor.review(2, "XRP/USDT", 45, LONG)
    assert verdict.veto
    assert "feature PSI 0.300 above 0.25" in verdict.reason


def test_check_drift_requests_retraining() -> None:
    supervisor = ModelSupervisor(settings(psi_bins=4))
    train = np.column_stack([np.arange(1.0, 9.0)])
    recent = np.column_stack([[1.0, 3.0, 5.0, 7.0, 7.0, 8.0, 8.0, 8.0]])
    psi = supervisor.check_drift(7, "BNB/USDT", train, recent, ["atr"])
    assert psi["atr"] == pytest.approx(0.6035392)
    assert len(supervisor.retrain_requests) == 1
    assert "atr" in supervisor.retrain_requests[0].reason


def test_review_rejects_unknown_symbol() -> None:
    with pytest.raises(ConfigurationError, match="no arrays for ADA/USDT"):
        ModelSupervisor(settings()).review(1, "ADA/USDT", 0, LONG)


def test_drift_without_threshold_only_requests_retraining() -> None:
    """By default (psi_threshold None) a PSI of 0.3 raises a retrain request but no veto."""
    votes, ensemble, labels = skill_inputs()
    drift = np.full(60, 0.05)
    drift[45] = 0.3
    supervisor = ModelSupervisor(skill_settings())
    supervisor.attach(
        "XRP/USDT", supervise(votes, ensemble, labels, 1, skill_settings(), drift=drift)
    )
    verdict = supervisor.review(2, "XRP/USDT", 45, LONG)
    assert "feature PSI" not in verdict.reason
    assert len(supervisor.retrain_requests) == 1
    assert supervisor.retrain_requests[0].model == "ensemble"
