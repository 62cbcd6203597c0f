"""Measure the AI pipeline on the shipped 5m candles of five symbols, as the CLI runs it.

(1) building the strategy profiles: walk-forward training of the full ensemble (LightGBM,
XGBoost, linear) with the default settings, the rule profiles and the supervision arrays;
(2) the backtest with all fourteen subsystems active, without the ablation runs;
(3) the same profiles' signals through the engine alone (sizing and the ESS only), for
comparison.
Loading the files is outside every timing.

Usage: python benchmarks/bench_pipeline.py
"""

from __future__ import annotations

import logging
import platform
import time
from datetime import UTC, datetime

from quantum_trader.backtest.contributions import headline
from quantum_trader.backtest.runner import load_market_data, simulate
from quantum_trader.backtest.signal_set import ai_pipeline_signals
from quantum_trader.config import DEFAULT_SYMBOLS, load_settings


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    # As in the demo, the ESS resets a day after each trip, so the run trades to the end.
    settings = load_settings(
        overrides={
            "data": {"timeframe": "5m", "symbols": DEFAULT_SYMBOLS},
            "emergency_stop": {"backtest_reset_hours": 24},
        }
    )
    data = load_market_data(settings)
    candles = sum(len(frame) for frame in data.candles.values())

    start = time.perf_counter()
    signals = ai_pipeline_signals(settings, data.candles, None)
    training = time.perf_counter() - start
    folds = len(signals.model.folds) if signals.model is not None else 0

    start = time.perf_counter()
    full = simulate(settings, data.candles, signals, None, data.catalog)
    with_subsystems = time.perf_counter() - start

    start = time.perf_counter()
    alone = simulate(settings, data.candles, signals, None, data.catalog, subsystems=False)
    engine_alone = time.perf_counter() - start

    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # noqa: T201
    print(f"Python {platform.python_version()}, {platform.machine()}")  # noqa: T201
    print(f"Candles: {candles:,}; walk-forward folds: {folds}")  # noqa: T201
    print(f"(1) profiles incl. training: {training:.1f} s")  # noqa: T201
    print(  # noqa: T201
        f"(2) backtest, fourteen subsystems: {with_subsystems:.2f} s "
        f"({candles / with_subsystems:,.0f} candles/s), {len(full.trades)} trades, "
        f"return {headline(full)[0]:+.2%}"
    )
    print(  # noqa: T201
        f"(3) engine alone: {engine_alone:.2f} s ({candles / engine_alone:,.0f} candles/s), "
        f"{len(alone.trades)} trades; ratio {with_subsystems / engine_alone:.2f}x"
    )


if __name__ == "__main__":
    main()
