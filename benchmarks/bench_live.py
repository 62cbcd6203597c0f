"""Measure the live paper trader's start and its rebuild per poll, with default settings.

A Binance look-alike on 127.0.0.1 (tests/live/fake_binance.py) serves the shipped 1h candles of
the five symbols up to a movable clock, through the real ccxt Binance client. The trader starts
with the default history (the 1h model's train_window + retrain_every = 4,720 candles per
symbol), the full ensemble and all fourteen subsystems. Then the clock moves one hour at a time
and each poll appends one candle per symbol, which rebuilds the signals and the session and
replays the whole timeline. Timed:

(1) the start: fetching the history, training the first fold, building and warming up;
(2) the first ``--polls`` polls after the start;
(3) the same number of polls after the timeline has grown by ``--grow`` candles (one day is
    24), which shows how the rebuild time rises with the length of the run.

Usage: python benchmarks/bench_live.py [--polls 5] [--grow 720]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from quantum_trader.config import DEFAULT_SYMBOLS, Settings  # noqa: E402
from quantum_trader.core.types import MarketType  # noqa: E402
from quantum_trader.live.ccxt_source import CcxtCandleSource  # noqa: E402
from quantum_trader.live.trader import LiveTrader  # noqa: E402
from tests.live.fake_binance import FakeBinance, fake_binance  # noqa: E402

HOUR_MS = 3_600_000
# The shipped 1h files start in September 2024; 4,720 hours of history fit before this time.
START = "2025-04-10 00:30"


def time_polls(trader: LiveTrader, fake: FakeBinance, polls: int) -> list[float]:
    seconds = []
    for _ in range(polls):
        fake.advance(HOUR_MS)
        began = time.perf_counter()
        processed = asyncio.run(trader.poll_once())
        seconds.append(time.perf_counter() - began)
        if processed != 1:
            raise SystemExit(f"a poll processed {processed} candle times instead of 1")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=5, help="Timed polls per phase.")
    parser.add_argument("--grow", type=int, default=720, help="Candles added between phases.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    with fake_binance(DEFAULT_SYMBOLS, START) as fake:
        settings = Settings(
            data={"timeframe": "1h", "symbols": DEFAULT_SYMBOLS},
            live={"enabled": True, "api_url": fake.url},
        )
        source = CcxtCandleSource(settings.live, "1h", MarketType.SPOT, clock=fake.clock)
        trader = LiveTrader(settings, source=source)
        began = time.perf_counter()
        trader.prepare()
        trader.start()
        start_seconds = time.perf_counter() - began
        steps_at_start = len(trader.session.feed)

        first = time_polls(trader, fake, args.polls)
        fake.advance(args.grow * HOUR_MS)
        asyncio.run(trader.poll_once())
        grown_steps = len(trader.session.feed)
        later = time_polls(trader, fake, args.polls)
        trader.stop()

    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # noqa: T201
    print(f"Python {platform.python_version()}, {platform.machine()}")  # noqa: T201
    print(  # noqa: T201
        f"(1) start, {steps_at_start} candle times x 5 symbols fetched, trained, warmed up: "
        f"{start_seconds:.1f} s"
    )
    print(  # noqa: T201
        f"(2) poll with one new candle at {steps_at_start} candle times: median "
        f"{statistics.median(first):.2f} s, max {max(first):.2f} s"
    )
    print(  # noqa: T201
        f"(3) poll with one new candle at {grown_steps} candle times: median "
        f"{statistics.median(later):.2f} s, max {max(later):.2f} s"
    )


if __name__ == "__main__":
    main()
