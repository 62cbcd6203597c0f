"""End-to-end timing rules of the kernel: signals at close t execute at the open of t+1."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantum_trader.backtest.runner import build_strategy, load_market_data, simulate
from quantum_trader.config import Settings, load_settings
from quantum_trader.core.types import ExitReason
from quantum_trader.strategies.base import SignalFrame

FRICTIONLESS: dict[str, Any] = {
    "exchange": {
        "maker_fee": 0.0,
        "taker_fee": 0.0,
        "slippage": {"fixed_bps": 0.0, "range_share": 0.0, "volume_impact": 0.0},
    },
    "risk": {"sizing": "stake", "stake_amount": 1000.0, "max_position_share": 1.0},
    "backtest": {"initial_capital": 10_000.0},
}


def _settings(timeframe: str, **extra: Any) -> Settings:
    overrides = {**FRICTIONLESS, "data": {"timeframe": timeframe, "symbols": ("BTC/USDT",)}}
    overrides.update(extra)
    return load_settings(overrides=overrides)


def _candles(start: str, freq: str, rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(rows), freq=freq, tz="UTC")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "date", dates)
    frame["volume"] = 100.0
    frame["synthetic"] = False
    return frame


def _long_at(rows: int, entry_rows: list[int], stop_pct: float | None = None) -> SignalFrame:
    signals = SignalFrame.empty(rows)
    signals.entry[entry_rows] = 1
    signals.confidence[:] = 1.0
    if stop_pct is None:
        return signals
    stops = np.full(rows, np.nan)
    stops[entry_rows] = stop_pct
    return SignalFrame(signals.entry, signals.exit, signals.confidence, stop_pct=stops)


def test_signal_on_close_executes_at_next_open() -> None:
    """Signal close > 11 fires on t=1 (close 12); the entry is t=2's open of 13, not 10 or 12."""
    candles = _candles("2024-01-01", "1h", [(10, 10, 10, 10), (10, 12, 10, 12), (13, 13, 13, 13)])
    result = simulate(
        _settings("1h"), {"BTC/USDT": candles}, {"BTC/USDT": _long_at(3, [1], stop_pct=0.05)}
    )
    assert len(result.trades) == 1
    trade = result.trades[0]
    assert trade.entry_price == 13.0
    assert trade.entry_time == pd.Timestamp("2024-01-01 02:00", tz="UTC")


def test_stop_gapped_through_after_a_gap_fills_at_open() -> None:
    """A long stopped at 98 exits at the 90 open after a missing candle, not at 98."""
    candles = _candles(
        "2024-01-01 23:55",
        "5min",
        [(100, 100, 100, 100), (100, 100.5, 99.5, 100), (100, 101.5, 99.5, 101)],
    )
    synthetic = pd.DataFrame(
        {
            "date": [pd.Timestamp("2024-01-02 00:10", tz="UTC")],
            "open": [101.0],
            "high": [101.0],
            "low": [101.0],
            "close": [101.0],
            "volume": [0.0],
            "synthetic": [True],
        }
    )
    after_gap = _candles("2024-01-02 00:15", "5min", [(90, 91, 89, 90)])
    frame = pd.concat([candles, synthetic, after_gap], ignore_index=True)
    result = simulate(
        _settings("5m"), {"BTC/USDT": frame}, {"BTC/USDT": _long_at(5, [0], stop_pct=0.02)}
    )
    assert len(result.trades) == 1
    trade = result.trades[0]
    assert trade.entry_price == 100.0
    assert trade.exit_price == 90.0
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_time == pd.Timestamp("2024-01-02 00:15", tz="UTC")


def test_no_fill_on_synthetic_candle() -> None:
    """An entry decided just before a synthetic candle waits for the next real candle's open."""
    real = _candles("2024-01-01 00:00", "5min", [(100, 100, 100, 100)])
    synthetic = pd.DataFrame(
        {
            "date": [pd.Timestamp("2024-01-01 00:05", tz="UTC")],
            "open": [100.0],
            "high": [100.0],
            "low": [100.0],
            "close": [100.0],
            "volume": [0.0],
            "synthetic": [True],
        }
    )
    after = _candles("2024-01-01 00:10", "5min", [(104, 105, 103, 104)])
    frame = pd.concat([real, synthetic, after], ignore_index=True)
    result = simulate(
        _settings("5m"), {"BTC/USDT": frame}, {"BTC/USDT": _long_at(3, [0], stop_pct=0.02)}
    )
    assert len(result.trades) == 1
    assert result.trades[0].entry_price == 104.0


def test_ess_trip_flattens_and_blocks_next_entry() -> None:
    """A 32% fall in one candle trips the ESS: it closes the position and vetoes the next entry."""
    rows = [(100, 100, 100, 100), (100, 100, 100, 100)]
    rows += [(100, 100, 60, 60), (60, 60, 60, 60), (60, 61, 59, 60), (60, 61, 59, 60)]
    candles = _candles("2024-01-01", "1h", rows)
    settings = _settings(
        "1h",
        risk={"sizing": "stake", "stake_amount": 8000.0, "max_position_share": 1.0},
        emergency_stop={"flatten_on_trip": True},
    )
    signals = _long_at(len(rows), [0, 4], stop_pct=0.5)
    result = simulate(settings, {"BTC/USDT": candles}, {"BTC/USDT": signals})
    # 80 units bought at 100; the close of 60 marks equity at 10000 - 80*40 = 6800, a 32% loss
    # within the day, over the 5% daily limit. The flattening order fills at the next open, 60.
    assert result.emergency_stop is not None
    assert result.emergency_stop["state"] == "halted"
    assert len(result.trades) == 1
    assert result.trades[0].exit_reason is ExitReason.EMERGENCY_STOP
    assert result.trades[0].exit_price == 60.0
    vetoes = [d for d in result.decisions if d.subsystem == "ESS" and d.action.value == "veto"]
    assert len(vetoes) == 1
    assert vetoes[0].time_ns == pd.Timestamp("2024-01-01 04:00", tz="UTC").value


