"""Signals file strategy: placement on candles and one clear error per kind of bad input."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantum_trader.errors import ConfigurationError
from quantum_trader.strategies.signals_file import SignalsFileStrategy

# 2024-01-01T00:00:00Z in epoch seconds.
JAN1_S = 1_704_067_200


def hourly_candles(rows: int = 6, start: str = "2024-01-01 00:00") -> pd.DataFrame:
    dates = pd.date_range(start, periods=rows, freq="1h", tz="UTC")
    prices = np.linspace(100.0, 105.0, rows)
    return pd.DataFrame(
        {
            "date": dates,
            "open": prices,
            "high": prices + 1,
            "low": prices - 1,
            "close": prices,
            "volume": 1.0,
        }
    )


def candles() -> dict[str, pd.DataFrame]:
    return {"BTC/USDT": hourly_candles(), "ETH/USDT": hourly_candles()}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "signals.csv"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        SignalsFileStrategy(write(tmp_path, text)).generate(candles())
    return str(info.value)


def test_signals_land_on_their_candles(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,symbol,signal,stop_pct\n"
        "2024-01-01T01:00:00Z,BTC/USDT,long,0.03\n"
        "2024-01-01 03:00:00,BTC/USDT,EXIT,\n"
        f"{(JAN1_S + 2 * 3600) * 1000},ETH/USDT,Short,\n",
    )
    signals = SignalsFileStrategy(path).generate(candles())
    btc, eth = signals["BTC/USDT"], signals["ETH/USDT"]

    assert btc.entry.tolist() == [0, 1, 0, 0, 0, 0]
    assert btc.exit.tolist() == [False, False, False, True, False, False]
    assert btc.stop_pct is not None
    assert btc.stop_pct[1] == 0.03
    assert math.isnan(btc.stop_pct[0])
    assert eth.entry.tolist() == [0, 0, -1, 0, 0, 0]
    assert not eth.exit.any()
    assert eth.stop_pct is not None
    assert math.isnan(eth.stop_pct[2])


def test_epoch_seconds_and_offsets(tmp_path: Path) -> None:
    # 03:00+02:00 is 01:00 UTC; epoch seconds JAN1_S + 4 h is 04:00 UTC.
    path = write(
        tmp_path,
        "timestamp,symbol,signal,take_profit_pct\n"
        "2024-01-01T03:00:00+02:00,BTC/USDT,long,0.05\n"
        f"{JAN1_S + 4 * 3600},BTC/USDT,exit,\n",
    )
    btc = SignalsFileStrategy(path).generate(candles())["BTC/USDT"]
    assert btc.entry.tolist() == [0, 1, 0, 0, 0, 0]
    assert btc.exit.tolist() == [False, False, False, False, True, False]
    assert btc.take_profit_pct is not None
    assert btc.take_profit_pct[1] == 0.05


def test_datetime_index_candles(tmp_path: Path) -> None:
    path = write(tmp_path, "timestamp,symbol,signal\n2024-01-01T02:00:00Z,BTC/USDT,long\n")
    frame = hourly_candles().set_index("date")
    btc = SignalsFileStrategy(path).generate({"BTC/USDT": frame})["BTC/USDT"]
    assert btc.entry.tolist() == [0, 0, 1, 0, 0, 0]


def test_missing_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol\n2024-01-01T01:00:00Z,BTC/USDT\n")
    assert "signals.csv" in message
    assert "line 1" in message
    assert "missing column 'signal'" in message


def test_unknown_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol,signal,stop\n")
    assert "unknown column 'stop'" in message
    assert "stop_pct" in message


def test_unknown_signal_value(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol,signal\n2024-01-01T01:00:00Z,BTC/USDT,buy\n")
    assert "line 2" in message
    assert "unknown signal 'buy'" in message
    assert "long, short, exit" in message


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00", "now"])
def test_unparsable_timestamp(tmp_path: Path, value: str) -> None:
    message = load_error(tmp_path, f"timestamp,symbol,signal\n{value},BTC/USDT,long\n")
    assert "line 2" in message
    assert f"invalid timestamp '{value}'" in message
    assert "ISO 8601" in message


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.01", "abc", "nan"])
def test_stop_pct_out_of_range(tmp_path: Path, value: str) -> None:
    text = f"timestamp,symbol,signal,stop_pct\n2024-01-01T01:00:00Z,BTC/USDT,long,{value}\n"
    message = load_error(tmp_path, text)
    assert "line 2" in message
    assert f"stop_pct '{value}' is not a fraction between 0 and 1" in message


def test_symbol_without_slash(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol,signal\n2024-01-01T01:00:00Z,BTCUSDT,long\n")
    assert "invalid symbol 'BTCUSDT'" in message
    assert "BTC/USDT" in message


def test_timestamp_not_a_candle_open(tmp_path: Path) -> None:
    text = "timestamp,symbol,signal\n2024-01-01T00:00:00Z,ETH/USDT,long\n"
    text += "2024-01-01T01:30:00Z,BTC/USDT,long\n"
    message = load_error(tmp_path, text)
    assert "line 3" in message
    assert "2024-01-01T01:30:00+00:00 is not a candle open time of BTC/USDT" in message
    assert "timeframe 1h" in message
    assert "2024-01-01T01:00:00+00:00 and 2024-01-01T02:00:00+00:00" in message


def test_symbol_not_in_backtest(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol,signal\n2024-01-01T01:00:00Z,SOL/USDT,long\n")
    assert "line 2" in message
    assert "symbol 'SOL/USDT' is not in the backtest" in message
    assert "BTC/USDT, ETH/USDT" in message


def test_duplicate_rows_name_both_lines(tmp_path: Path) -> None:
    # Line 4 is the same instant as line 2, written as epoch milliseconds.
    text = "timestamp,symbol,signal\n2024-01-01T01:00:00Z,BTC/USDT,long\n"
    text += "2024-01-01T02:00:00Z,BTC/USDT,exit\n"
    text += f"{(JAN1_S + 3600) * 1000},btc/usdt,short\n"
    message = load_error(tmp_path, text)
    assert "lines 2 and 4" in message
    assert "BTC/USDT at 2024-01-01T01:00:00+00:00" in message


def test_signals_outside_data_warn_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = "timestamp,symbol,signal\n2023-12-31T23:00:00Z,BTC/USDT,long\n"
    text += "2024-01-01T01:00:00Z,BTC/USDT,long\n"
    text += "2024-01-01T06:00:00Z,BTC/USDT,exit\n"
    with caplog.at_level(logging.WARNING):
        btc = SignalsFileStrategy(write(tmp_path, text)).generate(candles())["BTC/USDT"]
    assert btc.entry.tolist() == [0, 1, 0, 0, 0, 0]
    assert not btc.exit.any()
    assert len(caplog.records) == 1
    assert "Skipped 2 signals" in caplog.records[0].getMessage()


def test_wrong_field_count(tmp_path: Path) -> None:
    message = load_error(tmp_path, "timestamp,symbol,signal\n2024-01-01T01:00:00Z,BTC/USDT\n")
    assert "line 2" in message
    assert "2 fields but the header has 3" in message


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        SignalsFileStrategy(tmp_path / "missing.csv")


def test_example_file_matches_shipped_data() -> None:
    root = Path(__file__).parents[2]
    strategy = SignalsFileStrategy(root / "examples" / "signals_example.csv")
    data = {
        f"{base}/USDT": pd.read_feather(root / "data" / "binance" / f"{base}_USDT-1h.feather")
        for base in ("BTC", "ETH")
    }
    signals = strategy.generate(data)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert int(np.count_nonzero(signals[symbol].entry)) == 3
        assert int(np.count_nonzero(signals[symbol].exit)) == 3


def test_spot_symbol_names_the_perpetual(tmp_path: Path) -> None:
    """In a futures backtest, BTC/USDT in the file places the signal on BTC/USDT:USDT."""
    path = tmp_path / "signals.csv"
    path.write_text("timestamp,symbol,signal\n2024-01-01T01:00:00Z,BTC/USDT,long\n")
    dates = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    candles = pd.DataFrame({"date": dates, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0})
    frames = SignalsFileStrategy(path).generate({"BTC/USDT:USDT": candles})
    assert frames["BTC/USDT:USDT"].entry.tolist() == [0, 1, 0]
