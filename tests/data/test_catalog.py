import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from quantum_trader.data.catalog import CatalogEntry, DataCatalog, futures_symbol
from quantum_trader.errors import ConfigurationError

DATA = Path(__file__).resolve().parents[2] / "data" / "binance"
HOUR_MS = 3_600_000
START_MS = 1704067200000  # 2024-01-01T00:00:00Z


def rows_ms(count: int, step_ms: int = HOUR_MS) -> list[list[float]]:
    return [[START_MS + i * step_ms, 10.0, 11.0, 9.0, 10.0, 1.0] for i in range(count)]


def to_frame(rows: list[list[float]]) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
    data["date"] = pd.to_datetime(data["date"], unit="ms", utc=True)
    return data


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    to_frame(rows_ms(24)).to_feather(tmp_path / "BTC_USDT-1h.feather")
    to_frame(rows_ms(3)).to_csv(tmp_path / "BTC_USDT-1h.csv", index=False)
    to_frame(rows_ms(12, 300_000)).to_csv(tmp_path / "BTC_USDT-5m.csv", index=False)
    (tmp_path / "ETH_USDT-1d.json").write_text(json.dumps(rows_ms(2, 24 * HOUR_MS)))
    (tmp_path / "README.md").write_text("not candles")
    to_frame(rows_ms(2)).to_feather(tmp_path / "BTC_USDT-1h-trades.feather")
    futures = tmp_path / "futures"
    futures.mkdir()
    with gzip.open(futures / "XRP_USDT_USDT-1h-futures.json.gz", "wt") as handle:
        json.dump(rows_ms(5), handle)
    funding = to_frame(rows_ms(3, 8 * HOUR_MS))
    funding["date"] += pd.Timedelta(milliseconds=12)
    funding["open"] = [0.0001, 0.0002, -0.0001]
    funding.to_feather(futures / "XRP_USDT_USDT-8h-funding_rate.feather")
    return tmp_path


def test_entries_parse_names(datadir: Path) -> None:
    entries = DataCatalog(datadir).entries()
    assert (
        CatalogEntry("BTC/USDT", "1h", "spot", datadir / "BTC_USDT-1h.feather", "feather")
        in entries
    )
    assert CatalogEntry("ETH/USDT", "1d", "spot", datadir / "ETH_USDT-1d.json", "json") in entries
    xrp = datadir / "futures" / "XRP_USDT_USDT-1h-futures.json.gz"
    assert CatalogEntry("XRP/USDT:USDT", "1h", "futures", xrp, "json.gz") in entries
    assert len(entries) == 5  # README.md and the trades file are skipped


def test_feather_preferred_over_csv(datadir: Path) -> None:
    entry = DataCatalog(datadir).find("BTC/USDT", "1h")
    assert entry.fmt == "feather"


def test_symbols_and_timeframes(datadir: Path) -> None:
    catalog = DataCatalog(datadir)
    assert catalog.symbols() == ["BTC/USDT", "ETH/USDT"]
    assert catalog.symbols("futures") == ["XRP/USDT:USDT"]
    assert catalog.timeframes("BTC/USDT") == ["5m", "1h"]
    assert catalog.timeframes("XRP/USDT", "futures") == ["1h"]


def test_find_missing_timeframe_lists_available(datadir: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        DataCatalog(datadir).find("BTC/USDT", "4h")
    message = str(info.value)
    assert "5m, 1h" in message
    assert "BTC/USDT" in message


def test_find_missing_symbol_lists_symbols(datadir: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        DataCatalog(datadir).find("DOGE/USDT", "1h")
    assert "BTC/USDT, ETH/USDT" in str(info.value)


def test_find_maps_spot_symbol_for_futures(datadir: Path) -> None:
    entry = DataCatalog(datadir).find("XRP/USDT", "1h", "futures")
    assert entry.symbol == "XRP/USDT:USDT"


def test_futures_symbol_helper() -> None:
    assert futures_symbol("XRP/USDT") == "XRP/USDT:USDT"
    assert futures_symbol("XRP/USDT:USDT") == "XRP/USDT:USDT"
    with pytest.raises(ConfigurationError, match="BASE/QUOTE"):
        futures_symbol("XRPUSDT")


def test_missing_datadir_says_pass_datadir(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        DataCatalog(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message
    assert "--datadir" in message


def test_load_slices_inclusive(datadir: Path) -> None:
    candles, report = DataCatalog(datadir).load(
        "BTC/USDT", "1h", start="2024-01-01T02:00", end=pd.Timestamp("2024-01-01 05:00", tz="UTC")
    )
    assert len(candles) == 4
    assert candles["date"].iloc[0] == pd.Timestamp("2024-01-01 02:00", tz="UTC")
    assert candles["date"].iloc[-1] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert candles.index.tolist() == [0, 1, 2, 3]
    assert report.rows_in == 24


def test_load_empty_slice_names_file_range(datadir: Path) -> None:
    with pytest.raises(ConfigurationError, match="2024-01-01T23:00:00"):
        DataCatalog(datadir).load("BTC/USDT", "1h", start="2025-01-01")


def test_load_start_after_end_rejected(datadir: Path) -> None:
    with pytest.raises(ConfigurationError, match="after"):
        DataCatalog(datadir).load("BTC/USDT", "1h", start="2024-01-02", end="2024-01-01")


def test_load_funding_rates_rounded(datadir: Path) -> None:
    rates = DataCatalog(datadir).load_funding_rates("XRP/USDT")
    assert rates.index.tolist() == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        pd.Timestamp("2024-01-01 08:00", tz="UTC"),
        pd.Timestamp("2024-01-01 16:00", tz="UTC"),
    ]
    assert rates.tolist() == [0.0001, 0.0002, -0.0001]


def test_load_funding_rates_absent(datadir: Path) -> None:
    with pytest.raises(ConfigurationError, match="XRP/USDT:USDT"):
        DataCatalog(datadir).load_funding_rates("BTC/USDT")


def test_describe_reads_rows_and_range(datadir: Path) -> None:
    rows = {
        (r["symbol"], r["timeframe"], r["candle_type"]): r for r in DataCatalog(datadir).describe()
    }
    btc = rows[("BTC/USDT", "1h", "spot")]
    assert btc["rows"] == 24
    assert btc["start"] == "2024-01-01T00:00:00+00:00"
    assert btc["end"] == "2024-01-01T23:00:00+00:00"


def test_shipped_btc_1h_loads_without_gaps() -> None:
    candles, report = DataCatalog(DATA).load("BTC/USDT", "1h")
    assert len(candles) == 12556
    assert candles["date"].iloc[0] == pd.Timestamp("2024-09-14 00:00", tz="UTC")
    assert report.gaps == 0
    assert not candles["synthetic"].any()


def test_shipped_futures_prefers_feather_twin() -> None:
    entry = DataCatalog(DATA).find("XRP/USDT", "1h", "futures")
    assert entry.path.name == "XRP_USDT_USDT-1h-futures.feather"


def test_shipped_funding_on_8h_grid() -> None:
    rates = DataCatalog(DATA).load_funding_rates("XRP/USDT:USDT")
    assert set(pd.DatetimeIndex(rates.index).hour) == {0, 8, 16}
    assert (rates.index == pd.DatetimeIndex(rates.index).floor("8h")).all()
