"""Check raw candles, repair what has one safe repair, and stop on the rest.

Candles are keyed by their UTC open time; a candle's values are known only at its close.
``validate_candles`` applies these rules, in this order. Row numbers in reports and errors are
0-based positions in the frame as read from the file.

=========================== =================================================================
problem                     what happens
=========================== =================================================================
naive timestamps            read as UTC; reported (repaired)
NaN open/high/low/close     row dropped; reported (repaired); its time then counts as a gap
NaN volume                  set to 0; reported (repaired)
price <= 0 or infinite      DataError naming the file, row, column, value and the fix
negative or infinite volume DataError naming the file, row, value and the fix
high < low, high below      DataError naming the file, row and values; no repair is guessed
max(open, close), or low
above min(open, close)
open time off the grid      DataError naming the row; resample or pass the right timeframe
unsorted rows               sorted by open time; reported with the first out-of-order row
exact duplicate rows        later copies dropped; reported
conflicting duplicates      "merge": one candle from first open, max high, min low, last close
(same time, other values)   and max volume, in file order; reported. "reject": DataError
gaps                        one report per gap (first missing time, number of candles); with
                            fill_gaps each missing candle is O=H=L=C=previous close, volume 0,
                            synthetic=True
zero-volume candles         counted and reported; kept (the simulated exchange does not fill
                            orders on them)
=========================== =================================================================

Conflicting duplicates keep the max volume, not the sum, because they are usually two snapshots
of one candle (one saved before the candle closed): summing would count the same trades twice.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.data.loaders import CANDLE_COLUMNS, PRICE_COLUMNS, to_utc_dates
from quantum_trader.data.report import CandleReport, DataProblem
from quantum_trader.data.timeframes import grid_offset_ns, timeframe_to_ns
from quantum_trader.errors import ConfigurationError, DataError

logger = logging.getLogger(__name__)

__all__ = ["CandleReport", "DataProblem", "validate_candles"]

OUTPUT_COLUMNS: tuple[str, ...] = (*CANDLE_COLUMNS, "synthetic")

Columns = dict[str, npt.NDArray[Any]]


def validate_candles(
    df: pd.DataFrame,
    timeframe: str,
    *,
    source: str,
    fill_gaps: bool = True,
    conflicting_duplicates: Literal["merge", "reject"] = "merge",
) -> tuple[pd.DataFrame, CandleReport]:
    """Validate and repair raw candles by the rules in this module's docstring.

    Returns the clean frame (columns date, open, high, low, close, volume, synthetic; index
    0..n-1; unique, sorted open times on the ``timeframe`` grid) and the report. Raises DataError
    for a problem without a safe repair and ConfigurationError for invalid arguments.
    """
    tf_ns = timeframe_to_ns(timeframe)
    if conflicting_duplicates not in ("merge", "reject"):
        raise ConfigurationError(
            f"Invalid conflicting_duplicates {conflicting_duplicates!r}: use 'merge' or 'reject'."
        )
    missing = [column for column in CANDLE_COLUMNS if column not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}. Columns found: "
            f"{', '.join(map(str, df.columns)) or 'none'}.",
            path=source,
        )

    problems: list[DataProblem] = []
    columns = _to_columns(df, source, problems)
    columns = _drop_nan_prices(columns, problems)
    _check_values(columns, source)
    _check_grid(columns, source, timeframe)
    columns = _sort_rows(columns, problems)
    columns = _resolve_duplicates(columns, source, conflicting_duplicates, problems)
    columns = _handle_gaps(columns, tf_ns, fill_gaps, problems)
    _report_zero_volume(columns, problems)

    clean = _to_frame(columns)
    report = CandleReport(source, timeframe, len(df), len(clean), problems)
    if problems:
        logger.info("Validated candles: %s", report.summary())
    return clean, report


def _to_columns(df: pd.DataFrame, source: str, problems: list[DataProblem]) -> Columns:
    dates, naive = to_utc_dates(df["date"], source=source)
    if naive or df.attrs.get("naive_timestamps", False):
        problems.append(
            DataProblem(
                "naive_timestamps",
                None,
                "Timestamps have no timezone; they were read as UTC.",
                repaired=True,
                count=len(df),
            )
        )
    columns: Columns = {"date": dates.to_numpy(dtype="datetime64[ns]").view(np.int64)}
    for name in CANDLE_COLUMNS[1:]:
        try:
            columns[name] = df[name].to_numpy(dtype=np.float64, copy=True)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"{source}: column {name!r} is not numeric ({exc}). Correct the file.",
                path=source,
            ) from exc
    columns["row"] = np.arange(len(df), dtype=np.int64)
    columns["synthetic"] = np.zeros(len(df), dtype=np.bool_)
    return columns


def _to_frame(columns: Columns) -> pd.DataFrame:
    dates = pd.to_datetime(columns["date"], unit="ns", utc=True).as_unit("ns")
    data: dict[str, Any] = {"date": dates}
    for name in OUTPUT_COLUMNS[1:]:
        data[name] = columns[name]
    return pd.DataFrame(data)


def _take(columns: Columns, index: npt.NDArray[Any]) -> Columns:
    return {name: values[index] for name, values in columns.items()}


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _rows_text(rows: npt.NDArray[np.int64], limit: int = 10) -> str:
    listed = ", ".join(str(int(row)) for row in rows[:limit])
    return f"{listed} and {len(rows) - limit} more" if len(rows) > limit else listed


def _drop_nan_prices(columns: Columns, problems: list[DataProblem]) -> Columns:
    nan_price = np.zeros(len(columns["row"]), dtype=np.bool_)
    for name in PRICE_COLUMNS:
        nan_price |= np.isnan(columns[name])
    if nan_price.any():
        rows = columns["row"][nan_price]
        message = (
            f"{len(rows)} row(s) with NaN open/high/low/close were dropped (rows "
            f"{_rows_text(rows)}); their open times count as gaps."
        )
        first_date = _iso(columns["date"][nan_price][0])
        problems.append(
            DataProblem("nan_price", int(rows[0]), message, True, len(rows), first_date)
        )
        columns = _take(columns, ~nan_price)

    nan_volume = np.isnan(columns["volume"])
    if nan_volume.any():
        rows = columns["row"][nan_volume]
        columns["volume"][nan_volume] = 0.0
        message = f"{len(rows)} row(s) with NaN volume got volume 0 (rows {_rows_text(rows)})."
        first_date = _iso(columns["date"][nan_volume][0])
        problems.append(
            DataProblem("nan_volume", int(rows[0]), message, True, len(rows), first_date)
        )
    return columns


def _first(mask: npt.NDArray[np.bool_]) -> int | None:
    return int(np.argmax(mask)) if mask.any() else None


def _check_values(columns: Columns, source: str) -> None:
    rows = columns["row"]
    fix = "Remove or correct the row."

    for name in (*PRICE_COLUMNS, "volume"):
        values = columns[name]
        bad = ~np.isfinite(values) | ((values < 0) if name == "volume" else (values <= 0))
        i = _first(bad)
        if i is not None:
            rule = "must be finite and >= 0" if name == "volume" else "must be positive"
            raise DataError(
                f"{source}: row {rows[i]} has {name} = {float(values[i])}; "
                f"the {name} {rule}. {fix}",
                path=source,
                row=int(rows[i]),
            )

    o, h, low, c = (columns[name] for name in PRICE_COLUMNS)
    inconsistent = (h < low) | (h < np.maximum(o, c)) | (low > np.minimum(o, c))
    i = _first(inconsistent)
    if i is not None:
        if h[i] < low[i]:
            rule = "the high is below the low"
        elif h[i] < max(o[i], c[i]):
            rule = "the high is below the open or close"
        else:
            rule = "the low is above the open or close"
        raise DataError(
            f"{source}: row {rows[i]} has open={float(o[i])} high={float(h[i])} "
            f"low={float(low[i])} close={float(c[i])}: {rule}. {fix}",
            path=source,
            row=int(rows[i]),
        )


def _check_grid(columns: Columns, source: str, timeframe: str) -> None:
    dates = columns["date"]
    rows = columns["row"]
    i = _first((dates - grid_offset_ns(timeframe)) % timeframe_to_ns(timeframe) != 0)
    if i is not None:
        raise DataError(
            f"{source}: row {rows[i]} opens at {_iso(dates[i])}, which is not on the "
            f"{timeframe} candle grid. Resample the file to {timeframe}, or pass the timeframe "
            "the file was written with.",
            path=source,
            row=int(rows[i]),
        )


def _sort_rows(columns: Columns, problems: list[DataProblem]) -> Columns:
    dates = columns["date"]
    i = _first(np.diff(dates) < 0)
    if i is None:
        return columns
    row = int(columns["row"][i + 1])
    message = f"Rows are not sorted by open time (row {row} is earlier than the row before it)."
    problems.append(DataProblem("unsorted", row, message, True, 1, _iso(dates[i + 1])))
    # A stable sort keeps file order among equal times, which the duplicate merge relies on.
    return _take(columns, np.argsort(dates, kind="stable"))


def _resolve_duplicates(
    columns: Columns, source: str, policy: str, problems: list[DataProblem]
) -> Columns:
    same = columns["date"][1:] == columns["date"][:-1]
    if not same.any():
        return columns

    in_group = np.zeros(len(columns["date"]), dtype=np.bool_)
    in_group[1:] |= same
    in_group[:-1] |= same
    group = pd.DataFrame(_take(columns, in_group))
    exact = group.duplicated(subset=list(CANDLE_COLUMNS), keep="first")
    if exact.any():
        rows = group.loc[exact, "row"].to_numpy()
        message = f"{len(rows)} exact duplicate row(s) dropped (rows {_rows_text(rows)})."
        first_date = _iso(group.loc[exact, "date"].iloc[0])
        problems.append(
            DataProblem("duplicate", int(rows[0]), message, True, len(rows), first_date)
        )
        group = group.loc[~exact]

    conflicting = group[group["date"].duplicated(keep=False)]
    if not conflicting.empty:
        merged = _merge_conflicts(conflicting, source, policy, problems)
        group = pd.concat([group[~group["date"].duplicated(keep=False)], merged])

    keep = _take(columns, ~in_group)
    parts = {name: np.concatenate([keep[name], group[name].to_numpy()]) for name in columns}
    return _take(parts, np.argsort(parts["date"], kind="stable"))


def _merge_conflicts(
    conflicting: pd.DataFrame, source: str, policy: str, problems: list[DataProblem]
) -> pd.DataFrame:
    first_date = int(conflicting["date"].iloc[0])
    first_rows = conflicting.loc[conflicting["date"] == first_date, "row"].to_numpy()
    dates = conflicting["date"].nunique()
    if policy == "reject":
        raise DataError(
            f"{source}: rows {_rows_text(first_rows)} have the same open time "
            f"{_iso(first_date)} but different values ({dates} such time(s) in the file). Use "
            "conflicting_duplicates='merge' or clean the file.",
            path=source,
            row=int(first_rows[0]),
        )

    merged = conflicting.groupby("date", sort=True, as_index=False).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "max"),
        row=("row", "first"),
        synthetic=("synthetic", "all"),
    )
    message = (
        f"{len(conflicting)} rows at {dates} open time(s) had different values and were merged "
        f"(first open, max high, min low, last close, max volume); first at {_iso(first_date)}, "
        f"rows {_rows_text(first_rows)}."
    )
    problems.append(
        DataProblem(
            "conflicting_duplicate", int(first_rows[0]), message, True, dates, _iso(first_date)
        )
    )
    return merged


def _handle_gaps(
    columns: Columns, tf_ns: int, fill_gaps: bool, problems: list[DataProblem]
) -> Columns:
    dates = columns["date"]
    steps = np.diff(dates)
    before_gap = np.flatnonzero(steps > tf_ns)
    if before_gap.size == 0:
        return columns

    missing = steps[before_gap] // tf_ns - 1
    action = "filled with flat synthetic candles" if fill_gaps else "not filled"
    for i, count in zip(before_gap.tolist(), missing.tolist(), strict=True):
        start = _iso(dates[i] + tf_ns)
        message = (
            f"{count} missing candle(s) from {start} to {_iso(dates[i + 1] - tf_ns)} "
            f"(before row {columns['row'][i + 1]}); {action}."
        )
        problems.append(
            DataProblem("gap", int(columns["row"][i + 1]), message, fill_gaps, count, start)
        )
    if not fill_gaps:
        return columns

    total = int(missing.sum())
    starts = np.repeat(np.cumsum(missing) - missing, missing)
    position = np.arange(total, dtype=np.int64) - starts + 1
    previous_close = np.repeat(columns["close"][before_gap], missing)
    filler: Columns = {
        "date": np.repeat(dates[before_gap], missing) + position * tf_ns,
        "volume": np.zeros(total),
        "row": np.full(total, -1, dtype=np.int64),
        "synthetic": np.ones(total, dtype=np.bool_),
    }
    for name in PRICE_COLUMNS:
        filler[name] = previous_close
    parts = {name: np.concatenate([columns[name], filler[name]]) for name in columns}
    return _take(parts, np.argsort(parts["date"], kind="stable"))


def _report_zero_volume(columns: Columns, problems: list[DataProblem]) -> None:
    zero = (columns["volume"] == 0) & ~columns["synthetic"]
    if not zero.any():
        return
    rows = columns["row"][zero]
    message = (
        f"{len(rows)} candle(s) with zero volume (rows {_rows_text(rows)}); the simulated "
        "exchange does not fill orders on them."
    )
    problems.append(
        DataProblem(
            "zero_volume", int(rows[0]), message, False, len(rows), _iso(columns["date"][zero][0])
        )
    )