@pytest.mark.parametrize("cut", ["2025-06-01 00:00", "2025-11-15 13:00"])
def test_truncation_leaves_earlier_decisions_unchanged(cut: str) -> None:
    """EMA-cross on real BTC and ETH 1h candles: cutting the data at t changes nothing before t."""
    settings = load_settings(
        overrides={
            "data": {"timeframe": "1h", "symbols": ("BTC/USDT", "ETH/USDT")},
            "strategy": {"name": "ema-cross"},
        }
    )
    data = load_market_data(settings)
    cut_time = pd.Timestamp(cut, tz="UTC")
    truncated = {s: f[f["date"] < cut_time].reset_index(drop=True) for s, f in data.candles.items()}
    full = _run(settings, data.candles)
    short = _run(settings, truncated)
    before = cut_time.value
    assert _orders_before(full, before) == _orders_before(short, before)
    assert _fills_before(full, before) == _fills_before(short, before)
    assert len(_fills_before(full, before)) > 10


def _run(settings: Settings, candles: dict[str, pd.DataFrame]) -> Any:
    signals = build_strategy(settings, None).generate(candles)
    return simulate(settings, candles, signals)


def _orders_before(result: Any, time_ns: int) -> list[tuple[Any, ...]]:
    return [
        (o.symbol, o.side, o.quantity, o.tag, o.created_ns, o.status)
        for o in result.orders
        if o.created_ns < time_ns
    ]


def _fills_before(result: Any, time_ns: int) -> list[tuple[Any, ...]]:
    return [
        (f.symbol, f.side, f.price, f.quantity, f.fee, f.time_ns)
        for f in result.fills
        if f.time_ns < time_ns
    ]


@pytest.mark.parametrize(("reset_hours", "min_trades"), [(None, 2), (24.0, 20)])
def test_quiet_skipping_matches_step_by_step(reset_hours: float | None, min_trades: int) -> None:
    """Jumping over steps with nothing open gives the same equity, trades and decisions."""
    settings = load_settings(
        overrides={
            "data": {"timeframe": "1h", "symbols": ("BTC/USDT", "SOL/USDT")},
            "strategy": {"name": "ema-cross", "fast_period": 50, "slow_period": 200},
            "emergency_stop": {"max_daily_loss": 0.01, "backtest_reset_hours": reset_hours},
        }
    )
    candles = load_market_data(settings).candles
    signals = build_strategy(settings, None).generate(candles)
    fast = simulate(settings, candles, signals)
    slow = simulate(settings, candles, signals, skip_quiet=False)
    assert len(fast.trades) >= min_trades
    assert fast.trades == slow.trades
    assert fast.decisions == slow.decisions
    assert fast.equity.equals(slow.equity)


def test_quiet_rows_match_step_by_step_on_5m() -> None:
    """Skipping candles that cannot reach a stop or target changes no trade on real 5m data."""
    settings = load_settings(
        overrides={
            "data": {
                "timeframe": "5m",
                "symbols": ("BTC/USDT", "SOL/USDT"),
                "end": "2025-03-01",
            },
            "strategy": {"name": "ema-cross", "fast_period": 12, "slow_period": 26},
            "emergency_stop": {"backtest_reset_hours": 24},
        }
    )
    candles = load_market_data(settings).candles
    signals = build_strategy(settings, None).generate(candles)
    fast = simulate(settings, candles, signals)
    slow = simulate(settings, candles, signals, skip_quiet=False)
    assert len(fast.trades) > 200
    assert fast.trades == slow.trades
    assert fast.fills == slow.fills
    assert fast.equity.equals(slow.equity)


def test_simultaneous_entries_fill_in_symbol_order() -> None:
    """Two entries compete for cash on one candle: the first symbol of the run fills in full.

    Capital 10000 and a 6000 stake each: BTC/USDT buys 60 at 100, and ETH/USDT gets what the
    remaining 4000 buys at 100, floored to its 0.0001 step: 40 units.
    """
    rows = [(100.0, 100.0, 100.0, 100.0)] * 4
    frames = {"BTC/USDT": _candles("2024-01-01", "1h", rows)}
    frames["ETH/USDT"] = _candles("2024-01-01", "1h", rows)
    settings = _settings(
        "1h", risk={"sizing": "stake", "stake_amount": 6000.0, "max_position_share": 1.0}
    )
    signals = {symbol: _long_at(4, [0], stop_pct=0.05) for symbol in frames}
    result = simulate(settings, frames, signals)
    entries = {f.symbol: f.quantity for f in result.fills if f.tag.startswith("entry")}
    assert entries["BTC/USDT"] == 60.0
    assert entries["ETH/USDT"] == 40.0
