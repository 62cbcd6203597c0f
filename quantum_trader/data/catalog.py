"""Find and load candle files in a freqtrade-style data folder.

Layout (as written by ``freqtrade download-data``):

- spot: ``<datadir>/<BASE>_<QUOTE>-<timeframe>.<ext>``, symbol ``BASE/QUOTE``;
- futures: ``<datadir>/futures/<BASE>_<QUOTE>_<SETTLE>-<timeframe>-<candle_type>.<ext>``,
  symbol ``BASE/QUOTE:SETTLE``, candle_type one of ``FUTURES_CANDLE_TYPES``.

When one (symbol, timeframe, candle_type) exists in several formats, the catalog uses the first
of feather, parquet, json.gz, json, csv: the binary formats keep exact types and load fastest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from quantum_trader.data.loaders import read_candle_file, read_funding_rates
from quantum_trader.data.timeframes import TIMEFRAMES, timeframe_to_seconds
from quantum_trader.data.validation import CandleReport, validate_candles
from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

SPOT = "spot"
FUNDING_RATE = "funding_rate"
FUTURES_CANDLE_TYPES: tuple[str, ...] = ("futures", "mark", FUNDING_RATE, "index", "premiumIndex")
CANDLE_TYPES: tuple[str, ...] = (SPOT, *FUTURES_CANDLE_TYPES)
FORMAT_PREFERENCE: tuple[str, ...] = ("feather", "parquet", "json.gz", "json", "csv")

_EXTENSION = r"\.(?P<fmt>feather|parquet|json\.gz|json|csv)"
_SPOT_NAME = re.compile(
    rf"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)-(?P<tf>\w+){_EXTENSION}$"
)
_FUTURES_NAME = re.compile(
    r"^(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)_(?P<settle>[A-Za-z0-9]+)-(?P<tf>\w+)"
    rf"-(?P<type>{'|'.join(FUTURES_CANDLE_TYPES)}){_EXTENSION}$"
)


@dataclass(frozen=True)
class CatalogEntry:
    """One candle file: what it contains and where it is."""

    symbol: str
    timeframe: str
    candle_type: str
    path: Path
    fmt: str


def futures_symbol(symbol: str) -> str:
    """Return the USDT-M style futures symbol of ``symbol``: "XRP/USDT" -> "XRP/USDT:USDT".

    A symbol that already names its settle currency is returned unchanged.
    """
    if ":" in symbol:
        return symbol
    base, slash, quote = symbol.partition("/")
    if not slash or not base or not quote:
        raise ConfigurationError(
            f"Invalid symbol {symbol!r}: write it as BASE/QUOTE, for example BTC/USDT."
        )
    return f"{symbol}:{quote}"


class DataCatalog:
    """The candle files of one data folder, indexed by symbol, timeframe and candle type."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = Path(datadir)
        if not self.datadir.is_dir():
            raise ConfigurationError(
                f"Data folder {self.datadir} does not exist. Pass --datadir with the folder "
                "that contains the candle files (for example data/binance)."
            )
        self._entries = _scan(self.datadir)
        logger.debug("Found %d candle files in %s.", len(self._entries), self.datadir)

    def entries(self) -> list[CatalogEntry]:
        """Return every usable file, sorted by candle type, symbol and timeframe."""
        return sorted(
            self._entries.values(),
            key=lambda e: (e.candle_type, e.symbol, timeframe_to_seconds(e.timeframe)),
        )

    def symbols(self, candle_type: str = SPOT) -> list[str]:
        """Return the sorted symbols that have files of ``candle_type``."""
        _check_candle_type(candle_type)
        return sorted({e.symbol for e in self._entries.values() if e.candle_type == candle_type})

    def timeframes(self, symbol: str, candle_type: str = SPOT) -> list[str]:
        """Return the timeframes of ``symbol`` and ``candle_type``, shortest first."""
        _check_candle_type(candle_type)
        symbol = _lookup_symbol(symbol, candle_type)
        found = {
            e.timeframe
            for e in self._entries.values()
            if (e.symbol, e.candle_type) == (symbol, candle_type)
        }
        return sorted(found, key=timeframe_to_seconds)

    def find(self, symbol: str, timeframe: str, candle_type: str = SPOT) -> CatalogEntry:
        """Return the file for ``symbol``, ``timeframe`` and ``candle_type``.

        A spot symbol ("XRP/USDT") is mapped to its futures symbol for the futures candle
        types. Raises ConfigurationError listing what the folder has instead.
        """
        timeframe_to_seconds(timeframe)
        _check_candle_type(candle_type)
        symbol = _lookup_symbol(symbol, candle_type)
        entry = self._entries.get((symbol, timeframe, candle_type))
        if entry is not None:
            return entry

        available = self.timeframes(symbol, candle_type)
        if available:
            raise ConfigurationError(
                f"No {timeframe} {candle_type} candles for {symbol} in {self.datadir}. "
                f"Available timeframes: {', '.join(available)}. Pass one of them, or download "
                f"{timeframe} data into the folder."
            )
        symbols = self.symbols(candle_type)
        raise ConfigurationError(
            f"No {candle_type} candles for {symbol} in {self.datadir}. Available {candle_type} "
            f"symbols: {', '.join(symbols) or 'none'}. Pick one of them, or download the data "
            "into the folder."
        )

    def describe(self) -> list[dict[str, object]]:
        """Read every file and return its symbol, timeframe, type, rows, first and last time."""
        rows: list[dict[str, object]] = []
        for entry in self.entries():
            frame = read_candle_file(entry.path)
            empty = frame.empty
            rows.append(
                {
                    "symbol": entry.symbol,
                    "timeframe": entry.timeframe,
                    "candle_type": entry.candle_type,
                    "rows": len(frame),
                    "start": None if empty else frame["date"].min().isoformat(),
                    "end": None if empty else frame["date"].max().isoformat(),
                    "path": str(entry.path),
                }
            )
        return rows

    def load(
        self,
        symbol: str,
        timeframe: str,
        candle_type: str = SPOT,
        *,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        fill_gaps: bool = True,
        conflicting_duplicates: Literal["merge", "reject"] = "merge",
    ) -> tuple[pd.DataFrame, CandleReport]:
        """Read, validate and slice the candles of ``symbol`` to open times in [start, end].

        ``start`` and ``end`` are ISO strings or timestamps, read as UTC when they carry no
        timezone. The report covers the whole file, because gaps and duplicates are found
        before slicing. Raises ConfigurationError when the slice is empty.
        """
        entry = self.find(symbol, timeframe, candle_type)
        start_ts = _to_utc(start, "start")
        end_ts = _to_utc(end, "end")
        if start_ts is not None and end_ts is not None and start_ts > end_ts:
            raise ConfigurationError(f"start {start_ts} is after end {end_ts}; swap them.")

        raw = read_candle_file(entry.path)
        candles, report = validate_candles(
            raw,
            timeframe,
            source=str(entry.path),
            fill_gaps=fill_gaps,
            conflicting_duplicates=conflicting_duplicates,
        )
        return _slice(candles, start_ts, end_ts, entry), report

    def load_funding_rates(self, symbol: str) -> pd.Series:
        """Return the funding rates of a futures symbol ("XRP/USDT:USDT" or "XRP/USDT")."""
        symbol = futures_symbol(symbol)
        entries = [
            e for e in self.entries() if e.symbol == symbol and e.candle_type == FUNDING_RATE
        ]
        if not entries:
            raise ConfigurationError(
                f"No funding-rate file for {symbol} in {self.datadir / 'futures'}. Symbols with "
                f"funding rates: {', '.join(self.symbols(FUNDING_RATE)) or 'none'}. Download "
                "them with freqtrade download-data --trading-mode futures, or set a constant "
                "funding rate."
            )
        entry = entries[0]
        interval_hours = max(1, timeframe_to_seconds(entry.timeframe) // 3600)
        return read_funding_rates(entry.path, interval_hours=interval_hours)


def _check_candle_type(candle_type: str) -> None:
    if candle_type not in CANDLE_TYPES:
        raise ConfigurationError(
            f"Invalid candle type {candle_type!r}: use one of {', '.join(CANDLE_TYPES)}."
        )


def _lookup_symbol(symbol: str, candle_type: str) -> str:
    return symbol if candle_type == SPOT else futures_symbol(symbol)


def _scan(datadir: Path) -> dict[tuple[str, str, str], CatalogEntry]:
    found: dict[tuple[str, str, str], CatalogEntry] = {}
    folders = [datadir, datadir / "futures"]
    for path in (p for folder in folders if folder.is_dir() for p in sorted(folder.iterdir())):
        entry = _parse_name(path)
        if entry is None:
            logger.debug("Skipped %s: not a candle file name this catalog reads.", path)
            continue
        key = (entry.symbol, entry.timeframe, entry.candle_type)
        current = found.get(key)
        if current is None or _rank(entry) < _rank(current):
            found[key] = entry
    return found


def _rank(entry: CatalogEntry) -> int:
    return FORMAT_PREFERENCE.index(entry.fmt)


def _parse_name(path: Path) -> CatalogEntry | None:
    if not path.is_file():
        return None
    futures = _FUTURES_NAME.match(path.name)
    if futures is not None:
        symbol = f"{futures['base']}/{futures['quote']}:{futures['settle']}"
        match, candle_type = futures, futures["type"]
    else:
        spot = _SPOT_NAME.match(path.name)
        if spot is None:
            return None
        symbol = f"{spot['base']}/{spot['quote']}"
        match, candle_type = spot, SPOT
    if match["tf"] not in TIMEFRAMES:
        return None
    return CatalogEntry(symbol, match["tf"], candle_type, path, match["fmt"])


def _to_utc(value: str | pd.Timestamp | None, name: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"Invalid {name} time {value!r}: use ISO 8601, for example 2024-01-31 or "
            "2024-01-31T12:00:00Z."
        ) from exc
    if pd.isna(stamp):
        raise ConfigurationError(f"Invalid {name} time {value!r}: use ISO 8601.")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _slice(
    candles: pd.DataFrame,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    entry: CatalogEntry,
) -> pd.DataFrame:
    if start is None and end is None:
        return candles
    mask = pd.Series(True, index=candles.index)
    if start is not None:
        mask &= candles["date"] >= start
    if end is not None:
        mask &= candles["date"] <= end
    sliced = candles.loc[mask].reset_index(drop=True)
    if sliced.empty:
        first = candles["date"].iloc[0].isoformat() if len(candles) else "none"
        last = candles["date"].iloc[-1].isoformat() if len(candles) else "none"
        raise ConfigurationError(
            f"No {entry.symbol} {entry.timeframe} candles between {start} and {end} in "
            f"{entry.path}; the file covers {first} to {last}. Adjust start and end."
        )
    return sliced
