"""Candle feeds for the kernel: aligned arrays over the union of all symbols' candle times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.strategies.base import SignalFrame


@dataclass
class SymbolSeries:
    """One symbol's candles as Python lists (scalar indexing on lists beats numpy in the loop).

    ``row_at[k]`` is the symbol's row for timeline step ``k``, or -1 when it has no candle then.
    """

    symbol: str
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    synthetic: list[bool]
    row_at: list[int]
    step_of_row: npt.NDArray[np.int64]
    low_array: npt.NDArray[np.float64]
    high_array: npt.NDArray[np.float64]


class CandleFeed:
    """The merged timeline of several symbols' validated candle frames."""

    def __init__(self, candles: dict[str, pd.DataFrame], timeframe_ns: int) -> None:
        if not candles:
            raise ValueError("CandleFeed needs at least one symbol")
        self.timeframe_ns = timeframe_ns
        per_symbol_times = {
            symbol: frame["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
            for symbol, frame in candles.items()
        }
        union = _union_of_sorted(list(per_symbol_times.values()))
        self.times: list[int] = union.tolist()
        self.times_array: npt.NDArray[np.int64] = union
        self.series: dict[str, SymbolSeries] = {}
        for symbol, frame in candles.items():
            self.series[symbol] = _build_series(symbol, frame, per_symbol_times[symbol], union)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def candle_count(self) -> int:
        return sum(len(series.close) for series in self.series.values())

    def signal_schedule(self, signals: dict[str, SignalFrame]) -> SignalSchedule:
        """List every (step, symbol, row) whose candle carries a signal, in timeline order.

        Symbols keep the order of ``signals`` within one step, so runs are reproducible.
        """
        names = list(signals)
        steps, symbol_ids, rows = [], [], []
        for symbol_id, symbol in enumerate(names):
            frame = signals[symbol]
            signal_rows = np.flatnonzero((frame.entry != 0) | frame.exit)
            steps.append(self.series[symbol].step_of_row[signal_rows])
            symbol_ids.append(np.full(len(signal_rows), symbol_id, dtype=np.int64))
            rows.append(signal_rows)
        if not names:
            return SignalSchedule([], [], [])
        all_steps = np.concatenate(steps)
        order = np.lexsort((np.concatenate(symbol_ids), all_steps))
        return SignalSchedule(
            steps=all_steps[order].tolist(),
            symbols=[names[i] for i in np.concatenate(symbol_ids)[order].tolist()],
            rows=np.concatenate(rows)[order].tolist(),
        )


@dataclass
class SignalSchedule:
    """Parallel lists of signal events sorted by timeline step."""

    steps: list[int]
    symbols: list[str]
    rows: list[int]


def _union_of_sorted(arrays: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
    """Return the sorted union of sorted, duplicate-free time arrays."""
    first = arrays[0]
    if all(len(a) == len(first) and np.array_equal(a, first) for a in arrays[1:]):
        return first
    merged = np.sort(np.concatenate(arrays), kind="stable")
    keep = np.empty(len(merged), dtype=bool)
    keep[:1] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _build_series(
    symbol: str,
    frame: pd.DataFrame,
    times: npt.NDArray[np.int64],
    union: npt.NDArray[np.int64],
) -> SymbolSeries:
    step_of_row = np.searchsorted(union, times).astype(np.int64)
    row_at = np.full(len(union), -1, dtype=np.int64)
    row_at[step_of_row] = np.arange(len(times))
    if "synthetic" in frame.columns:
        synthetic = frame["synthetic"].to_numpy(dtype=bool)
    else:
        synthetic = np.zeros(len(frame), dtype=bool)
    low = frame["low"].to_numpy(dtype=np.float64)
    high = frame["high"].to_numpy(dtype=np.float64)
    return SymbolSeries(
        symbol=symbol,
        open=frame["open"].to_numpy(dtype=np.float64).tolist(),
        high=frame["high"].to_numpy(dtype=np.float64).tolist(),
        low=frame["low"].to_numpy(dtype=np.float64).tolist(),
        close=frame["close"].to_numpy(dtype=np.float64).tolist(),
        volume=frame["volume"].to_numpy(dtype=np.float64).tolist(),
        synthetic=synthetic.tolist(),
        row_at=row_at.tolist(),
        step_of_row=step_of_row,
        low_array=low,
        high_array=high,
    )


def merge_activity(profiles: dict[str, dict[str, SignalFrame]]) -> dict[str, SignalFrame]:
    """Combine the profiles' signals per symbol into one frame marking every row with activity.

    Only the rows matter (for scheduling); the merged entry is +1 wherever any profile enters.
    """
    merged: dict[str, SignalFrame] = {}
    for frames in profiles.values():
        for symbol, frame in frames.items():
            active = (frame.entry != 0) | frame.exit
            if symbol in merged:
                active = active | (merged[symbol].entry != 0)
            entry = active.astype(np.int8)
            merged[symbol] = SignalFrame(
                entry, np.zeros(len(entry), dtype=np.bool_), frame.confidence
            )
    return merged
