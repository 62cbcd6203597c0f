"""The live paper trader: closed candles from the Binance look-alike on loopback drive the
backtest's session, rebuilt at each poll, without changing what was already processed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from quantum_trader.api.app import create_app
from quantum_trader.backtest.runner import build_session
from quantum_trader.backtest.signal_set import ai_pipeline_signals
from quantum_trader.config import Settings
from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError, DataError
from quantum_trader.live.ccxt_source import CcxtCandleSource
from quantum_trader.live.timeline import history_candles, mask_entries_before
from quantum_trader.live.trader import LiveTrader
from quantum_trader.persistence.database import Database
from quantum_trader.persistence.repository import TradingRepository
from tests.live.fake_binance import FakeBinance, Fault, fake_binance

pytest.importorskip("ccxt", reason="the live trader needs ccxt (pip install ccxt)")

SYMBOLS = ("BTC/USDT", "ETH/USDT")
START = "2025-01-20 00:30"  # the 00:00 candle is forming, so history ends with 2025-01-19 23:00
TRADE_FROM = pd.Timestamp("2025-01-20 00:00", tz="UTC")
HOUR_MS = 3_600_000


def live_settings(
    url: str, database_url: str | None = None, model: dict[str, Any] | None = None, **live: Any
) -> Settings:
    # The AI Trading Engine off keeps model training out; the two rule profiles and all
    # fourteen subsystems run.
    return Settings(
        data={"timeframe": "1h", "symbols": SYMBOLS},
        model=model or {"mode": "off"},
        live={
            "enabled": True,
            "api_url": url,
            "history_candles": 500,
            "max_wait_seconds": 60,
            **live,
        },
        service={"database_url": database_url},
    )


def make_trader(fake: FakeBinance, settings: Settings) -> LiveTrader:
    source = CcxtCandleSource(
        settings.live, "1h", MarketType.SPOT, clock=fake.clock, sleep=lambda _: None
    )
    return LiveTrader(settings, source=source)


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with fake_binance(SYMBOLS, START) as server:
        yield server


def advance_and_poll(trader: LiveTrader, fake: FakeBinance, hours: int, polls: int) -> int:
    processed = 0
    for _ in range(polls):
        fake.advance(hours * HOUR_MS)
        processed += asyncio.run(trader.poll_once())
    return processed


def one_shot(trader: LiveTrader) -> tuple[list[Any], list[Any], list[Any]]:
    """Run the backtest's session once over the trader's final candles, step by step."""
    settings = trader.settings
    candles = trader.session.candles
    signals = ai_pipeline_signals(settings, candles, None)
    signals = mask_entries_before(signals, candles, trader.anchor.trade_from_ns)
    session = build_session(settings, candles, signals, skip_quiet=False)
    session.start()
    for step in range(len(session.feed)):
        session.kernel.step(step)
    session.stack.registry.stop()  # type: ignore[union-attr]
    exchange = session.exchange
    return exchange.orders, exchange.fills, exchange.trades


def test_live_run_equals_one_backtest(fake: FakeBinance) -> None:
    trader = make_trader(fake, live_settings(fake.url))
    trader.prepare()
    trader.start()
    fills_published: list[Any] = []
    trader.subscribe("fill", fills_published.append)

    # 20 polls, each a day later: 480 new hourly candles in 20 rebuilds.
    processed = advance_and_poll(trader, fake, hours=24, polls=20)
    orders, fills, trades = one_shot(trader)
    trader.stop()

    assert processed == 480
    assert pd.Timestamp(trader.anchor.trade_from_ns, tz="UTC") == TRADE_FROM
    assert len(trader.session.feed) == 500 + 480
    assert len(trader.trades()) > 0
    assert trader.orders() == orders
    assert trader.session.exchange.fills == fills
    assert trader.trades() == trades
    # Every fill was published once, although each poll rebuilt the session from the start.
    assert fills_published == fills
    # The history only warmed up: nothing was ordered before the first live candle.
    assert min(order.created_ns for order in orders) >= TRADE_FROM.value


def test_missing_candle_waits_then_is_synthetic_and_stays(fake: FakeBinance) -> None:
    trader = make_trader(fake, live_settings(fake.url))
    trader.prepare()
    trader.start()
    withheld = int(pd.Timestamp("2025-01-20 01:00", tz="UTC").value // 1_000_000)
    fake.missing["ETHUSDT"] = {withheld}
    eth = fake.candles["ETHUSDT"]
    close_0000 = float(eth.loc[eth["date"] == TRADE_FROM, "close"].iloc[0])

    # 02:00:10: the 01:00 candle closed 10 s ago and ETH has not delivered it (wait is 60 s),
    # so only the 00:00 time is processed.
    fake.advance(90 * 60 * 1000 + 10_000)
    assert asyncio.run(trader.poll_once()) == 1
    # 02:01:30: 90 s after the close, ETH gets a flat candle at its 00:00 close.
    fake.advance(80_000)
    assert asyncio.run(trader.poll_once()) == 1
    # The real candle arrives late; the timeline keeps the synthetic one.
    fake.missing.clear()
    fake.advance(HOUR_MS)
    assert asyncio.run(trader.poll_once()) == 1
    trader.stop()

    frame = trader.session.candles["ETH/USDT"]
    row = frame[frame["date"] == pd.Timestamp("2025-01-20 01:00", tz="UTC")].iloc[0]
    assert bool(row["synthetic"])
    assert [row["open"], row["high"], row["low"], row["close"]] == [close_0000] * 4
    assert row["volume"] == 0.0
    assert frame["date"].iloc[-1] == pd.Timestamp("2025-01-20 02:00", tz="UTC")


def test_manual_trip_survives_the_rebuilds(fake: FakeBinance) -> None:
    trader = make_trader(fake, live_settings(fake.url))
    trader.prepare()
    trader.start()
    advance_and_poll(trader, fake, hours=24, polls=3)
    trader.trip("operator test")
    tripped_at = trader.session.kernel.clock.now_ns()
    orders_before = len(trader.orders())

    advance_and_poll(trader, fake, hours=24, polls=3)
    trader.stop()

    trip = trader.session.emergency_stop.trip
    assert trip is not None
    assert trip.reason == "manual"
    new_entries = [
        order
        for order in trader.orders()[orders_before:]
        if not order.reduce_only and order.created_ns > tripped_at
    ]
    assert new_entries == []


def test_restart_resumes_the_stored_timeline(fake: FakeBinance, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    first = make_trader(fake, live_settings(fake.url, url))
    first.prepare()
    first.start()
    advance_and_poll(first, fake, hours=24, polls=4)
    anchor = first.anchor
    orders_at_crash = list(first.orders())
    # A crash: the first trader is dropped without stopping; a day of candles closes meanwhile.
    fake.advance(24 * HOUR_MS)

    second = make_trader(fake, live_settings(fake.url, url))
    second.prepare()
    second.start()
    resumed_at = second.status().step
    caught_up = asyncio.run(second.poll_once())
    orders, _, trades = one_shot(second)
    second.stop()

    assert second.anchor == anchor
    assert resumed_at == 500 + 96
    assert caught_up == 24
    assert second.orders()[: len(orders_at_crash)] == orders_at_crash
    assert second.orders() == orders
    assert second.trades() == trades
    counts = TradingRepository(Database(url)).count_rows()
    assert counts["orders"] == len(orders)
    assert counts["trades"] == len(trades)


def test_stale_data_limit_follows_the_timeframe(fake: FakeBinance) -> None:
    # Unset, the limit is two 1h candles plus the 60 s wait and two 10 s polls:
    # 7200 + 60 + 20 = 7280 s.
    trader = make_trader(fake, live_settings(fake.url))
    assert trader.settings.emergency_stop.max_data_age_seconds == 7280.0

    explicit = Settings.model_validate(
        {**live_settings(fake.url).model_dump(), "emergency_stop": {"max_data_age_seconds": 900.0}}
    )
    with pytest.raises(ConfigurationError, match=r"max_data_age_seconds=900 is below 7280"):
        make_trader(fake, explicit)


def test_history_too_short_for_the_model_is_refused() -> None:
    # The 1h preset trains on 4000 candles and refits every 720: it needs 4720.
    settings = Settings(data={"timeframe": "1h"}, live={"history_candles": 1000})
    with pytest.raises(ConfigurationError, match=r"history_candles=1000 is too short.*above 4000"):
        history_candles(settings)
    assert history_candles(Settings(data={"timeframe": "1h"})) == 4720


def test_service_serves_live_state(fake: FakeBinance) -> None:
    settings = live_settings(fake.url)
    app = create_app(settings, lambda s: make_trader(fake, s))
    with TestClient(app) as client:
        status = client.get("/api/v1/ai/status").json()
        ready = client.get("/health/ready")

    assert len(status["subsystems"]) == 14
    assert {row["health"] for row in status["subsystems"]} == {"healthy"}
    assert ready.status_code == 200, ready.json()


@pytest.mark.slow
def test_live_ai_run_equals_one_backtest(fake: FakeBinance) -> None:
    # The ensemble is retrained walk-forward at every rebuild. Its folds are anchored at the
    # first candle, so earlier predictions, and the orders they led to, never change.
    model = {"mode": "enforced", "train_window": 300, "retrain_every": 48}
    settings = live_settings(fake.url, model=model, history_candles=400)
    trader = make_trader(fake, settings)
    trader.prepare()
    trader.start()

    processed = advance_and_poll(trader, fake, hours=24, polls=6)
    orders, fills, trades = one_shot(trader)
    trader.stop()

    assert processed == 144
    assert trader.session.stack is not None
    assert trader._signals is not None and trader._signals.model is not None
    assert trader.orders() == orders
    assert trader.session.exchange.fills == fills
    assert trader.trades() == trades


def test_exchange_outage_trips_the_ess_on_stale_data(fake: FakeBinance) -> None:
    # The newest candle opened at 2025-01-19 23:00. At 03:30, three hours after the start,
    # every request fails: the data is then 4.5 h = 16200 s old, above the 7280 s limit, so the
    # ESS trips with reason stale_data.
    trader = make_trader(fake, live_settings(fake.url, retries=0))
    trader.prepare()
    trader.start()
    fake.faults.extend([Fault(503, "Service Unavailable")] * 10)
    fake.advance(3 * HOUR_MS)

    processed = asyncio.run(trader.poll_once())
    trip = trader.session.emergency_stop.trip
    status = trader.status()
    trader.stop()

    assert processed == 0
    assert status.last_poll_error is not None and "503" in status.last_poll_error
    assert trip is not None
    assert trip.reason == "stale_data"
    assert trip.numbers["age_seconds"] == 16200.0


def test_futures_candles_come_from_the_usdt_margined_market(fake: FakeBinance) -> None:
    settings = Settings(
        data={"timeframe": "1h", "symbols": ("BTC/USDT",)},
        exchange={"market_type": "futures", "funding_rate": 0.0001},
        model={"mode": "off"},
        live={"enabled": True, "api_url": fake.url, "history_candles": 100},
    )
    source = CcxtCandleSource(settings.live, "1h", MarketType.FUTURES, clock=fake.clock)
    trader = LiveTrader(settings, source=source)
    trader.prepare()

    assert trader.symbols == ["BTC/USDT:USDT"]
    assert any(path.startswith("/fapi/v1/klines") for path in fake.requests)
    assert len(trader.session.candles["BTC/USDT:USDT"]) == 100


def test_futures_without_a_funding_rate_is_refused(fake: FakeBinance) -> None:
    settings = Settings(
        data={"timeframe": "1h", "symbols": ("BTC/USDT",)},
        exchange={"market_type": "futures"},
        live={"enabled": True, "api_url": fake.url},
    )
    with pytest.raises(ConfigurationError, match=r"exchange\.funding_rate"):
        LiveTrader(settings)


def test_restart_keeps_the_synthetic_candle_it_traded(fake: FakeBinance, tmp_path: Path) -> None:
    # ETH withholds its 01:00 candle until the trader has filled it in. The restart then finds
    # the real candle on the exchange but rebuilds the timeline it traded, from the database.
    url = f"sqlite:///{tmp_path / 'live.db'}"
    first = make_trader(fake, live_settings(fake.url, url))
    first.prepare()
    first.start()
    fake.missing["ETHUSDT"] = {int(pd.Timestamp("2025-01-20 01:00", tz="UTC").value // 1_000_000)}
    fake.advance(90 * 60 * 1000 + 61_000)  # 02:01:01, 61 s after the 01:00 candle closed
    assert asyncio.run(first.poll_once()) == 2
    fake.missing.clear()

    second = make_trader(fake, live_settings(fake.url, url))
    second.prepare()
    second.start()
    frame = second.session.candles["ETH/USDT"]
    second.stop()

    assert second.status().step == 502
    assert bool(frame["synthetic"].iloc[-1])
    assert frame["date"].iloc[-1] == pd.Timestamp("2025-01-20 01:00", tz="UTC")
    assert second.session.candles["BTC/USDT"]["date"].tolist() == frame["date"].tolist()


def test_restart_keeps_modes_through_rebuilds(fake: FakeBinance, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    first = make_trader(fake, live_settings(fake.url, url))
    first.prepare()
    first.start()
    first.set_mode("Universe OS", "observe")
    advance_and_poll(first, fake, hours=24, polls=1)

    second = make_trader(fake, live_settings(fake.url, url))
    second.prepare()
    second.start()
    advance_and_poll(second, fake, hours=24, polls=2)  # two rebuilds after the restart
    modes = {row.short_name: row.mode for row in second.subsystem_status()}
    second.stop()

    assert modes["Universe OS"] == "observe"


def test_malformed_candle_trips_the_ess_and_stops(fake: FakeBinance) -> None:
    # The 00:00 candle of BTC arrives with high below low: the loop stops and the ESS records
    # why, because no stop or exit can trigger without candles.
    trader = make_trader(fake, live_settings(fake.url))
    trader.prepare()
    trader.start()
    open_ms = int(TRADE_FROM.value // 1_000_000)
    fake.overrides[("BTCUSDT", open_ms)] = ["100", "90", "110", "100", "5"]
    fake.advance(HOUR_MS)

    with pytest.raises(DataError, match="high"):
        asyncio.run(trader.run(1.0, asyncio.Event()))
    trip = trader.session.emergency_stop.trip
    trader.stop()

    assert trip is not None
    assert trip.reason == "manual"
    assert "the live loop stopped: DataError" in trip.detail
    assert trader.status().last_poll_error is not None


def test_exchange_sending_nothing_goes_stale(fake: FakeBinance) -> None:
    # Both symbols hold back every candle after the history: no time is filled in, and at 03:30
    # the data is 4.5 h = 16200 s old, above the 7280 s limit.
    trader = make_trader(fake, live_settings(fake.url))
    trader.prepare()
    trader.start()
    withheld = {int(TRADE_FROM.value // 1_000_000) + hour * HOUR_MS for hour in range(4)}
    fake.missing.update({"BTCUSDT": withheld, "ETHUSDT": withheld})
    fake.advance(3 * HOUR_MS)

    processed = asyncio.run(trader.poll_once())
    trip = trader.session.emergency_stop.trip
    trader.stop()

    assert processed == 0
    assert trip is not None
    assert trip.reason == "stale_data"
