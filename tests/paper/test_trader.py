"""The paper trader replays the backtest's session step by step in wall-clock time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from quantum_trader.backtest.runner import load_market_data, simulate
from quantum_trader.backtest.signal_set import ai_pipeline_signals
from quantum_trader.config import Settings
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.trader import PaperTrader

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"


def fast_settings() -> Settings:
    # The AI Trading Engine off keeps the test free of model training, while the two rule profiles
    # and all fourteen subsystems still run.
    return Settings(
        data={
            "datadir": DATADIR,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
    )


def prepared_trader() -> PaperTrader:
    trader = PaperTrader(fast_settings())
    trader.prepare()
    trader.start()
    return trader


def test_replay_gives_backtest_trades() -> None:
    settings = fast_settings()
    data = load_market_data(settings)
    expected = simulate(settings, data.candles, ai_pipeline_signals(settings, data.candles, None))
    trader = prepared_trader()

    while trader.step():
        pass
    trader.stop()

    assert len(expected.trades) > 0
    assert trader.trades() == expected.trades
    assert trader.orders() == expected.orders
    assert [value for _, value in trader.equity()] == expected.equity.tolist()


def test_run_at_high_speed_finishes_replay() -> None:
    trader = prepared_trader()

    asyncio.run(trader.run(1e9, asyncio.Event()))

    assert trader.finished
    assert trader.status().step == trader.status().steps
    assert trader.positions() == []


def test_run_stops_when_event_set() -> None:
    trader = prepared_trader()
    stop_event = asyncio.Event()
    stop_event.set()

    asyncio.run(trader.run(1e9, stop_event))

    assert trader.status().step == 0
    assert not trader.finished


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_run_rejects_bad_speed(speed: float) -> None:
    trader = prepared_trader()

    with pytest.raises(ConfigurationError, match="positive number of candles per second"):
        asyncio.run(trader.run(speed, asyncio.Event()))


def test_decisions_filtered_by_symbol_time_and_limit() -> None:
    trader = prepared_trader()
    while trader.step():
        pass

    every = trader.decisions(limit=1_000_000)
    btc = trader.decisions(symbol="BTC/USDT", limit=1_000_000)
    newest_two = trader.decisions(limit=2)
    since = every[len(every) // 2].time_ns
    later = trader.decisions(since=since, limit=1_000_000)

    assert len(btc) > 0
    assert all(decision.symbol == "BTC/USDT" for decision in btc)
    assert newest_two == every[-2:]
    assert all(decision.time_ns >= since for decision in later)
    assert trader.decisions(until=since - 1, limit=1_000_000) == [
        d for d in every if d.time_ns < since
    ]


def test_latest_signal_is_newest_closed_candle() -> None:
    trader = prepared_trader()

    assert trader.latest_signal("BTC/USDT") is None
    for _ in range(3):
        trader.step()
    signal = trader.latest_signal("BTC/USDT")

    assert signal is not None
    # 2025-01-01T02:00Z, the open of the third hourly candle, in ns.
    assert signal.time_ns == 1_735_696_800_000_000_000
    assert set(signal.profiles) == {"trend_following", "mean_reversion"}
    assert signal.votes == {}


def test_manual_trip_halts_and_reset_lifts() -> None:
    trader = prepared_trader()
    trader.step()

    trader.trip("operator test")
    halted = trader.session.emergency_stop.state
    trader.reset("alice")

    assert halted == "halted"
    assert trader.session.emergency_stop.state == "active"


def test_session_before_prepare_raises() -> None:
    with pytest.raises(ConfigurationError, match="call prepare"):
        PaperTrader(fast_settings()).status()


def test_step_publishes_candles_signals_and_health() -> None:
    trader = prepared_trader()
    events: dict[str, list[Any]] = {"candle": [], "signal": [], "health": []}
    for topic, received in events.items():
        trader.subscribe(topic, received.append)

    for _ in range(200):
        trader.step()
    trader.stop()

    # BTC and ETH both have a candle at every one of the 200 hours.
    assert len(events["candle"]) == 400
    first = events["candle"][0]
    btc = trader.session.candles["BTC/USDT"].iloc[0]
    assert first.symbol == "BTC/USDT"
    assert first.time == "2025-01-01T00:00:00+00:00"
    assert (first.open, first.high, first.low, first.close) == (
        btc["open"],
        btc["high"],
        btc["low"],
        btc["close"],
    )
    # A signal event is published only where a profile enters or exits.
    assert events["signal"]
    for signal in events["signal"]:
        assert any(p["entry"] != 0 or p["exit"] for p in signal.profiles.values())
    # The first step reports every subsystem's health once; nothing changes after that.
    assert len(events["health"]) == 14
    assert {event.health for event in events["health"]} == {"healthy"}
    assert {event.previous for event in events["health"]} == {None}


def test_paper_trip_holds_without_simulated_reset() -> None:
    # The demo's backtest_reset_hours=24 lifts a trip a day later in a backtest; a paper
    # trader keeps it until an operator resets it.
    settings = fast_settings().model_copy(
        update={
            "emergency_stop": fast_settings().emergency_stop.model_copy(
                update={"backtest_reset_hours": 24.0}
            )
        }
    )
    trader = PaperTrader(settings)
    trader.prepare()
    trader.start()
    trader.step()
    trader.trip("operator test")
    for _ in range(48):
        trader.step()
    trip = trader.session.emergency_stop.trip
    trader.stop()

    assert trader.settings.emergency_stop.backtest_reset_hours is None
    assert trip is not None
    assert trip.reason == "manual"
