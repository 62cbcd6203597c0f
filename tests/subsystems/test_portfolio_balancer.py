"""PBA: every portfolio limit, the resize rule, correlated clusters, modes and counters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantum_trader.core.types import MarketType, PositionSide
from quantum_trader.engine.decisions import Action
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.portfolio_balancer import (
    BalancerSettings,
    Candidate,
    OpenExposure,
    PortfolioBalancer,
    correlation_matrix,
)

LONG = PositionSide.LONG
SHORT = PositionSide.SHORT
EQUITY = 10_000.0

# Return patterns of period 4 whose means over whole periods are 0 and whose products sum to 0,
# so they are uncorrelated: X = [1, -1, 1, -1] and Y = [1, 1, -1, -1], times 1%.
X = np.tile([0.01, -0.01, 0.01, -0.01], 50)
Y = np.tile([0.01, 0.01, -0.01, -0.01], 50)


def make_balancer(market_type: MarketType = MarketType.FUTURES, **fields: Any) -> PortfolioBalancer:
    return PortfolioBalancer(BalancerSettings(**fields), market_type)


def candidate(
    symbol: str, notional: float, side: PositionSide = LONG, score: float = 0.5
) -> Candidate:
    return Candidate(symbol, side, notional, score)


def longs(*symbols: str, notional: float = 2_500.0) -> list[OpenExposure]:
    return [OpenExposure(symbol, LONG, notional) for symbol in symbols]


# Settings.


def test_gross_limit_default_by_market() -> None:
    assert BalancerSettings().gross_limit(MarketType.SPOT) == 1.0
    assert BalancerSettings().gross_limit(MarketType.FUTURES) == 1.5
    assert BalancerSettings(max_gross_exposure=2.0).gross_limit(MarketType.SPOT) == 2.0


def test_min_samples_above_window_invalid() -> None:
    with pytest.raises(ValueError, match="min_correlation_samples=50 is above"):
        BalancerSettings(correlation_window=40, min_correlation_samples=50)


def test_due_every_cadence_rows() -> None:
    balancer = make_balancer(cadence=24)
    assert balancer.due(0)
    assert not balancer.due(23)
    assert balancer.due(48)


# Count limits.


def test_open_positions_limit_blocks() -> None:
    balancer = make_balancer()
    positions = longs("A", "B", "C", "D", "E", notional=1_000.0)
    decision = balancer.admit(0, [candidate("F", 1_000.0)], positions, EQUITY)
    assert decision.admitted == []
    assert decision.blocked["F"] == "max_open_positions 5: 5 open"


def test_second_position_on_symbol_blocked() -> None:
    balancer = make_balancer()
    decision = balancer.admit(0, [candidate("A", 1_000.0)], longs("A", notional=1_000.0), EQUITY)
    assert decision.blocked["A"] == "max_positions_per_symbol 1: 1 open on A"


def test_duplicate_candidate_blocked_by_symbol_limit() -> None:
    balancer = make_balancer()
    batch = [candidate("A", 1_000.0, score=0.9), candidate("A", 1_000.0, score=0.1)]
    decision = balancer.admit(0, batch, [], EQUITY)
    assert [c.score for c in decision.admitted] == [0.9]
    assert decision.blocked["A"] == "max_positions_per_symbol 1: 1 open on A"


# Notional limits, with equity 10000.


def test_concentration_resizes_to_fit() -> None:
    # 3000 > 0.25 x 10000 = 2500; 2500 >= 0.5 x 3000 = 1500, so it is resized to 2500.
    balancer = make_balancer()
    decision = balancer.admit(0, [candidate("A", 3_000.0)], [], EQUITY)
    assert decision.admitted == [candidate("A", 2_500.0)]
    assert decision.resized == {"A": 3_000.0}
    assert balancer.counters() == {"seen": 1, "changed": 1, "vetoed": 0}
    assert balancer.log.decisions[0].action is Action.RESIZE


def test_concentration_blocks_below_resize_share() -> None:
    # 6000 is 0.6 x equity; 2500 < 0.5 x 6000 = 3000, so it is blocked.
    balancer = make_balancer()
    decision = balancer.admit(0, [candidate("A", 6_000.0)], [], EQUITY)
    assert decision.admitted == []
    reason = decision.blocked["A"]
    assert reason.startswith("max_concentration 0.25: notional 6000 would take it to 0.6")
    assert "2500" in reason
    assert balancer.counters() == {"seen": 1, "changed": 0, "vetoed": 1}
    assert balancer.log.decisions[0].action is Action.VETO
    assert balancer.log.decisions[0].numbers["fit"] == 2_500.0


def test_gross_exposure_blocks() -> None:
    # Gross 4 x 2500 = 10000 (net 0); +2500 gives 1.25 x equity > 1.1. Room 1000 < 1250.
    balancer = make_balancer(max_gross_exposure=1.1)
    positions = [
        OpenExposure("A", LONG, 2_500.0),
        OpenExposure("B", SHORT, 2_500.0),
        OpenExposure("C", LONG, 2_500.0),
        OpenExposure("D", SHORT, 2_500.0),
    ]
    decision = balancer.admit(0, [candidate("E", 2_500.0)], positions, EQUITY)
    assert decision.blocked["E"].startswith("max_gross_exposure 1.1: notional 2500")
    assert "1.25 x equity" in decision.blocked["E"]


def test_gross_exposure_resizes_with_lower_share() -> None:
    # Same book with min_resize_share 0.4: room 1000 >= 0.4 x 2500 = 1000, so 1000 is admitted.
    balancer = make_balancer(max_gross_exposure=1.1, min_resize_share=0.4)
    positions = [
        OpenExposure(s, side, 2_500.0) for s, side in zip("ABCD", [LONG, SHORT] * 2, strict=True)
    ]
    decision = balancer.admit(0, [candidate("E", 2_500.0)], positions, EQUITY)
    assert decision.admitted[0].notional == pytest.approx(1_000.0)


def test_futures_default_gross_admits_beyond_one() -> None:
    # Gross 10000 + 2500 = 1.25 x equity is within the futures default of 1.5.
    balancer = make_balancer()
    positions = [
        OpenExposure(s, side, 2_500.0) for s, side in zip("ABCD", [LONG, SHORT] * 2, strict=True)
    ]
    decision = balancer.admit(0, [candidate("E", 2_500.0)], positions, EQUITY)
    assert decision.admitted == [candidate("E", 2_500.0)]


def test_spot_default_gross_is_one() -> None:
    # Spot: gross 4 x 2500 = 1.0 x equity already, so the room is 0 and nothing fits.
    balancer = make_balancer(MarketType.SPOT)
    decision = balancer.admit(0, [candidate("E", 1_000.0)], longs(*"ABCD"), EQUITY)
    assert decision.blocked["E"].startswith("max_gross_exposure 1: notional 1000")


def test_net_exposure_blocks_same_side() -> None:
    # Net long 7500; max 0.8 leaves room 500 < 0.5 x 2500. A long would make net 1.0 x equity.
    balancer = make_balancer(max_net_exposure=0.8)
    decision = balancer.admit(0, [candidate("D", 2_500.0)], longs("A", "B", "C"), EQUITY)
    assert decision.blocked["D"].startswith("max_net_exposure 0.8: notional 2500")
    assert "1 x equity" in decision.blocked["D"]


def test_net_exposure_admits_hedge() -> None:
    # A short of 2500 lowers the net from 0.75 to 0.5 x equity.
    balancer = make_balancer(max_net_exposure=0.8)
    decision = balancer.admit(0, [candidate("D", 2_500.0, SHORT)], longs("A", "B", "C"), EQUITY)
    assert decision.admitted == [candidate("D", 2_500.0, SHORT)]


def test_net_exposure_resizes() -> None:
    # Max 0.9: room 9000 - 7500 = 1500 >= 1250, so the long is resized to 1500.
    balancer = make_balancer(max_net_exposure=0.9)
    decision = balancer.admit(0, [candidate("D", 2_500.0)], longs("A", "B", "C"), EQUITY)
    assert decision.admitted[0].notional == pytest.approx(1_500.0)
    assert decision.resized == {"D": 2_500.0}


def test_net_beyond_limit_needs_large_enough_hedge() -> None:
    # Equity 5000 and net long 7500 (1.5 x equity). A short x must bring it to <= 5000, so
    # x >= 2500. Short 1000 leaves 6500 = 1.3 x equity: blocked. Short 3000 leaves 0.9: admitted.
    balancer = make_balancer(max_gross_exposure=3.0, max_concentration=1.0)
    positions = longs("A", "B", "C")
    small = balancer.admit(0, [candidate("D", 1_000.0, SHORT)], positions, 5_000.0)
    assert small.blocked["D"] == (
        "max_net_exposure 1: the net exposure stays at 1.3 x equity after this entry"
    )
    large = balancer.admit(0, [candidate("D", 3_000.0, SHORT)], positions, 5_000.0)
    assert large.admitted == [candidate("D", 3_000.0, SHORT)]


# Ranking.


def test_best_score_admitted_first() -> None:
    balancer = make_balancer(max_open_positions=1)
    batch = [candidate("A", 1_000.0, score=0.2), candidate("B", 1_000.0, score=0.7)]
    decision = balancer.admit(0, batch, [], EQUITY)
    assert [c.symbol for c in decision.admitted] == ["B"]
    assert decision.blocked["A"] == "max_open_positions 1: 1 open"


def test_tie_broken_by_symbol_and_nan_last() -> None:
    balancer = make_balancer(max_open_positions=2)
    batch = [
        candidate("C", 1_000.0, score=math.nan),
        candidate("B", 1_000.0, score=0.5),
        candidate("A", 1_000.0, score=0.5),
    ]
    decision = balancer.admit(0, batch, [], EQUITY)
    assert [c.symbol for c in decision.admitted] == ["A", "B"]
    assert "C" in decision.blocked


# Correlated clusters.


def test_correlation_of_hand_built_series() -> None:
    # corr(X, X + 0.1 Y) = 1 / sqrt(1.01) = 0.995037 because X and Y are uncorrelated with
    # equal variance; corr(Y, X + 0.1 Y) = 0.1 / sqrt(1.01) = 0.099504.
    matrix = correlation_matrix(np.column_stack([X, X + 0.1 * Y, Y]), min_samples=30)
    assert matrix[0, 1] == pytest.approx(0.995037, abs=1e-6)
    assert matrix[1, 2] == pytest.approx(0.099504, abs=1e-6)
    assert matrix[0, 2] == pytest.approx(0.0, abs=1e-12)
    assert matrix[1, 1] == 1.0


def test_nearly_identical_series_form_cluster() -> None:
    balancer = make_balancer()
    state = balancer.update_correlations(0, {"A": X, "B": X + 0.1 * Y, "C": Y})
    assert state.clusters == (frozenset({"A", "B"}), frozenset({"C"}))
    assert balancer.cluster_of("B") == frozenset({"A", "B"})
    assert balancer.cluster_of("UNKNOWN") == frozenset({"UNKNOWN"})


def test_cluster_limit_blocks_third_member() -> None:
    # A, B = X + 0.1 Y and E = X - 0.1 Y all correlate above 0.98, so they form one cluster.
    balancer = make_balancer()
    balancer.update_correlations(0, {"A": X, "B": X + 0.1 * Y, "C": Y, "E": X - 0.1 * Y})
    batch = [
        candidate("B", 1_000.0, score=0.9),
        candidate("E", 1_000.0, score=0.8),
        candidate("C", 1_000.0, score=0.7),
    ]
    decision = balancer.admit(0, batch, longs("A", notional=1_000.0), EQUITY)
    assert [c.symbol for c in decision.admitted] == ["B", "C"]
    assert decision.blocked["E"] == (
        "max_per_cluster 2: the correlated cluster {A, B, E} holds 2 positions"
    )


def test_single_linkage_chains_clusters() -> None:
    # corr(X, X + Y) = corr(Y, X + Y) = 1 / sqrt(2) = 0.7071 > 0.7, corr(X, Y) = 0:
    # A and C link only through B, and still share one cluster.
    balancer = make_balancer(correlation_threshold=0.7)
    state = balancer.update_correlations(0, {"A": X, "B": X + Y, "C": Y})
    assert state.clusters == (frozenset({"A", "B", "C"}),)


def test_too_few_returns_do_not_link() -> None:
    # 20 returns are below min_correlation_samples 30.
    balancer = make_balancer()
    state = balancer.update_correlations(0, {"A": X[:20], "B": X[:20]})
    assert state.clusters == (frozenset({"A"}), frozenset({"B"}))
    assert math.isnan(state.matrix[0, 1])


def test_missing_returns_use_common_rows() -> None:
    # B equals A except for NaN rows, so the correlation over the common rows is 1.
    with_gaps = X.copy()
    with_gaps[::7] = np.nan
    balancer = make_balancer()
    state = balancer.update_correlations(0, {"A": X, "B": with_gaps})
    assert state.matrix[0, 1] == pytest.approx(1.0)


def test_constant_series_not_linked() -> None:
    balancer = make_balancer()
    state = balancer.update_correlations(0, {"A": X, "B": np.full(200, 0.001)})
    assert math.isnan(state.matrix[0, 1])


def test_window_reads_last_returns() -> None:
    # The last 200 returns of B equal A's; older ones are opposite and fall outside the window.
    balancer = make_balancer()
    state = balancer.update_correlations(0, {"A": X, "B": np.concatenate([-X, X])})
    assert state.matrix[0, 1] == pytest.approx(1.0)


# Modes and bad input.


def test_advisory_verdict_not_binding() -> None:
    balancer = make_balancer(mode=Mode.ADVISORY)
    decision = balancer.admit(0, [candidate("A", 6_000.0)], [], EQUITY)
    assert decision.binding is False
    assert "A" in decision.blocked
    assert balancer.counters() == {"seen": 1, "changed": 0, "vetoed": 0}
    entry = balancer.log.decisions[0]
    assert entry.action is Action.APPROVE
    assert entry.reason.startswith("[advisory] not enforced, would be blocked: max_concentration")


def test_off_passes_everything_through() -> None:
    balancer = make_balancer(mode=Mode.OFF)
    batch = [candidate("A", 6_000.0)]
    decision = balancer.admit(0, batch, [], EQUITY)
    assert decision.admitted == batch
    assert decision.binding is False
    assert balancer.counters() == {"seen": 0, "changed": 0, "vetoed": 0}
    assert balancer.log.decisions == []


@pytest.mark.parametrize("equity", [math.nan, 0.0, -1.0])
def test_invalid_equity_blocks_all(equity: float) -> None:
    decision = make_balancer().admit(0, [candidate("A", 100.0)], [], equity)
    assert decision.blocked["A"] == f"invalid equity {equity!r}; no entry"


def test_invalid_candidate_notional_blocked() -> None:
    decision = make_balancer().admit(0, [candidate("A", math.nan)], [], EQUITY)
    assert decision.blocked["A"] == "invalid notional nan; no entry"


def test_invalid_open_notional_blocks_all() -> None:
    positions = [OpenExposure("A", LONG, math.inf)]
    decision = make_balancer().admit(0, [candidate("B", 100.0)], positions, EQUITY)
    assert decision.blocked["B"] == "invalid notional inf of the open position on A; no entry"


# Property test: after admission every limit holds.


@st.composite
def balancer_cases(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "max_open_positions": draw(st.integers(1, 8)),
        "max_positions_per_symbol": draw(st.integers(1, 3)),
        "max_gross_exposure": draw(st.floats(0.2, 3.0)),
        "max_net_exposure": draw(st.floats(0.1, 2.0)),
        "max_concentration": draw(st.floats(0.05, 1.0)),
        "max_per_cluster": draw(st.integers(1, 4)),
        "min_resize_share": draw(st.floats(0.05, 1.0)),
        "correlation_window": 40,
        "min_correlation_samples": 30,
    }
    symbols = [f"S{i}" for i in range(draw(st.integers(1, 6)))]
    batch = st.tuples(
        st.sampled_from(symbols),
        st.sampled_from([LONG, SHORT]),
        st.floats(1.0, 20_000.0),
        st.floats(0.0, 1.0),
    )
    return {
        "fields": fields,
        "symbols": symbols,
        "seed": draw(st.integers(0, 2**32 - 1)),
        # One candidate per symbol and batch, so ``resized`` (keyed by symbol) is unambiguous.
        "first": draw(st.lists(batch, max_size=8, unique_by=lambda entry: entry[0])),
        "second": draw(st.lists(batch, max_size=8, unique_by=lambda entry: entry[0])),
    }


def _returns(symbols: list[str], seed: int) -> dict[str, np.ndarray]:
    """Random returns in which some markets copy another's plus noise, so clusters form."""
    rng = np.random.default_rng(seed)
    bases = rng.normal(0.0, 0.01, size=(3, 40))
    choice = rng.integers(0, 3, size=len(symbols))
    noise = rng.normal(0.0, 0.002, size=(len(symbols), 40))
    return {s: bases[choice[i]] + noise[i] for i, s in enumerate(symbols)}


