"""External signals from a CSV file, for trading signals computed outside Quantum Trader.

The file has a header row and these columns:

- ``timestamp``: open time of the candle that produced the signal. ISO 8601 with or without a
  timezone (a naive time is UTC), or epoch seconds or milliseconds (numbers of 1e11 and more are
  read as milliseconds, smaller ones as seconds).
- ``symbol``: the market in slash form, for example ``BTC/USDT`` (``BTCUSDT`` is rejected).
  Letters are upper-cased.
- ``signal``: ``long``, ``short`` or ``exit`` (any letter case).
- ``stop_pct`` and ``take_profit_pct`` (optional): fractions of the entry price, ``0 < x < 1``.
  An empty cell means the sizing defaults apply.

A signal on candle ``i`` executes at the open of candle ``i + 1``, like every other signal.
Every problem in the file raises ConfigurationError naming the file, the 1-based line, the value
and the fix. Signals outside the candle data's time range are skipped with one warning.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import ConfigurationError, DataError
from quantum_trader.strategies.base import ENTRY_LONG, ENTRY_SHORT, SignalFrame

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("timestamp", "symbol", "signal")
OPTIONAL_COLUMNS = ("stop_pct", "take_profit_pct")
SIGNAL_VALUES = ("long", "short", "exit")

# Epoch values from 1e11 on are milliseconds: 1e11 seconds would be the year 5138.
_EPOCH_MS_THRESHOLD = Decimal(10**11)
_EPOCH_PATTERN = re.compile(r"^\d+(\.\d+)?$")
_SYMBOL_PATTERN = re.compile(r"^[^/\s]+/[^/\s]+$")


@dataclass(frozen=True, slots=True)
class _SignalRow:
    line: int
    time_ns: int
    symbol: str
    signal: str
    stop_pct: float
    take_profit_pct: float


class SignalsFileStrategy:
    """Replays the signals of a CSV file onto the backtest's candles."""

    name = "signals"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows = _read_rows(self.path)

    def generate(self, candles: dict[str, pd.DataFrame]) -> dict[str, SignalFrame]:
        """Place each signal on the candle of its symbol that opened at its timestamp."""
        times = {symbol: _open_times_ns(symbol, frame) for symbol, frame in candles.items()}
        frames = {symbol: _empty_frame(len(t)) for symbol, t in times.items()}
        outside = 0
        for row in self.rows:
            symbol = _backtest_symbol(row.symbol, times)
            if symbol is None:
                raise self._error(
                    row.line,
                    f"symbol {row.symbol!r} is not in the backtest",
                    f"use one of {', '.join(sorted(times))} or add the symbol to the backtest",
                )
            open_times = times[symbol]
            if len(open_times) == 0 or not open_times[0] <= row.time_ns <= open_times[-1]:
                outside += 1
                continue
            index = self._candle_index(row, open_times)
            _apply(frames[symbol], index, row)

        if outside:
            logger.warning(
                "Skipped %d signals of %s whose timestamps lie outside the candle data.",
                outside,
                self.path,
            )
        return frames

    def _candle_index(self, row: _SignalRow, open_times: npt.NDArray[np.int64]) -> int:
        index = int(np.searchsorted(open_times, row.time_ns))
        if open_times[index] == row.time_ns:
            return index
        before = _iso(int(open_times[index - 1]))
        after = _iso(int(open_times[index]))
        raise self._error(
            row.line,
            f"timestamp {_iso(row.time_ns)} is not a candle open time of {row.symbol} "
            f"(timeframe {_timeframe(open_times)}; nearest candles open at {before} and {after})",
            "use the open time of the candle that produced the signal",
        )

    def _error(self, line: int, problem: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"signals file {self.path}, line {line}: {problem}; {fix}")


def _read_rows(path: Path) -> list[_SignalRow]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            _check_header(path, header)
            rows = [
                _parse_row(path, reader.line_num, header, values)
                for values in reader
                if any(value.strip() for value in values)
            ]
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"signals file {path} not found; check the path given as strategy.signals_file"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"signals file {path} is not UTF-8 text; save it as UTF-8"
        ) from exc
    _check_duplicates(path, rows)
    return rows


def _check_header(path: Path, header: list[str]) -> None:
    expected = f"the header must name {', '.join(REQUIRED_COLUMNS)}"
    expected += f" and optionally {', '.join(OPTIONAL_COLUMNS)}"
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise ConfigurationError(
                f"signals file {path}, line 1: missing column {column!r}; {expected}"
            )
    for column in header:
        if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise ConfigurationError(
                f"signals file {path}, line 1: unknown column {column!r}; {expected}"
            )
    if len(set(header)) != len(header):
        raise ConfigurationError(f"signals file {path}, line 1: a column repeats; {expected}")


