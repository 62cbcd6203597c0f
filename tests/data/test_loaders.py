import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from quantum_trader.data.loaders import read_candle_file, read_funding_rates
from quantum_trader.data.validation import validate_candles
from quantum_trader.errors import DataError

DATA = Path(__file__).resolve().parents[2] / "data" / "binance"
NEW_YEAR_MS = 1704067200000  # 2024-01-01T00:00:00Z
NEW_YEAR = pd.Timestamp("2024-01-01T00:00:00+00:00")


@pytest.fixture
def new_york_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test with the host clock in New York, 5 hours behind UTC in January."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_epoch_ms_csv_in_new_york_tz(tmp_path: Path, new_york_tz: None) -> None:
    path = write_text(
        tmp_path / "a.csv", f"date,open,high,low,close,volume\n{NEW_YEAR_MS},1,2,0.5,1.5,10\n"
    )
    frame = read_candle_file(path)
    assert frame["date"].iloc[0] == NEW_YEAR
    assert frame["date"].iloc[0].isoformat() == "2024-01-01T00:00:00+00:00"
    assert frame.attrs["naive_timestamps"] is False


def test_epoch_ms_json_gz_in_new_york_tz(tmp_path: Path, new_york_tz: None) -> None:
    path = tmp_path / "a.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump([[NEW_YEAR_MS, 1, 2, 0.5, 1.5, 10]], handle)
    frame = read_candle_file(path)
    assert frame["date"].iloc[0] == NEW_YEAR


def test_naive_iso_text_is_utc_and_flagged(tmp_path: Path, new_york_tz: None) -> None:
    path = write_text(
        tmp_path / "a.csv", "date,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n"
    )
    frame = read_candle_file(path)
    assert frame["date"].iloc[0] == NEW_YEAR
    assert frame.attrs["naive_timestamps"] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1704067200, NEW_YEAR),
        (1704067200000, NEW_YEAR),
        (1704067200000000, NEW_YEAR),
        (1704067200000000000, NEW_YEAR),
        ("2024-01-01T05:00:00+05:00", NEW_YEAR),
        ("2024-01-01T00:00:00Z", NEW_YEAR),
    ],
)
def test_timestamp_forms_read_as_utc(tmp_path: Path, value: object, expected: pd.Timestamp) -> None:
    path = write_text(
        tmp_path / "a.csv", f"timestamp,open,high,low,close,volume\n{value},1,1,1,1,1\n"
    )
    frame = read_candle_file(path)
    assert frame["date"].iloc[0] == expected
    assert frame.attrs["naive_timestamps"] is False


@pytest.mark.parametrize("header", ["Date", "TIMESTAMP", "time", "Datetime", "open_time"])
def test_csv_date_header_variants(tmp_path: Path, header: str) -> None:
    text = f"{header},Open,High,Low,Close,Volume\n{NEW_YEAR_MS},1,2,0.5,1.5,10\n"
    frame = read_candle_file(write_text(tmp_path / "a.csv", text))
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert frame["close"].iloc[0] == 1.5


def test_csv_unnamed_index_column_is_date(tmp_path: Path) -> None:
    text = ",Open,High,Low,Close,Volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n"
    frame = read_candle_file(write_text(tmp_path / "a.csv", text))
    assert frame["date"].iloc[0] == NEW_YEAR
    assert frame["volume"].iloc[0] == 10.0


def test_rows_keep_file_order(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n3600,2,2,2,2,5\n0,1,1,1,1,4\n3600,2,2,2,2,5\n"
    frame = read_candle_file(write_text(tmp_path / "a.csv", text))
    assert frame["date"].tolist() == [
        pd.Timestamp(3600, unit="s", tz="UTC"),
        pd.Timestamp(0, unit="s", tz="UTC"),
        pd.Timestamp(3600, unit="s", tz="UTC"),
    ]


def test_column_types(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n1704067200000,1,2,1,2,3\n"
    frame = read_candle_file(write_text(tmp_path / "a.csv", text))
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].dtype == "float64"


def test_json_objects_with_named_keys(tmp_path: Path) -> None:
    rows = [
        {
            "date": "2024-01-01T00:00:00Z",
            "open": 1,
            "high": 2,
            "low": 0.5,
            "close": 1.5,
            "volume": 10,
        }
    ]
    path = write_text(tmp_path / "a.json", json.dumps(rows))
    frame = read_candle_file(path)
    assert frame["date"].iloc[0] == NEW_YEAR
    assert frame["high"].iloc[0] == 2.0


def test_parquet_with_date_index(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [10.0]},
        index=pd.DatetimeIndex([NEW_YEAR], name="date"),
    )
    frame.to_parquet(tmp_path / "a.parquet")
    read = read_candle_file(tmp_path / "a.parquet")
    assert read["date"].iloc[0] == NEW_YEAR
    assert read["close"].iloc[0] == 1.5


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1h.feather"
    with pytest.raises(DataError, match=r"BTC_USDT-1h\.feather"):
        read_candle_file(path)


