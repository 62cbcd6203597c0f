"""Build higher-timeframe candles and attach them to a base frame without look-ahead.

Both functions take validated candle frames (see ``quantum_trader.data.validation``): unique,
sorted UTC open times on the timeframe grid.

Resampling labels each bucket with its open time and closes it on the left (the bucket opened at
10:00 contains the 10:00 to 10:55 candles of a 5m file). A bucket that lacks any of its source
candles is dropped: the first and last buckets of a file are usually partial, and a bucket whose
last candle has not closed yet would use prices from the future. Gap-filled (synthetic) candles
count as present, and a higher candle is synthetic only when all its source candles are.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.data.timeframes import grid_offset_ns, timeframe_to_ns
from quantum_trader.errors import ConfigurationError, DataError

logger = logging.getLogger(__name__)


def resample_candles(df: pd.DataFrame, source_tf: str, target_tf: str) -> pd.DataFrame:
    """Aggregate ``source_tf`` candles into complete ``target_tf`` candles.

    Open is the first open, high the max, low the min, close the last close, volume the sum and
    synthetic the logical AND of the bucket. Returns the columns of the input candle frame with
    an index 0..n-1. Raises ConfigurationError when ``target_tf`` is not a whole multiple of
    ``source_tf``.
    """
    source_ns = timeframe_to_ns(source_tf)
    target_ns = timeframe_to_ns(target_tf)
    offset = grid_offset_ns(target_tf)
    if target_ns < source_ns or target_ns % source_ns != 0 or offset % source_ns != 0:
        raise ConfigurationError(
            f"Cannot resample {source_tf} candles to {target_tf}: the target timeframe must be "
            f"a whole multiple of {source_tf}. Pick a longer target timeframe."
        )
    open_ns = _open_times_ns(df, "resample_candles")
    frame = df.assign(synthetic=df.get("synthetic", False))
    if target_ns == source_ns:
        return frame.reset_index(drop=True)

    bucket_ns = (open_ns - offset) // target_ns * target_ns + offset
    grouped = frame.groupby(bucket_ns, sort=True).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        synthetic=("synthetic", "all"),
        candles=("open", "size"),
    )
    complete = grouped[grouped["candles"] == target_ns // source_ns]
    dropped = len(grouped) - len(complete)
    if dropped:
        logger.debug(
            "Dropped %d incomplete %s buckets while resampling %s candles.",
            dropped,
            target_tf,
            source_tf,
        )

    result = complete.drop(columns="candles").reset_index(names="date")
    result["date"] = pd.to_datetime(result["date"].to_numpy(), unit="ns", utc=True).as_unit("ns")
    return result


def merge_higher_timeframe(
    base: pd.DataFrame,
    base_tf: str,
    higher: pd.DataFrame,
    higher_tf: str,
    columns: list[str],
    prefix: str,
) -> pd.DataFrame:
    """Add ``prefix + column`` columns from ``higher`` to a copy of ``base``.

    Each base candle gets the values of the most recent higher candle that closed at or before
    the base candle's close, so no value comes from the future. With 15m base and 1h higher
    candles, the 10:45 base candle (closing 11:00) is the first to see the 10:00 hour. Base rows
    with no closed higher candle yet get NaN.
    """
    base_ns = timeframe_to_ns(base_tf)
    higher_ns = timeframe_to_ns(higher_tf)
    if higher_ns < base_ns:
        raise ConfigurationError(
            f"merge_higher_timeframe needs a higher timeframe than the base: {higher_tf} is "
            f"shorter than {base_tf}. Swap the frames or pick a longer timeframe."
        )
    missing = [column for column in columns if column not in higher.columns]
    if missing:
        raise ConfigurationError(
            f"Columns {missing} are not in the {higher_tf} frame; available columns: "
            f"{', '.join(map(str, higher.columns))}."
        )

    base_close = _open_times_ns(base, "merge_higher_timeframe (base)") + base_ns
    higher_close = _open_times_ns(higher, "merge_higher_timeframe (higher)") + higher_ns
    right = pd.DataFrame({"_close": higher_close})
    for column in columns:
        right[prefix + column] = higher[column].to_numpy()
    left = pd.DataFrame({"_close": base_close})

    merged = pd.merge_asof(left, right, on="_close", direction="backward")
    result = base.copy()
    for column in columns:
        result[prefix + column] = merged[prefix + column].to_numpy()
    return result


def _open_times_ns(df: pd.DataFrame, caller: str) -> npt.NDArray[np.int64]:
    if "date" not in df.columns:
        raise DataError(f"{caller} needs a 'date' column of candle open times.")
    values = df["date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if len(values) > 1 and not bool((np.diff(values) > 0).all()):
        raise DataError(
            f"{caller} needs candles sorted by unique open time. Run validate_candles on the "
            "frame first."
        )
    return values
