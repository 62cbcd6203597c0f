"""Look-ahead check of the whole AI pipeline: cutting the candles at t changes nothing before t."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from quantum_trader.backtest.runner import load_market_data, simulate
from quantum_trader.backtest.signal_set import ai_pipeline_signals
from quantum_trader.config import load_settings


def _run(settings: Any, candles: dict[str, pd.DataFrame]) -> Any:
    signals = ai_pipeline_signals(settings, candles, None)
    return simulate(settings, candles, signals)


@pytest.mark.slow
def test_truncation_keeps_every_earlier_decision_with_all_subsystems() -> None:
    """With all fourteen subsystems on real BTC, ETH and SOL 1h candles, orders, fills and
    decisions before the cut at 2025-08-01 are identical whether or not later candles exist."""
    settings = load_settings(
        overrides={
            "data": {"timeframe": "1h", "symbols": ("BTC/USDT", "ETH/USDT", "SOL/USDT")},
            "model": {"models": ("lightgbm", "linear"), "train_window": 2000},
            "emergency_stop": {"backtest_reset_hours": 24},
        }
    )
    candles = load_market_data(settings).candles
    cut = pd.Timestamp("2025-08-01", tz="UTC")
    truncated = {s: f[f["date"] < cut].reset_index(drop=True) for s, f in candles.items()}
    full = _run(settings, candles)
    short = _run(settings, truncated)
    before = cut.value

    def orders(result: Any) -> list[tuple[Any, ...]]:
        return [
            (o.client_order_id, o.side, o.type, o.quantity, o.price, o.created_ns)
            for o in result.orders
            if o.created_ns < before
        ]

    def fills(result: Any) -> list[tuple[Any, ...]]:
        return [(f.client_order_id, f.price, f.quantity, f.fee) for f in result.fills
                if f.time_ns < before]  # fmt: skip

    def decisions(result: Any) -> list[tuple[Any, ...]]:
        return [(d.time_ns, d.symbol, d.subsystem, d.action, d.reason) for d in result.decisions
                if d.time_ns < before]  # fmt: skip

    assert len(fills(full)) > 50
    assert orders(full) == orders(short)
    assert fills(full) == fills(short)
    assert decisions(full) == decisions(short)