@settings(max_examples=200, deadline=None)
@given(balancer_cases())
def test_limits_hold_after_admission(case: dict[str, Any]) -> None:
    balancer = make_balancer(**case["fields"])
    balancer.update_correlations(0, _returns(case["symbols"], case["seed"]))
    positions: list[OpenExposure] = []
    for batch in (case["first"], case["second"]):
        candidates = [Candidate(*entry) for entry in batch]
        decision = balancer.admit(0, candidates, positions, EQUITY)
        share = balancer.settings.min_resize_share
        for admitted in decision.admitted:
            original = decision.resized.get(admitted.symbol, admitted.notional)
            assert admitted.notional <= original
            assert admitted.notional >= share * original * (1 - 1e-12)
        positions += [OpenExposure(c.symbol, c.side, c.notional) for c in decision.admitted]
        _assert_limits(balancer, positions)


def _assert_limits(balancer: PortfolioBalancer, positions: list[OpenExposure]) -> None:
    limits = balancer.settings
    tolerance = 1e-9 * EQUITY
    gross = sum(p.notional for p in positions)
    net = sum(int(p.side) * p.notional for p in positions)
    assert len(positions) <= limits.max_open_positions
    assert gross <= balancer.gross_limit * EQUITY + tolerance
    assert abs(net) <= limits.max_net_exposure * EQUITY + tolerance
    for symbol in {p.symbol for p in positions}:
        on_symbol = [p for p in positions if p.symbol == symbol]
        assert len(on_symbol) <= limits.max_positions_per_symbol
        notional = sum(p.notional for p in on_symbol)
        assert notional <= limits.max_concentration * EQUITY + tolerance
        cluster = balancer.cluster_of(symbol)
        in_cluster = [p for p in positions if p.symbol in cluster]
        assert len(in_cluster) <= limits.max_per_cluster