def test_unknown_extension_lists_formats(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.xlsx", "x")
    with pytest.raises(DataError) as info:
        read_candle_file(path)
    message = str(info.value)
    assert "a.xlsx" in message
    for fmt in (".feather", ".parquet", ".csv", ".json", ".json.gz"):
        assert fmt in message


def test_missing_column_names_column_and_found(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "date,open,high,low,close\n0,1,1,1,1\n")
    with pytest.raises(DataError) as info:
        read_candle_file(path)
    message = str(info.value)
    assert "'volume'" in message
    assert "date, open, high, low, close" in message


def test_unreadable_timestamp_names_row(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\nnot a date,1,1,1,1,1\n"
    with pytest.raises(DataError, match="row 1"):
        read_candle_file(write_text(tmp_path / "a.csv", text))


def test_corrupt_feather_is_data_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.feather", "not arrow")
    with pytest.raises(DataError, match=r"a\.feather"):
        read_candle_file(path)


def test_json_and_feather_twins_identical() -> None:
    from_json = read_candle_file(DATA / "futures" / "XRP_USDT_USDT-1h-futures.json.gz")
    from_feather = read_candle_file(DATA / "futures" / "XRP_USDT_USDT-1h-futures.feather")
    assert len(from_json) == 100
    pd.testing.assert_frame_equal(from_json, from_feather)
    clean_json, _ = validate_candles(from_json, "1h", source="json")
    clean_feather, _ = validate_candles(from_feather, "1h", source="feather")
    pd.testing.assert_frame_equal(clean_json, clean_feather)


def test_funding_times_round_to_8h_grid() -> None:
    rates = read_funding_rates(DATA / "futures" / "XRP_USDT_USDT-8h-funding_rate.feather")
    assert rates.name == "funding_rate"
    assert rates.index[0] == pd.Timestamp("2021-11-18 00:00", tz="UTC")
    assert rates.index[1] == pd.Timestamp("2021-11-18 08:00", tz="UTC")
    assert rates.index[2] == pd.Timestamp("2021-11-18 16:00", tz="UTC")
    assert set(pd.DatetimeIndex(rates.index).hour) == {0, 8, 16}
    assert (rates.index == pd.DatetimeIndex(rates.index).floor("8h")).all()
    assert rates.index.is_monotonic_increasing


def test_funding_rate_from_open_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(
                ["2024-01-01 00:00:00.017", "2024-01-01 07:59:59.990"], utc=True
            ),
            "open": [0.0001, -0.0002],
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    )
    frame.to_feather(tmp_path / "X_USDT_USDT-8h-funding_rate.feather")
    rates = read_funding_rates(tmp_path / "X_USDT_USDT-8h-funding_rate.feather")
    assert rates.index.tolist() == [NEW_YEAR, pd.Timestamp("2024-01-01 08:00", tz="UTC")]
    assert rates.tolist() == [0.0001, -0.0002]


def test_funding_time_off_grid_names_row(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 04:00"], utc=True),
            "open": [0.0001, 0.0001],
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    )
    frame.to_feather(tmp_path / "f.feather")
    with pytest.raises(DataError, match="row 1"):
        read_funding_rates(tmp_path / "f.feather", interval_hours=8)


def test_mixed_aware_and_naive_text_flagged(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,1,1,1,1,1\n"
        "2024-01-01 01:00:00,1,1,1,1,1\n"
    )
    frame = read_candle_file(write_text(tmp_path / "a.csv", text))
    assert frame["date"].iloc[1] == pd.Timestamp("2024-01-01 01:00", tz="UTC")
    assert frame.attrs["naive_timestamps"] is True