def _parse_row(path: Path, line: int, header: list[str], values: list[str]) -> _SignalRow:
    def fail(problem: str, fix: str) -> ConfigurationError:
        return ConfigurationError(f"signals file {path}, line {line}: {problem}; {fix}")

    if len(values) != len(header):
        raise fail(f"{len(values)} fields but the header has {len(header)}", "fix the row")
    cells = {name: value.strip() for name, value in zip(header, values, strict=True)}

    try:
        time_ns = _parse_timestamp(cells["timestamp"])
    except ValueError as exc:
        raise fail(
            f"invalid timestamp {cells['timestamp']!r}",
            "use ISO 8601 (2024-09-14T00:00:00Z) or epoch seconds or milliseconds",
        ) from exc

    symbol = cells["symbol"].upper()
    if not _SYMBOL_PATTERN.match(symbol):
        raise fail(
            f"invalid symbol {cells['symbol']!r}", "use the slash form, for example BTC/USDT"
        )

    signal = cells["signal"].lower()
    if signal not in SIGNAL_VALUES:
        raise fail(f"unknown signal {cells['signal']!r}", f"use one of {', '.join(SIGNAL_VALUES)}")

    fractions: list[float] = []
    for column in OPTIONAL_COLUMNS:
        text = cells.get(column, "")
        try:
            fractions.append(_parse_fraction(text))
        except ValueError as exc:
            raise fail(
                f"{column} {text!r} is not a fraction between 0 and 1",
                "write it as a fraction of the entry price, for example 0.02 for 2%",
            ) from exc
    stop_pct, take_profit_pct = fractions
    return _SignalRow(line, time_ns, symbol, signal, stop_pct, take_profit_pct)


def _parse_timestamp(text: str) -> int:
    """Return the UTC time of ``text`` in integer nanoseconds; raise ValueError when invalid."""
    if _EPOCH_PATTERN.match(text):
        value = Decimal(text)
        scale = 1_000_000 if value >= _EPOCH_MS_THRESHOLD else 1_000_000_000
        return int(value * scale)
    moment = datetime.fromisoformat(text)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return int(pd.Timestamp(moment).value)


def _parse_fraction(text: str) -> float:
    """Return NaN for an empty cell, else the value; raise ValueError unless 0 < value < 1."""
    if not text:
        return math.nan
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(f"{value} is outside (0, 1)")
    return value


def _check_duplicates(path: Path, rows: list[_SignalRow]) -> None:
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        key = (row.time_ns, row.symbol)
        if key in seen:
            raise ConfigurationError(
                f"signals file {path}, lines {seen[key]} and {row.line}: both give a signal for "
                f"{row.symbol} at {_iso(row.time_ns)}; keep one of them"
            )
        seen[key] = row.line


def _open_times_ns(symbol: str, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Return the candle open times (UTC ns) from a ``date`` column or a DatetimeIndex."""
    if "date" in frame.columns:
        stamps = pd.DatetimeIndex(frame["date"])
    elif isinstance(frame.index, pd.DatetimeIndex):
        stamps = frame.index
    else:
        raise DataError(
            f"candles of {symbol} have neither a 'date' column nor a DatetimeIndex; "
            "load them with the data loader"
        )
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC")
    times = np.asarray(stamps.as_unit("ns").asi8, dtype=np.int64)
    if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
        raise DataError(
            f"candles of {symbol} are not sorted by open time without duplicates; "
            "load them with the data loader, which repairs or rejects them"
        )
    return times


def _empty_frame(rows: int) -> SignalFrame:
    return SignalFrame(
        entry=np.zeros(rows, dtype=np.int8),
        exit=np.zeros(rows, dtype=np.bool_),
        confidence=np.ones(rows, dtype=np.float64),
        stop_pct=np.full(rows, np.nan),
        take_profit_pct=np.full(rows, np.nan),
    )


def _apply(frame: SignalFrame, index: int, row: _SignalRow) -> None:
    # The frame is frozen but its arrays are not; _empty_frame always creates both optional ones.
    if row.signal == "exit":
        frame.exit[index] = True
        return
    frame.entry[index] = ENTRY_LONG if row.signal == "long" else ENTRY_SHORT
    if frame.stop_pct is not None:
        frame.stop_pct[index] = row.stop_pct
    if frame.take_profit_pct is not None:
        frame.take_profit_pct[index] = row.take_profit_pct


def _iso(time_ns: int) -> str:
    return pd.Timestamp(time_ns, tz="UTC").isoformat()


def _timeframe(open_times: npt.NDArray[np.int64]) -> str:
    """Return the smallest step between open times as 5m, 1h, 1d and so on."""
    steps = np.diff(open_times)
    if len(steps) == 0:
        return "unknown"
    seconds = int(steps.min()) // 1_000_000_000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _backtest_symbol(symbol: str, symbols: Mapping[str, object]) -> str | None:
    """Match a file symbol to a backtest symbol; BTC/USDT also names the BTC/USDT:USDT perpetual."""
    if symbol in symbols:
        return symbol
    if ":" not in symbol:
        quote = symbol.split("/")[-1]
        perpetual = f"{symbol}:{quote}"
        if perpetual in symbols:
            return perpetual
    return None
