"""Closed candles through the real ccxt Binance client, served by a Binance look-alike on
loopback (see fake_binance.py): paging, the forming candle, retries and errors."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from quantum_trader.config import LiveSettings
from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError, DataError, MissingDependencyError
from quantum_trader.live.ccxt_source import CcxtCandleSource, LiveDataError
from tests.live.fake_binance import Fault, fake_binance

pytest.importorskip("ccxt", reason="the live candle source needs ccxt (pip install ccxt)")

HOUR = pd.Timedelta(hours=1)


def source(url: str, clock: object, **settings: object) -> tuple[CcxtCandleSource, list[float]]:
    sleeps: list[float] = []
    live = LiveSettings(api_url=url, **settings)  # type: ignore[arg-type]
    return (
        CcxtCandleSource(live, "1h", MarketType.SPOT, clock=clock, sleep=sleeps.append),  # type: ignore[arg-type]
        sleeps,
    )


def test_history_pages_and_drops_the_forming_candle() -> None:
    # At 10:30 the 10:00 candle is still forming, so the newest closed candle opened at 09:00.
    # 1500 candles at a page limit of 1000 take two klines requests.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, _ = source(fake.url, fake.clock)
        frame = candles.history("BTC/USDT", 1500)
        klines = [path for path in fake.requests if "/klines" in path]

    assert len(frame) == 1500
    assert frame["date"].iloc[-1] == pd.Timestamp("2025-03-01 09:00", tz="UTC")
    assert frame["date"].iloc[0] == pd.Timestamp("2025-03-01 09:00", tz="UTC") - 1499 * HOUR
    assert frame["date"].diff().dropna().eq(HOUR).all()
    assert len(klines) == 2
    assert not frame["synthetic"].any()


def test_closed_candles_equal_the_shipped_file() -> None:
    # The exchange's candle values pass through ccxt's parsing unchanged (to 8 decimals).
    with fake_binance(("ETH/USDT",), "2025-02-01 00:00") as fake:
        candles, _ = source(fake.url, fake.clock)
        frame = candles.closed_since("ETH/USDT", pd.Timestamp("2025-01-31 20:00", tz="UTC").value)
        shipped = fake.candles["ETHUSDT"]
    expected = shipped[
        (shipped["date"] >= pd.Timestamp("2025-01-31 20:00", tz="UTC"))
        & (shipped["date"] <= pd.Timestamp("2025-01-31 23:00", tz="UTC"))
    ].reset_index(drop=True)

    assert frame["date"].tolist() == expected["date"].tolist()
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].tolist() == pytest.approx(expected[column].tolist(), rel=1e-12)


def test_network_errors_are_retried_with_doubling_waits() -> None:
    # Two 503s from the gateway, then the candles: with retries=2 and a 1 s backoff the waits
    # are 1 s and 2 s.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, sleeps = source(fake.url, fake.clock, retries=2, retry_backoff_seconds=1.0)
        fake.faults.extend([Fault(503, "Service Unavailable")] * 2)
        frame = candles.history("BTC/USDT", 3)

    assert sleeps == [1.0, 2.0]
    assert frame["date"].tolist() == [
        pd.Timestamp("2025-03-01 07:00", tz="UTC"),
        pd.Timestamp("2025-03-01 08:00", tz="UTC"),
        pd.Timestamp("2025-03-01 09:00", tz="UTC"),
    ]


def test_retries_exhausted_names_the_exchange_and_symbol() -> None:
    # A 429 is Binance's rate limit; with retries=1 the second 429 ends the attempt.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, sleeps = source(fake.url, fake.clock, retries=1, retry_backoff_seconds=0.5)
        fake.faults.extend([Fault(429, {"code": -1003, "msg": "Too many requests"})] * 2)
        with pytest.raises(LiveDataError, match=r"binance failed 2 times to deliver BTC/USDT"):
            candles.history("BTC/USDT", 3)

    assert sleeps == [0.5]


def test_unknown_symbol_is_a_configuration_error() -> None:
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, _ = source(fake.url, fake.clock)
        with pytest.raises(ConfigurationError, match=r"no market 'DOGE/USDT'.*data.symbols"):
            candles.history("DOGE/USDT", 3)


def test_rejected_request_is_not_retried() -> None:
    # An exchange error that is not a network error (here a bad parameter) fails at once.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, sleeps = source(fake.url, fake.clock, retries=3)
        fake.faults.append(Fault(400, {"code": -1100, "msg": "Illegal characters found"}))
        with pytest.raises(LiveDataError, match="rejected the candle request for BTC/USDT"):
            candles.history("BTC/USDT", 3)

    assert sleeps == []


def test_missing_ccxt_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)
    with pytest.raises(MissingDependencyError, match="pip install ccxt"):
        CcxtCandleSource(LiveSettings(), "1h", MarketType.SPOT)


def test_unknown_exchange_id_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"live.exchange='nosuchexchange'"):
        CcxtCandleSource(LiveSettings(exchange="nosuchexchange"), "1h", MarketType.SPOT)


def test_api_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="api_url"):
        LiveSettings(api_url="ftp://127.0.0.1/")


def test_binance_operation_failed_is_retried() -> None:
    # ccxt 4.5 maps Binance's -1001 ("internal error") to OperationFailed, not NetworkError.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, sleeps = source(fake.url, fake.clock, retries=2, retry_backoff_seconds=1.0)
        fake.faults.append(Fault(503, {"code": -1001, "msg": "Service unavailable."}))
        frame = candles.history("BTC/USDT", 2)

    assert sleeps == [1.0]
    assert len(frame) == 2


@pytest.mark.parametrize("bad", ["NaN", None])
def test_candle_without_a_price_is_a_data_error(bad: str | None) -> None:
    # The 08:00 candle comes with its close missing; the validation must not drop and fill it.
    with fake_binance(("BTC/USDT",), "2025-03-01 10:30") as fake:
        candles, _ = source(fake.url, fake.clock)
        open_ms = int(pd.Timestamp("2025-03-01 08:00", tz="UTC").value // 1_000_000)
        fake.overrides[("BTCUSDT", open_ms)] = ["85000", "86000", "84000", bad, "10"]
        with pytest.raises(DataError, match=r"BTC/USDT at 2025-03-01T08:00:00\+00:00"):
            candles.history("BTC/USDT", 3)
