"""Run folder, result.json and report.html written by write_run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantum_trader.backtest.report import equity_curve_records, write_run
from quantum_trader.backtest.report_html import downsample_positions
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.core.types import (
    ExitReason,
    Fill,
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    Trade,
)
from quantum_trader.engine.decisions import Action, Decision

START = pd.Timestamp("2024-03-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
NOW = dt.datetime(2024, 3, 5, 12, 30, 45, tzinfo=dt.UTC)
TRADE_KEYS = {
    "symbol",
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "quantity",
    "fees",
    "funding",
    "pnl",
    "pnl_ratio",
    "leverage",
    "exit_reason",
}


def candles(base: float) -> pd.DataFrame:
    closes = base + np.arange(50, dtype=float)
    return pd.DataFrame(
        {
            "date": pd.date_range(START, periods=50, freq="h"),
            "open": closes - 0.5,
            "high": closes + 1.0,
            "low": closes - 1.0,
            "close": closes,
            "volume": 10.0,
        }
    )


def trade(symbol: str, side: PositionSide, entry: int, exit_: int, pnl: float) -> Trade:
    return Trade(
        symbol=symbol,
        side=side,
        entry_time=START + entry * HOUR,
        entry_price=100.0,
        exit_time=START + exit_ * HOUR,
        exit_price=100.0 + pnl * int(side),
        quantity=1.0,
        fees=0.1,
        funding=0.0,
        pnl=pnl,
        pnl_ratio=pnl / 100.0,
        leverage=2.0,
        exit_reason=ExitReason.TAKE_PROFIT if pnl > 0 else ExitReason.STOP_LOSS,
    )


def sample_result() -> BacktestResult:
    index = pd.date_range(START, periods=50, freq="h")
    trades = [
        trade("BTC/USDT", PositionSide.LONG, 5, 10, 10.0),
        trade("BTC/USDT", PositionSide.SHORT, 20, 25, -5.0),
        # The only ETH trade wins, so ETH's profit factor is infinite.
        trade("ETH/USDT", PositionSide.LONG, 30, 40, 7.0),
    ]
    order = Order(
        "o-1", "BTC/USDT", OrderSide.BUY, OrderType.MARKET, 1.0, START.value + 5 * 3600 * 10**9
    )
    order.status = OrderStatus.FILLED
    fill = Fill(
        "o-1", "BTC/USDT", OrderSide.BUY, 100.0, 1.0, 0.05, Liquidity.TAKER, order.created_ns
    )
    decision = Decision(order.created_ns, "BTC/USDT", "risk", Action.RESIZE, "cap", {"size": 1.0})
    return BacktestResult(
        run_id="run-1",
        strategy="ema cross",
        timeframe="1h",
        market_type="futures",
        symbols=["BTC/USDT", "ETH/USDT"],
        initial_capital=1000.0,
        equity=pd.Series(1000.0 + np.linspace(0.0, 12.0, 50), index=index),
        benchmark_equity=pd.Series(1000.0 + np.arange(50, dtype=float), index=index),
        orders=[order],
        fills=[fill],
        trades=trades,
        decisions=[decision],
        candles={"BTC/USDT": candles(100.0), "ETH/USDT": candles(10.0)},
        settings={"fee": float("nan"), "cap": float("inf"), "path": Path("/tmp/data")},
        model_report={"model": "lgbm", "folds": [{"fold": 0, "auc": 0.55}]},
        fees_paid=0.3,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    paths = write_run(sample_result(), tmp_path_factory.mktemp("runs"), now=NOW)
    text = paths.result_json.read_text(encoding="utf-8")
    return paths.run_dir, json.loads(text), text


def test_run_dir_name_format(written: tuple[Path, Any, str]) -> None:
    assert written[0].name == "20240305-123045-ema_cross-1h"


def test_run_dir_gets_suffix_when_taken(tmp_path: Path) -> None:
    first = write_run(sample_result(), tmp_path, now=NOW)
    second = write_run(sample_result(), tmp_path, now=NOW)
    assert second.run_dir.name == f"{first.run_dir.name}-2"


def test_result_json_strict_json(written: tuple[Path, Any, str]) -> None:
    text = written[2]
    assert "NaN" not in text
    assert "Infinity" not in text


def test_settings_converted(written: tuple[Path, Any, str]) -> None:
    settings = written[1]["settings"]
    assert settings["fee"] is None
    assert settings["cap"] is None
    assert settings["path"] == "/tmp/data"


def test_every_trade_written(written: tuple[Path, Any, str]) -> None:
    trades = written[1]["trades"]
    assert len(trades) == 3
    for row in trades:
        assert TRADE_KEYS.issubset(row)


def test_short_trade_values(written: tuple[Path, Any, str]) -> None:
    short = written[1]["trades"][1]
    assert short["symbol"] == "BTC/USDT"
    assert short["side"] == "short"
    assert short["entry_time"] == "2024-03-01T20:00:00+00:00"
    assert short["exit_time"] == "2024-03-02T01:00:00+00:00"
    assert short["entry_price"] == 100.0
    assert short["exit_price"] == 105.0
    assert short["pnl"] == -5.0
    assert short["pnl_ratio"] == -0.05
    assert short["leverage"] == 2.0
    assert short["exit_reason"] == "stop_loss"


def test_profit_factor_metric(written: tuple[Path, Any, str]) -> None:
    # (10 + 7) / 5
    assert written[1]["metrics"]["profit_factor"]["value"] == pytest.approx(3.4)
    assert written[1]["metrics"]["trade_count"]["value"] == 3


def test_infinite_symbol_profit_factor(written: tuple[Path, Any, str]) -> None:
    eth = written[1]["per_symbol"][1]
    assert eth["symbol"] == "ETH/USDT"
    assert eth["profit_factor"] is None
    assert eth["profit_factor_note"] == "no losing trades"


def test_orders_fills_decisions_written(written: tuple[Path, Any, str]) -> None:
    payload = written[1]
    assert payload["orders"][0]["created_time"] == "2024-03-01T05:00:00+00:00"
    assert payload["orders"][0]["status"] == "filled"
    assert payload["fills"][0]["time"] == "2024-03-01T05:00:00+00:00"
    assert payload["fills"][0]["fee"] == 0.05
    assert payload["decisions"][0]["action"] == "resize"
    assert payload["decisions"][0]["numbers"] == {"size": 1.0}


def test_equity_curve_written(written: tuple[Path, Any, str]) -> None:
    curve = written[1]["equity_curve"]
    assert len(curve) == 50
    assert curve[0]["time"] == "2024-03-01T00:00:00+00:00"
    assert curve[-1]["equity"] == 1012.0
    assert curve[-1]["drawdown"] == 0.0


def test_report_html_shows_equity_and_symbols(tmp_path: Path) -> None:
    paths = write_run(sample_result(), tmp_path, now=NOW)
    page = paths.report_html.read_text(encoding="utf-8")
    assert "Equity" in page
    assert "BTC/USDT" in page
    assert "ETH/USDT" in page
    assert "Model report" in page


def test_equity_curve_downsampled_keeps_deepest_point() -> None:
    result = sample_result()
    values = np.full(20_000, 1000.0)
    values[12_345] = 800.0
    index = pd.date_range(START, periods=values.size, freq="5min")
    result.equity = pd.Series(values, index=index)
    result.benchmark_equity = pd.Series(values, index=index)
    curve = equity_curve_records(result)
    assert len(curve) <= 5000
    assert max(row["drawdown"] for row in curve) == pytest.approx(0.2)


def test_downsample_keeps_ends_and_extremes() -> None:
    values = np.sin(np.arange(100_000) / 500.0)
    values[777] = 5.0
    values[99_001] = -5.0
    keep = downsample_positions(values, 1000)
    assert len(keep) <= 1000
    assert keep[0] == 0
    assert keep[-1] == 99_999
    assert 777 in keep
    assert 99_001 in keep


def test_downsample_short_series_unchanged() -> None:
    assert downsample_positions(np.arange(10.0), 50).tolist() == list(range(10))
