"""Read candle files into one raw frame shape, without checking the candles.

``read_candle_file`` returns the rows in file order with the columns ``date``
(datetime64[ns, UTC], candle open time) and ``open``, ``high``, ``low``, ``close``, ``volume``
(float64). Checks and repairs belong to ``quantum_trader.data.validation``.

Timestamps: epoch numbers are UTC (seconds, milliseconds, microseconds or nanoseconds, distinguished
by magnitude). Text or datetime values without a timezone are read as UTC and the frame gets
``attrs["naive_timestamps"] = True`` so that validation reports it. The host's local timezone is
never used.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from quantum_trader.errors import DataError

logger = logging.getLogger(__name__)

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
CANDLE_COLUMNS: tuple[str, ...] = ("date", *PRICE_COLUMNS, "volume")
SUPPORTED_FORMATS: tuple[str, ...] = ("feather", "parquet", "csv", "json", "json.gz")
DATE_ALIASES: tuple[str, ...] = ("date", "timestamp", "time", "datetime", "open_time")

# Epoch values below these bounds are seconds, milliseconds and microseconds, and larger values
# are nanoseconds. 1e11 s is the year 5138 and 1e11 ms is 1973, so candles from 1973 to 5138
# are read in the right unit.
_EPOCH_UNIT_BOUNDS: tuple[tuple[float, Literal["s", "ms", "us"]], ...] = (
    (1e11, "s"),
    (1e14, "ms"),
    (1e17, "us"),
)

# Exchange jitter keeps funding times within this distance of the grid. A larger offset means
# the caller passed the wrong interval.
_FUNDING_TOLERANCE = pd.Timedelta(minutes=1)


def file_format(path: Path) -> str:
    """Return the candle format of ``path`` from its extension, one of ``SUPPORTED_FORMATS``."""
    name = path.name.lower()
    if name.endswith(".json.gz"):
        return "json.gz"
    suffix = path.suffix.lower().lstrip(".")
    if suffix in SUPPORTED_FORMATS:
        return suffix
    raise DataError(
        f"Unsupported candle file format: {path}. Supported extensions: "
        f"{', '.join('.' + fmt for fmt in SUPPORTED_FORMATS)}.",
        path=str(path),
    )


def read_candle_file(path: Path) -> pd.DataFrame:
    """Read a candle file and return its raw rows in file order.

    Raises DataError when the file is missing, has an unsupported extension, cannot be parsed,
    lacks a column, or has a timestamp that cannot be read.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise DataError(f"Candle file not found: {path}", path=str(path))

    try:
        raw = _read_raw(path, fmt)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"Cannot read candle file {path} as {fmt}: {exc}. Check that the file is complete "
            "and matches its extension.",
            path=str(path),
        ) from exc

    frame = _normalise_columns(raw, path)
    dates, naive = to_utc_dates(frame["date"], source=str(path))
    result = pd.DataFrame({"date": dates})
    for column in CANDLE_COLUMNS[1:]:
        result[column] = _to_float(frame[column], column, path)
    result.attrs["naive_timestamps"] = naive
    logger.debug("Read %d candle rows from %s.", len(result), path)
    return result


def read_funding_rates(path: Path, interval_hours: int = 8) -> pd.Series:
    """Read a freqtrade funding-rate file (rate in ``open``) into a series named "funding_rate".

    The index is the funding time rounded to the nearest ``interval_hours`` grid point, because
    exchange records carry a few milliseconds of jitter. Rows with a NaN rate are dropped. Raises
    DataError when a time is more than one minute off the grid or two records share a time.
    """
    if interval_hours < 1 or 24 % interval_hours != 0:
        raise DataError(
            f"Invalid funding interval {interval_hours} hours for {path}: use a whole number "
            "of hours that divides 24 (1, 2, 4, 8 or 12).",
            path=str(path),
        )
    frame = read_candle_file(path)
    dates = frame["date"]
    rounded = dates.dt.round(f"{interval_hours}h")

    off_grid = ((dates - rounded).abs() > _FUNDING_TOLERANCE).to_numpy()
    if off_grid.any():
        row = int(np.flatnonzero(off_grid)[0])
        raise DataError(
            f"{path}: row {row} has funding time {dates.iloc[row].isoformat()}, more than one "
            f"minute from the {interval_hours}h funding grid. Pass the funding interval of this "
            "file as interval_hours.",
            path=str(path),
            row=row,
        )

    rates = pd.Series(frame["open"].to_numpy(), index=pd.DatetimeIndex(rounded, name="date"))
    rates.name = "funding_rate"
    rates = rates.dropna().sort_index()
    duplicated = rates.index.duplicated()
    if duplicated.any():
        when = rates.index[duplicated][0]
        raise DataError(
            f"{path}: two funding records round to {when.isoformat()}. Remove one of them.",
            path=str(path),
        )
    return rates


