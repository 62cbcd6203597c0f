import pandas as pd
import pytest

from quantum_trader.data.timeframes import (
    grid_offset_ns,
    infer_timeframe,
    timeframe_to_ns,
    timeframe_to_offset,
    timeframe_to_seconds,
)
from quantum_trader.errors import ConfigurationError


@pytest.mark.parametrize(
    ("tf", "seconds"),
    [
        ("1m", 60),
        ("3m", 180),
        ("5m", 300),
        ("15m", 900),
        ("30m", 1800),
        ("1h", 3600),
        ("2h", 7200),
        ("4h", 14400),
        ("6h", 21600),
        ("8h", 28800),
        ("12h", 43200),
        ("1d", 86400),
        ("1w", 604800),
    ],
)
def test_timeframe_seconds(tf: str, seconds: int) -> None:
    assert timeframe_to_seconds(tf) == seconds
    assert timeframe_to_ns(tf) == seconds * 1_000_000_000


@pytest.mark.parametrize("tf", ["", "1H", "5", "10m", "1M", "1d ", "h1"])
def test_invalid_timeframe_names_value_and_forms(tf: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        timeframe_to_seconds(tf)
    message = str(info.value)
    assert repr(tf) in message
    assert "5m" in message
    assert "1w" in message


@pytest.mark.parametrize(
    ("tf", "offset"), [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("4h", "4h"), ("1d", "1D")]
)
def test_timeframe_offset_alias(tf: str, offset: str) -> None:
    assert timeframe_to_offset(tf) == offset


def test_offset_has_timeframe_length() -> None:
    for tf in ("1m", "30m", "12h", "1d", "1w"):
        length = pd.Timedelta(timeframe_to_offset(tf))
        assert length == pd.Timedelta(seconds=timeframe_to_seconds(tf))


def test_weekly_grid_starts_on_monday() -> None:
    monday = pd.Timestamp("2024-01-01", tz="UTC")  # 2024-01-01 is a Monday
    assert (monday.value - grid_offset_ns("1w")) % timeframe_to_ns("1w") == 0
    assert grid_offset_ns("1d") == 0


def test_infer_timeframe_from_name() -> None:
    dates = pd.Series(pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC"))
    assert infer_timeframe("BTC_USDT-5m.feather", dates) == "5m"
    assert infer_timeframe("XRP_USDT_USDT-8h-funding_rate.feather", dates) == "8h"


def test_infer_timeframe_from_spacing() -> None:
    dates = pd.Series(pd.date_range("2024-01-01", periods=5, freq="15min", tz="UTC"))
    shuffled = dates.iloc[[3, 0, 4, 1]]  # one candle missing, rows out of order
    assert infer_timeframe("prices.csv", shuffled) == "15m"


def test_infer_timeframe_unknown_spacing_rejected() -> None:
    dates = pd.Series(pd.date_range("2024-01-01", periods=3, freq="7min", tz="UTC"))
    with pytest.raises(ConfigurationError, match=r"prices\.csv"):
        infer_timeframe("prices.csv", dates)
