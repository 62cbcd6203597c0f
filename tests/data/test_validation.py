import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from quantum_trader.data.loaders import read_candle_file
from quantum_trader.data.validation import CandleReport, DataProblem, validate_candles
from quantum_trader.errors import ConfigurationError, DataError

COLUMNS = ["date", "open", "high", "low", "close", "volume"]
Row = tuple[str, float, float, float, float, float]


def frame(rows: list[Row]) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=COLUMNS)
    data["date"] = pd.to_datetime(data["date"], utc=True)
    return data


def write_candles(path: Path, rows: list[Row]) -> Path:
    """Write rows of (ISO UTC time, o, h, l, c, v) in the format of the path's extension."""
    data = frame(rows)
    if path.name.endswith(".json.gz"):
        ms = data["date"].astype("int64") // 10**6
        payload = [
            [int(t), *values]
            for t, values in zip(ms, data[COLUMNS[1:]].values.tolist(), strict=True)
        ]
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(payload, handle)
    elif path.suffix == ".csv":
        data.to_csv(path, index=False)
    else:
        data.to_feather(path)
    return path


def load(path: Path, tf: str = "5m", **options: object) -> tuple[pd.DataFrame, CandleReport]:
    return validate_candles(read_candle_file(path), tf, source=str(path), **options)  # type: ignore[arg-type]


def kinds(report: CandleReport) -> list[str]:
    return [problem.kind for problem in report.problems]


def problem(report: CandleReport, kind: str) -> DataProblem:
    return next(p for p in report.problems if p.kind == kind)


