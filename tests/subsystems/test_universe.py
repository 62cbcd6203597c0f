"""Universe OS: hard and soft criteria, tiers, tier-change records, vetoes and tickers."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from quantum_trader.engine.decisions import Action
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.market_stats import MarketSnapshot
from quantum_trader.subsystems.universe import (
    Tier,
    UniverseOS,
    UniverseSettings,
    classify,
    snapshots_from_tickers,
)

T0 = 1_726_272_000 * 1_000_000_000
DEFAULTS = UniverseSettings()


def market(symbol: str = "SOL/USDT", **changes: Any) -> MarketSnapshot:
    """A market that passes every default criterion: one tick is 0.01% of the price, the
    volume is 5x the minimum, volatility sits inside 0.0005..0.05, history is 1000 candles."""
    base = MarketSnapshot(
        symbol=symbol,
        price=100.0,
        tick_size=0.01,
        quote_volume=5e6,
        volatility=0.01,
        history=1000,
    )
    return replace(base, **changes)


def tier_of(snapshot: MarketSnapshot, settings: UniverseSettings = DEFAULTS) -> Tier | None:
    return classify(snapshot, settings)[0]


def test_good_market_is_eligible() -> None:
    assert classify(market(), DEFAULTS) == (None, "")


@pytest.mark.parametrize(
    ("price", "words"),
    [
        (0.0, "not positive"),
        (-1.0, "not positive"),
        (math.nan, "not finite"),
        (None, "missing"),
        (math.inf, "not finite"),
        (1e-7, "below min_price"),
    ],
)
def test_bad_price_is_blacklisted(price: float | None, words: str) -> None:
    tier, reason = classify(market(price=price), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert words in reason


def test_coarse_tick_is_blacklisted() -> None:
    # One tick of 0.01 on a price of 1.0 is 1%, above the 0.1% limit.
    tier, reason = classify(market(price=1.0), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert "one tick (0.01) is 1.0000% of the price 1" in reason


def test_tick_at_limit_is_allowed() -> None:
    # 0.01 / 10 = 0.1%, equal to max_tick_pct and not above it.
    assert tier_of(market(price=10.0)) is None


@pytest.mark.parametrize("tick", [0.0, -0.01, math.nan, None])
def test_invalid_tick_is_blacklisted(tick: float | None) -> None:
    tier, reason = classify(market(tick_size=tick), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert "tick size" in reason


def test_short_history_is_blacklisted() -> None:
    tier, reason = classify(market(history=499), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert "history of 499 candles is below min_history 500" in reason


def test_history_at_minimum_is_allowed() -> None:
    assert tier_of(market(history=500)) is None


def test_unknown_history_is_blacklisted() -> None:
    assert tier_of(market(history=None)) is Tier.BLACKLIST


def test_low_quote_volume_is_blacklisted() -> None:
    tier, reason = classify(market(quote_volume=999_999.0), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert "below min_quote_volume" in reason


def test_quote_volume_at_minimum_is_allowed() -> None:
    assert tier_of(market(quote_volume=1e6)) is None


@pytest.mark.parametrize("volume", [math.nan, None])
def test_unknown_quote_volume_is_blacklisted(volume: float | None) -> None:
    assert tier_of(market(quote_volume=volume)) is Tier.BLACKLIST


@pytest.mark.parametrize(
    ("volatility", "words"),
    [
        (0.0004, "below min_volatility"),
        (0.06, "above max_volatility"),
        (None, "volatility is unknown"),
        (math.nan, "volatility is unknown"),
    ],
)
def test_volatility_outside_band_is_monitoring(volatility: float | None, words: str) -> None:
    tier, reason = classify(market(volatility=volatility), DEFAULTS)
    assert tier is Tier.MONITORING
    assert words in reason


def test_volatility_at_band_edges_is_allowed() -> None:
    assert tier_of(market(volatility=0.0005)) is None
    assert tier_of(market(volatility=0.05)) is None


def test_wide_spread_is_monitoring() -> None:
    # 0.3% is above the 0.2% limit.
    tier, reason = classify(market(spread=0.003), DEFAULTS)
    assert tier is Tier.MONITORING
    assert "spread 0.3000% is above max_spread_pct 0.2000%" in reason


def test_narrow_or_unknown_spread_is_allowed() -> None:
    assert tier_of(market(spread=0.001)) is None
    assert tier_of(market(spread=None)) is None


def test_invalid_spread_is_monitoring() -> None:
    assert tier_of(market(spread=-0.001)) is Tier.MONITORING
    assert tier_of(market(spread=math.nan)) is Tier.MONITORING


def test_hard_failure_outranks_soft_failure() -> None:
    tier, reason = classify(market(price=0.0, volatility=0.2), DEFAULTS)
    assert tier is Tier.BLACKLIST
    assert "volatility" not in reason


def test_all_hard_failures_are_listed() -> None:
    _, reason = classify(market(history=10, quote_volume=5.0), DEFAULTS)
    assert "history" in reason
    assert "quote volume" in reason


def test_core_is_top_quote_volume() -> None:
    universe = UniverseOS(UniverseSettings(core_size=2))
    volumes = {"A": 2e6, "B": 9e6, "C": 4e6, "D": 3e6}
    selection = universe.select(T0, [market(s, quote_volume=v) for s, v in volumes.items()])
    assert selection.tiers == {
        "B": Tier.CORE,
        "C": Tier.CORE,
        "D": Tier.EXPANSION,
        "A": Tier.EXPANSION,
    }
    assert selection.tradable == {"A", "B", "C", "D"}
    assert selection.reasons["C"].startswith("eligible, rank 2 of 4")


def test_core_ties_broken_by_symbol() -> None:
    universe = UniverseOS(UniverseSettings(core_size=1))
    selection = universe.select(T0, [market("ZEC/USDT"), market("ADA/USDT")])
    assert selection.tiers["ADA/USDT"] is Tier.CORE
    assert selection.tiers["ZEC/USDT"] is Tier.EXPANSION


def test_tradable_excludes_monitoring_and_blacklist() -> None:
    universe = UniverseOS(UniverseSettings())
    selection = universe.select(
        T0, [market("A"), market("B", volatility=0.2), market("C", price=0.0)]
    )
    assert selection.tiers["B"] is Tier.MONITORING
    assert selection.tiers["C"] is Tier.BLACKLIST
    assert selection.tradable == {"A"}
    assert selection.binding


def test_bad_data_never_raises_in_select() -> None:
    universe = UniverseOS(UniverseSettings())
    bad = [
        market("A", price=None, tick_size=None, quote_volume=None, volatility=None, history=None),
        market("B", price=math.nan, spread=math.inf),
    ]
    selection = universe.select(T0, bad)
    assert selection.tiers == {"A": Tier.BLACKLIST, "B": Tier.BLACKLIST}
    assert selection.tradable == frozenset()


def test_first_selection_records_every_market() -> None:
    universe = UniverseOS(UniverseSettings())
    universe.select(T0, [market("A"), market("B", price=0.0)])
    assert universe.seen == 2
    assert universe.changed == 2
    actions = {d.symbol: d.action for d in universe.log.decisions}
    assert actions == {"A": Action.APPROVE, "B": Action.REJECT}
    assert "tier new -> blacklist" in universe.log.decisions[1].reason


def test_unchanged_tiers_record_nothing() -> None:
    universe = UniverseOS(UniverseSettings())
    universe.select(T0, [market("A")])
    universe.select(T0 + 1, [market("A")])
    assert universe.seen == 2
    assert universe.changed == 1
    assert len(universe.log.decisions) == 1


def test_tier_change_is_recorded_once() -> None:
    universe = UniverseOS(UniverseSettings())
    universe.select(T0, [market("A"), market("B")])
    universe.select(T0 + 1, [market("A"), market("B", volatility=0.0001)])
    assert universe.changed == 3
    last = universe.log.decisions[-1]
    assert last.symbol == "B"
    assert last.action is Action.REJECT
    assert last.time_ns == T0 + 1
    assert "tier core -> monitoring: volatility 0.0001 is below min_volatility" in last.reason
    assert last.numbers["volatility"] == 0.0001


def test_missing_market_is_removed() -> None:
    universe = UniverseOS(UniverseSettings())
    universe.select(T0, [market("A"), market("B")])
    selection = universe.select(T0 + 1, [market("A")])
    assert "B" not in selection.tiers
    assert universe.changed == 3
    assert "missing from the market data" in universe.log.decisions[-1].reason


def test_duplicate_snapshot_is_examined_once() -> None:
    universe = UniverseOS(UniverseSettings())
    selection = universe.select(T0, [market("A"), market("A", price=0.0)])
    assert universe.seen == 1
    assert selection.tiers["A"] is Tier.CORE


def test_enforced_allows_tradable_and_vetoes_others() -> None:
    universe = UniverseOS(UniverseSettings())
    universe.select(T0, [market("A"), market("B", price=0.0)])
    decisions_before = len(universe.log.decisions)
    assert universe.allows("A", T0)
    assert len(universe.log.decisions) == decisions_before
    assert not universe.allows("B", T0 + 5)
    assert not universe.allows("Z", T0 + 5)
    assert universe.vetoed == 2
    veto = universe.log.decisions[-2]
    assert veto.action is Action.VETO
    assert veto.symbol == "B"
    assert "entry vetoed: tier blacklist: price 0 is not positive" in veto.reason
    assert "not in the last universe selection" in universe.log.decisions[-1].reason


def test_enforced_vetoes_before_first_selection() -> None:
    universe = UniverseOS(UniverseSettings())
    assert not universe.allows("A", T0)
    assert universe.vetoed == 1
    assert "no universe selection" in universe.log.decisions[-1].reason


@pytest.mark.parametrize("mode", [Mode.OBSERVE, Mode.ADVISORY])
def test_non_enforced_mode_never_vetoes(mode: Mode) -> None:
    universe = UniverseOS(UniverseSettings(mode=mode))
    selection = universe.select(T0, [market("A"), market("B", price=0.0)])
    assert not selection.binding
    assert selection.tiers["B"] is Tier.BLACKLIST
    assert universe.allows("B", T0)
    assert universe.vetoed == 0
    last = universe.log.decisions[-1]
    assert last.action is Action.APPROVE
    assert f"[{mode}] not enforced, would veto" in last.reason


def test_off_mode_allows_without_record() -> None:
    universe = UniverseOS(UniverseSettings(mode=Mode.OFF))
    assert universe.allows("A", T0)
    assert universe.log.decisions == []


def test_due_every_cadence_rows() -> None:
    universe = UniverseOS(UniverseSettings(cadence=24))
    assert universe.due(0)
    assert not universe.due(23)
    assert universe.due(48)


def test_volatility_band_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match=r"min_volatility=0\.05 must be below"):
        UniverseSettings(min_volatility=0.05, max_volatility=0.05)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValidationError, match="min_volume"):
        UniverseSettings(min_volume=5.0)  # type: ignore[call-arg]


def test_tickers_build_snapshots() -> None:
    # Spread (50001 - 49999) / 50000 = 0.00004. Volatility and history come from the candles.
    tickers = [
        {
            "symbol": "BTC/USDT",
            "last": 50_000.0,
            "quoteVolume": 2e9,
            "bid": 49_999.0,
            "ask": 50_001.0,
        }
    ]
    candles = {"BTC/USDT": market("BTC/USDT", quote_volume=1.0, volatility=0.003, history=800)}
    [shot] = snapshots_from_tickers(tickers, {"BTC/USDT": 0.01}, candles)
    assert shot.symbol == "BTC/USDT"
    assert shot.price == 50_000.0
    assert shot.tick_size == 0.01
    assert shot.quote_volume == 2e9
    assert shot.spread == pytest.approx(0.00004)
    assert shot.volatility == 0.003
    assert shot.history == 800
    assert tier_of(shot) is None


def test_tickers_with_bad_fields_are_blacklisted() -> None:
    tickers: list[dict[str, Any]] = [
        {"symbol": "ZERO/USDT", "last": 0.0, "quoteVolume": 5e6, "bid": 0.0, "ask": 0.0},
        {"symbol": "NONE/USDT", "last": None, "quoteVolume": 5e6, "bid": None, "ask": None},
        {"symbol": "TEXT/USDT", "last": "n/a", "quoteVolume": 5e6},
        {"symbol": "COARSE/USDT", "last": 0.5, "quoteVolume": 5e6, "bid": 0.4, "ask": 0.6},
    ]
    ticks = {"ZERO/USDT": 0.01, "NONE/USDT": 0.01, "TEXT/USDT": 0.01, "COARSE/USDT": 0.01}
    candles = {s: market(s) for s in ticks}
    selection = UniverseOS(UniverseSettings()).select(
        T0, snapshots_from_tickers(tickers, ticks, candles)
    )
    assert selection.tiers == dict.fromkeys(ticks, Tier.BLACKLIST)
    assert "price 0 is not positive" in selection.reasons["ZERO/USDT"]
    assert "price is missing" in selection.reasons["NONE/USDT"]
    assert "price is missing" in selection.reasons["TEXT/USDT"]
    # 0.01 / 0.5 = 2% of the price, above the 0.1% limit.
    assert "one tick (0.01) is 2.0000%" in selection.reasons["COARSE/USDT"]


def test_ticker_without_candles_has_unknown_history() -> None:
    tickers = [{"symbol": "NEW/USDT", "last": 2.0, "quoteVolume": 5e6, "bid": 1.999, "ask": 2.001}]
    [shot] = snapshots_from_tickers(tickers, {"NEW/USDT": 0.001})
    assert shot.history is None
    assert shot.volatility is None
    assert tier_of(shot) is Tier.BLACKLIST


def test_ticker_fallbacks() -> None:
    # No last price: use close. No quote volume: use the candles'. A crossed book
    # (ask below bid) gives an unknown spread. A ticker without a symbol is skipped.
    tickers: list[dict[str, Any]] = [
        {"symbol": "ETH/USDT", "last": None, "close": 3000.0, "bid": 3000.5, "ask": 2999.5},
        {"last": 1.0},
    ]
    candles = {"ETH/USDT": market("ETH/USDT", quote_volume=7e6)}
    shots = snapshots_from_tickers(tickers, {}, candles)
    assert len(shots) == 1
    assert shots[0].price == 3000.0
    assert shots[0].quote_volume == 7e6
    assert shots[0].spread is None
    assert shots[0].tick_size is not None
    assert math.isnan(shots[0].tick_size)
