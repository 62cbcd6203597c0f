"""The pure rules of the live timeline, on hand-made candles."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantum_trader.backtest.signal_set import SignalSet
from quantum_trader.live.timeline import complete_times, mask_entries_before
from quantum_trader.strategies.base import SignalFrame

HOUR_NS = 3_600 * 10**9
T0 = pd.Timestamp("2025-01-01 00:00", tz="UTC")


def candles(hours: list[int], closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": [T0 + pd.Timedelta(hours=h) for h in hours],
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [10.0] * len(hours),
            "synthetic": [False] * len(hours),
        }
    )


def test_missing_symbol_stops_before_the_wait() -> None:
    # The timeline ends at 00:00. A has 01:00 and 02:00, B only 01:00. At 03:00:30 the 02:00
    # candle closed 30 s ago, under the 60 s wait: only 01:00 is complete.
    timeline = {"A": candles([0], [100.0]), "B": candles([0], [50.0])}
    fetched = {"A": candles([1, 2], [101.0, 102.0]), "B": candles([1], [51.0])}
    now = (T0 + pd.Timedelta(hours=3, seconds=30)).value

    rows = complete_times(timeline, fetched, T0.value + 2 * HOUR_NS, HOUR_NS,
                          now_ns=now, max_wait_seconds=60, exchange="test")  # fmt: skip

    assert rows is not None
    assert rows["A"]["close"].tolist() == [101.0]
    assert rows["B"]["close"].tolist() == [51.0]


def test_missing_symbol_gets_flat_candle_after_wait() -> None:
    # At 03:01:01 the wait has passed: B's 02:00 candle is flat at its 01:00 close, 51.
    timeline = {"A": candles([0], [100.0]), "B": candles([0], [50.0])}
    fetched = {"A": candles([1, 2], [101.0, 102.0]), "B": candles([1], [51.0])}
    now = (T0 + pd.Timedelta(hours=3, seconds=61)).value

    rows = complete_times(timeline, fetched, T0.value + 2 * HOUR_NS, HOUR_NS,
                          now_ns=now, max_wait_seconds=60, exchange="test")  # fmt: skip

    assert rows is not None
    flat = rows["B"].iloc[1]
    assert rows["B"]["date"].tolist() == [T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2)]
    assert [flat["open"], flat["high"], flat["low"], flat["close"]] == [51.0] * 4
    assert flat["volume"] == 0.0
    assert bool(flat["synthetic"])
    assert not bool(rows["A"]["synthetic"].iloc[1])


def test_nothing_complete_returns_none() -> None:
    timeline = {"A": candles([0], [100.0]), "B": candles([0], [50.0])}
    fetched = {"A": candles([1], [101.0]), "B": candles([], [])}
    now = (T0 + pd.Timedelta(hours=2, seconds=5)).value

    rows = complete_times(timeline, fetched, T0.value + HOUR_NS, HOUR_NS,
                          now_ns=now, max_wait_seconds=60, exchange="test")  # fmt: skip

    assert rows is None


def test_mask_removes_entries_before_trading_starts() -> None:
    frame = candles([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    signals = SignalFrame(
        entry=np.array([1, -1, 1, 1], dtype=np.int8),
        exit=np.array([False, True, False, True]),
        confidence=np.ones(4),
    )
    masked = mask_entries_before(
        SignalSet({"trend": {"A": signals}}), {"A": frame}, (T0 + pd.Timedelta(hours=2)).value
    )

    result = masked.profiles["trend"]["A"]
    assert result.entry.tolist() == [0, 0, 1, 1]
    assert result.exit.tolist() == [False, True, False, True]
    assert signals.entry.tolist() == [1, -1, 1, 1]  # the input is not changed


def test_time_no_symbol_delivered_is_never_filled() -> None:
    # Neither symbol has the 01:00 candle, long after the wait: nothing is made up.
    timeline = {"A": candles([0], [100.0]), "B": candles([0], [50.0])}
    fetched = {"A": candles([], []), "B": candles([], [])}
    now = (T0 + pd.Timedelta(hours=5)).value

    rows = complete_times(timeline, fetched, T0.value + 3 * HOUR_NS, HOUR_NS,
                          now_ns=now, max_wait_seconds=60, exchange="test")  # fmt: skip

    assert rows is None