def test_duplicates_and_unsorted_rows_in_seconds() -> None:
    rows = [
        (3600, 2, 2, 2, 2, 5),
        (0, 1, 1, 1, 1, 4),
        (3600, 2, 2, 2, 2, 5),
        (10800, 4, 4, 4, 4, 7),
    ]
    raw = pd.DataFrame(rows, columns=COLUMNS)
    clean, report = validate_candles(raw, "1h", source="mem", fill_gaps=False)
    seconds = (clean["date"].astype("int64") // 10**9).tolist()
    assert seconds == [0, 3600, 10800]
    assert len(clean) == 3
    assert clean["close"].tolist() == [1.0, 2.0, 4.0]
    assert problem(report, "unsorted").row == 1
    assert problem(report, "duplicate").row == 2
    assert report.gaps == 1
    assert report.missing_candles == 1
    assert problem(report, "gap").date == "1970-01-01T02:00:00+00:00"


def test_conflicting_duplicates_merge_to_one_row() -> None:
    rows = [(3600, 2, 3, 2, 2.5, 5), (0, 1, 1, 1, 1, 4), (3600, 2, 2, 1.5, 1.8, 6)]
    raw = pd.DataFrame(rows, columns=COLUMNS)
    clean, report = validate_candles(raw, "1h", source="mem")
    at_3600 = clean[clean["date"] == pd.Timestamp(3600, unit="s", tz="UTC")]
    assert len(at_3600) == 1
    merged = at_3600.iloc[0]
    assert merged["open"] == 2  # first open in file order
    assert merged["high"] == 3  # max high
    assert merged["low"] == 1.5  # min low
    assert merged["close"] == 1.8  # last close in file order
    assert merged["volume"] == 6  # max volume, not the sum 11
    assert problem(report, "conflicting_duplicate").repaired is True


def test_gap_one_missing_candle_filled_flat() -> None:
    raw = frame(
        [
            ("2024-01-01 00:00", 100, 100, 100, 100, 5),
            ("2024-01-01 00:05", 100, 101, 100, 101, 5),
            ("2024-01-01 00:15", 90, 91, 89, 90, 10),
        ]
    )
    clean, report = validate_candles(raw, "5m", source="mem")
    assert report.gaps == 1
    assert report.missing_candles == 1
    assert problem(report, "gap").date == "2024-01-01T00:10:00+00:00"
    assert len(clean) == 4
    filled = clean.iloc[2]
    assert filled["date"] == pd.Timestamp("2024-01-01 00:10", tz="UTC")
    assert filled["open"] == 101
    assert filled["high"] == 101
    assert filled["low"] == 101
    assert filled["close"] == 101
    assert filled["volume"] == 0
    assert bool(filled["synthetic"]) is True
    assert clean["synthetic"].tolist() == [False, False, True, False]
    assert report.synthetic_rows == 1


def test_gap_reported_unfilled_when_disabled() -> None:
    raw = frame([("2024-01-01 00:00", 1, 1, 1, 1, 1), ("2024-01-01 00:20", 1, 1, 1, 1, 1)])
    clean, report = validate_candles(raw, "5m", source="mem", fill_gaps=False)
    assert len(clean) == 2
    assert report.missing_candles == 3
    assert report.synthetic_rows == 0
    assert problem(report, "gap").repaired is False


def test_output_shape_and_types() -> None:
    raw = frame([("2024-01-01 00:05", 1, 2, 1, 2, 1), ("2024-01-01 00:00", 1, 2, 1, 2, 1)])
    clean, report = validate_candles(raw, "5m", source="mem")
    assert list(clean.columns) == [*COLUMNS, "synthetic"]
    assert clean.index.tolist() == [0, 1]
    assert str(clean["date"].dtype) == "datetime64[ns, UTC]"
    assert clean["synthetic"].dtype == bool
    assert report.rows_in == 2
    assert report.rows_out == 2


# One test per kind of bad candle file: a documented repair or a DataError with file, row, fix.

GOOD = [
    ("2024-01-01 00:00", 10, 11, 9, 10, 5),
    ("2024-01-01 00:05", 10, 11, 9, 10, 5),
    ("2024-01-01 00:10", 10, 11, 9, 10, 5),
]


def test_file_naive_timestamps_read_as_utc(tmp_path: Path) -> None:
    path = tmp_path / "naive.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-01 00:00,1,1,1,1,1\n")
    clean, report = load(path)
    assert clean["date"].iloc[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert problem(report, "naive_timestamps").repaired is True


def test_file_unsorted_rows_sorted(tmp_path: Path) -> None:
    path = write_candles(tmp_path / "unsorted.feather", [GOOD[1], GOOD[0], GOOD[2]])
    clean, report = load(path)
    assert clean["date"].is_monotonic_increasing
    assert problem(report, "unsorted").row == 1


def test_file_exact_duplicate_dropped(tmp_path: Path) -> None:
    path = write_candles(tmp_path / "dupes.json.gz", [GOOD[0], GOOD[1], GOOD[1], GOOD[2]])
    clean, report = load(path)
    assert len(clean) == 3
    assert problem(report, "duplicate").row == 2


def test_file_conflicting_duplicate_rejected(tmp_path: Path) -> None:
    other = ("2024-01-01 00:05", 10, 12, 9, 11, 5)
    path = write_candles(tmp_path / "conflict.csv", [GOOD[0], GOOD[1], other, GOOD[2]])
    with pytest.raises(DataError) as info:
        load(path, conflicting_duplicates="reject")
    message = str(info.value)
    assert "conflict.csv" in message
    assert "rows 1, 2" in message
    assert "2024-01-01T00:05:00+00:00" in message
    assert "conflicting_duplicates='merge'" in message
    assert info.value.row == 1


def test_file_nan_price_row_dropped_as_gap(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:05", 10, float("nan"), 9, 10, 5)
    path = write_candles(tmp_path / "nan.feather", [GOOD[0], bad, GOOD[2]])
    clean, report = load(path, fill_gaps=False)
    assert len(clean) == 2
    assert problem(report, "nan_price").row == 1
    assert report.missing_candles == 1


def test_file_nan_volume_set_to_zero(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:05", 10, 11, 9, 10, float("nan"))
    path = write_candles(tmp_path / "nanvol.csv", [GOOD[0], bad, GOOD[2]])
    clean, report = load(path)
    assert clean["volume"].iloc[1] == 0
    assert problem(report, "nan_volume").row == 1
    assert report.zero_volume_rows == 1


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_file_non_positive_price_rejected(tmp_path: Path, value: float) -> None:
    bad = ("2024-01-01 00:10", 10, 11, value, 10, 5)
    path = write_candles(tmp_path / "zero.json.gz", [GOOD[0], GOOD[1], bad])
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert "zero.json.gz" in message
    assert "row 2" in message
    assert "low" in message
    assert "Remove or correct the row" in message


def test_file_high_below_low_rejected(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:05", 10, 8, 9, 10, 5)
    path = write_candles(tmp_path / "inverted.feather", [GOOD[0], bad, GOOD[2]])
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert "inverted.feather" in message
    assert "row 1" in message
    assert "high=8.0" in message
    assert "Remove or correct the row" in message


def test_file_high_below_close_rejected(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:10", 10, 11, 9, 12, 5)
    path = write_candles(tmp_path / "highclose.csv", [GOOD[0], GOOD[1], bad])
    with pytest.raises(DataError, match=r"highclose\.csv: row 2 .*Remove or correct the row"):
        load(path)


def test_file_low_above_open_rejected(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:00", 8, 11, 9, 10, 5)
    path = write_candles(tmp_path / "lowopen.json.gz", [bad, GOOD[1], GOOD[2]])
    with pytest.raises(DataError, match=r"lowopen\.json\.gz: row 0 .*Remove or correct the row"):
        load(path)


def test_file_time_off_grid_rejected(tmp_path: Path) -> None:
    bad = ("2024-01-01 00:07", 10, 11, 9, 10, 5)
    path = write_candles(tmp_path / "offgrid.csv", [GOOD[0], bad])
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    assert "offgrid.csv" in message
    assert "row 1" in message
    assert "Resample" in message


def test_file_gap_filled(tmp_path: Path) -> None:
    path = write_candles(tmp_path / "gap.json.gz", [GOOD[0], GOOD[2]])
    clean, report = load(path)
    assert len(clean) == 3
    assert report.missing_candles == 1
    assert clean["synthetic"].tolist() == [False, True, False]


def test_file_zero_volume_counted(tmp_path: Path) -> None:
    quiet = ("2024-01-01 00:05", 10, 10, 10, 10, 0)
    path = write_candles(tmp_path / "quiet.feather", [GOOD[0], quiet, GOOD[2]])
    clean, report = load(path)
    assert len(clean) == 3
    assert report.zero_volume_rows == 1
    assert problem(report, "zero_volume").row == 1
    assert problem(report, "zero_volume").repaired is False


def test_negative_volume_rejected() -> None:
    raw = frame([("2024-01-01 00:00", 1, 1, 1, 1, -3)])
    with pytest.raises(DataError, match="row 0 has volume"):
        validate_candles(raw, "5m", source="mem")


def test_invalid_policy_is_configuration_error() -> None:
    raw = frame([GOOD[0]])
    with pytest.raises(ConfigurationError, match="'drop'"):
        validate_candles(raw, "5m", source="mem", conflicting_duplicates="drop")  # type: ignore[arg-type]


def test_report_dict_and_summary() -> None:
    raw = frame([GOOD[0], GOOD[2]])
    _, report = validate_candles(raw, "5m", source="mem.csv")
    data = report.to_dict()
    assert data["gaps"] == 1
    assert data["synthetic_rows"] == 1
    assert data["problems"][0]["kind"] == "gap"
    json.dumps(data)
    assert "mem.csv" in report.summary()
    assert "1 gaps" in report.summary()


def test_empty_frame_validates_to_empty() -> None:
    clean, report = validate_candles(frame([]), "5m", source="mem")
    assert len(clean) == 0
    assert report.problems == []
