"""Findings of candle validation: one ``DataProblem`` per finding, one ``CandleReport`` per file.

``DataProblem.kind`` is one of: naive_timestamps, nan_price, nan_volume, unsorted, duplicate,
conflicting_duplicate, gap, zero_volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DataProblem:
    """One finding of ``validate_candles``.

    ``row`` is the first affected row in the file as read (None when no single row applies),
    ``count`` the number of rows or candles affected, ``date`` the ISO open time of the first
    affected candle, and ``repaired`` is True when the validator fixed it.
    """

    kind: str
    row: int | None
    message: str
    repaired: bool
    count: int = 1
    date: str | None = None


@dataclass
class CandleReport:
    """Findings and repairs of ``validate_candles`` for one candle file."""

    source: str
    timeframe: str
    rows_in: int
    rows_out: int
    problems: list[DataProblem] = field(default_factory=list)

    @property
    def gaps(self) -> int:
        """Number of gaps (runs of consecutive missing candles)."""
        return sum(1 for problem in self.problems if problem.kind == "gap")

    @property
    def missing_candles(self) -> int:
        """Number of missing candles over all gaps."""
        return sum(problem.count for problem in self.problems if problem.kind == "gap")

    @property
    def synthetic_rows(self) -> int:
        """Number of candles inserted into gaps."""
        return sum(p.count for p in self.problems if p.kind == "gap" and p.repaired)

    @property
    def zero_volume_rows(self) -> int:
        """Number of candles from the file with zero volume."""
        return sum(p.count for p in self.problems if p.kind == "zero_volume")

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready built-in types."""
        result = asdict(self)
        result["gaps"] = self.gaps
        result["missing_candles"] = self.missing_candles
        result["synthetic_rows"] = self.synthetic_rows
        result["zero_volume_rows"] = self.zero_volume_rows
        return result

    def summary(self) -> str:
        """Return a one-line summary for logs and the command line."""
        others = [p.kind for p in self.problems if p.kind not in ("gap", "zero_volume")]
        other_text = ", ".join(sorted(set(others))) if others else "none"
        return (
            f"{self.source} ({self.timeframe}): {self.rows_in} rows in, {self.rows_out} out; "
            f"{self.gaps} gaps with {self.missing_candles} missing candles "
            f"({self.synthetic_rows} filled); {self.zero_volume_rows} zero-volume candles; "
            f"other problems: {other_text}"
        )
