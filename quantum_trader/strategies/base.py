"""The signal contract between strategies and the engine.

Row ``i`` of every array belongs to candle ``i`` of the symbol's candle frame. A signal in row
``i`` is computed from data known at the close of candle ``i`` and executed at the open of candle
``i + 1``; no strategy may read a later row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.errors import DataError

ENTRY_LONG = 1
ENTRY_SHORT = -1
NO_ENTRY = 0


@dataclass(frozen=True)
class SignalFrame:
    """Per-candle signals of one symbol.

    ``entry``: int8, +1 open long, -1 open short, 0 nothing. ``exit``: bool, close the open
    position. ``confidence``: 0..1 (1.0 for rule strategies). ``stop_pct`` and
    ``take_profit_pct``: optional per-row fractions of the entry price (NaN means the sizing
    default applies).
    """

    entry: npt.NDArray[np.int8]
    exit: npt.NDArray[np.bool_]
    confidence: npt.NDArray[np.float64]
    stop_pct: npt.NDArray[np.float64] | None = None
    take_profit_pct: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n = len(self.entry)
        for name in ("exit", "confidence", "stop_pct", "take_profit_pct"):
            array = getattr(self, name)
            if array is not None and len(array) != n:
                raise ValueError(f"SignalFrame.{name} has {len(array)} rows, entry has {n}")

    @classmethod
    def empty(cls, rows: int) -> SignalFrame:
        return cls(
            entry=np.zeros(rows, dtype=np.int8),
            exit=np.zeros(rows, dtype=np.bool_),
            confidence=np.full(rows, np.nan),
        )


class Strategy(Protocol):
    """Turns validated candle frames into signals, one SignalFrame per symbol."""

    name: str

    def generate(self, candles: dict[str, pd.DataFrame]) -> dict[str, SignalFrame]: ...


def close_prices(symbol: str, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Return the ``close`` column of ``symbol``'s candles as float64.

    Raises DataError when the frame has no ``close`` column.
    """
    if "close" not in frame.columns:
        raise DataError(
            f"candles of {symbol} have no 'close' column (columns: {list(frame.columns)}); "
            "load them with the data loader"
        )
    return frame["close"].to_numpy(dtype=np.float64)