def to_utc_dates(values: pd.Series, *, source: str) -> tuple[pd.Series, bool]:
    """Convert timestamps to datetime64[ns, UTC] and report whether any were timezone-naive.

    Accepts datetimes (naive or aware), ISO 8601 strings and epoch numbers. Raises DataError
    naming ``source`` and the row when a value is missing or cannot be parsed.
    """
    naive = False
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        parsed = _from_epoch(values)
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().all() and len(values) > 0:
            parsed = _from_epoch(numbers)
        else:
            parsed, naive = _from_text(values)

    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC")
    else:
        naive = len(parsed) > 0
        parsed = parsed.dt.tz_localize("UTC")
    parsed = parsed.dt.as_unit("ns")

    missing = parsed.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{source}: row {row} has a missing or unreadable timestamp "
            f"{values.iloc[row]!r}. Remove or correct the row.",
            path=source,
            row=row,
        )
    return parsed.reset_index(drop=True), naive


def _from_epoch(numbers: pd.Series) -> pd.Series:
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    magnitude = float(np.abs(finite).max()) if finite.size else 0.0
    unit: Literal["s", "ms", "us", "ns"] = "ns"
    for bound, candidate in _EPOCH_UNIT_BOUNDS:
        if magnitude < bound:
            unit = candidate
            break
    return pd.Series(pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce"))


def _from_text(values: pd.Series) -> tuple[pd.Series, bool]:
    """Parse ISO 8601 text. The flag is True when aware and naive strings are mixed."""
    text = values.astype("string")
    try:
        return pd.Series(pd.to_datetime(text, format="ISO8601", errors="coerce")), False
    except (ValueError, TypeError):
        # Mixed aware and naive strings: the naive ones are read as UTC and reported.
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        return pd.Series(parsed), True


def _to_float(values: pd.Series, column: str, path: Path) -> pd.Series:
    try:
        return values.astype(np.float64).reset_index(drop=True)
    except (ValueError, TypeError):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = (numbers.isna() & values.notna()).to_numpy()
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: row {row} has a non-numeric {column} value {values.iloc[row]!r}. "
            "Remove or correct the row.",
            path=str(path),
            row=row,
        ) from None


def _read_raw(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "feather":
        return _with_index_as_column(pd.read_feather(path))
    if fmt == "parquet":
        return _with_index_as_column(pd.read_parquet(path))
    if fmt == "csv":
        return pd.read_csv(path)
    opener = gzip.open if fmt == "json.gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return _json_rows_to_frame(json.load(handle), path)


def _with_index_as_column(frame: pd.DataFrame) -> pd.DataFrame:
    # Parquet files written from a date-indexed frame keep the dates in the index.
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.reset_index()
    return frame


def _json_rows_to_frame(rows: Any, path: Path) -> pd.DataFrame:
    if not isinstance(rows, list):
        raise DataError(
            f"{path}: expected a JSON array of candles, found {type(rows).__name__}. Use rows of "
            "[epoch_ms, open, high, low, close, volume] or objects with date/open/high/low/"
            "close/volume keys.",
            path=str(path),
        )
    if not rows or isinstance(rows[0], dict):
        return pd.DataFrame(rows)

    for row, item in enumerate(rows):
        if not isinstance(item, list) or len(item) < len(CANDLE_COLUMNS):
            raise DataError(
                f"{path}: row {row} is {item!r}, expected "
                "[epoch_ms, open, high, low, close, volume]. Remove or correct the row.",
                path=str(path),
                row=row,
            )
    return pd.DataFrame([item[: len(CANDLE_COLUMNS)] for item in rows], columns=CANDLE_COLUMNS)


def _normalise_columns(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    renamed = {column: str(column).strip().lower() for column in frame.columns}
    frame = frame.rename(columns=renamed)
    found = list(frame.columns)

    date_column = next((alias for alias in DATE_ALIASES if alias in found), None)
    if date_column is None and found and (found[0] == "" or found[0].startswith("unnamed: 0")):
        # A CSV written with the dates as an unnamed index column (",Open,High,...").
        date_column = found[0]
    if date_column is not None:
        frame = frame.rename(columns={date_column: "date"})

    for column in CANDLE_COLUMNS:
        if column not in frame.columns:
            expected = "/".join(DATE_ALIASES) if column == "date" else column
            raise DataError(
                f"{path}: missing column {column!r} (accepted names: {expected}). "
                f"Columns found: {', '.join(map(str, found)) or 'none'}.",
                path=str(path),
            )
    return frame.loc[:, list(CANDLE_COLUMNS)]
