"""Measure engine throughput on the shipped 5m candles of five symbols.

(a) features plus ensemble signals, (b) the event simulation with sizing and the ESS active,
(c) the ema-cross strategy from loading the files to the finished trade list, and the peak
resident memory of the process. Interpreter start and imports are outside every timing.

Usage: python benchmarks/bench_engine.py [--repeat 3] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from quantum_trader.backtest.runner import build_strategy, load_market_data, simulate
from quantum_trader.config import DEFAULT_SYMBOLS, Settings, load_settings
from quantum_trader.features.higher import build_model_features
from quantum_trader.models.walk_forward import FittedEnsemble, walk_forward_predict
from quantum_trader.strategies.ai import signals_from_probability
from quantum_trader.strategies.base import SignalFrame

TRAIN_ROWS = 8000


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"data": {"timeframe": "5m", "symbols": DEFAULT_SYMBOLS}}
    base.update(overrides)
    return load_settings(overrides=base)


def _best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Return the median and minimum wall time of ``repeat`` runs, and the last output."""
    times = []
    output = None
    for _ in range(repeat):
        start = time.perf_counter()
        output = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), output


def _train_models(candles: dict[str, pd.DataFrame], settings: Settings) -> FittedEnsemble:
    """Fit one ensemble on the first rows of each symbol (not part of any timing)."""
    head = {symbol: frame.iloc[:TRAIN_ROWS] for symbol, frame in candles.items()}
    model_settings = settings.model.model_copy(
        update={"train_window": TRAIN_ROWS // 2, "retrain_every": TRAIN_ROWS}
    )
    result = walk_forward_predict(head, model_settings, "5m")
    if result.models is None:
        raise RuntimeError("benchmark training produced no model; check TRAIN_ROWS")
    return result.models


def _features_and_signals(
    candles: dict[str, pd.DataFrame], models: FittedEnsemble, settings: Settings
) -> dict[str, SignalFrame]:
    signals = {}
    for symbol, frame in candles.items():
        features = build_model_features(frame, "5m", settings.model.higher_timeframe).to_numpy()
        probability, _votes = models.predict(features)
        signals[symbol] = signals_from_probability(
            probability,
            settings.model.entry_confidence,
            settings.model.exit_confidence,
            settings.model.allow_short,
        )
    return signals


def _ema_cross_end_to_end(settings: Settings) -> int:
    data = load_market_data(settings)
    signals = build_strategy(settings, None).generate(data.candles)
    return len(simulate(settings, data.candles, signals).trades)


def _machine() -> str:
    model = "unknown CPU"
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Runs per measurement.")
    args = parser.parse_args()

    settings = _settings()
    data = load_market_data(settings)
    candles = data.candles
    count = sum(len(frame) for frame in candles.values())
    models = _train_models(candles, settings)

    a_median, a_min, signals = _best_of(
        args.repeat, lambda: _features_and_signals(candles, models, settings)
    )
    entries = sum(int((frame.entry != 0).sum()) for frame in signals.values())
    ema_settings = _settings(
        strategy={"name": "ema-cross", "fast_period": 12, "slow_period": 26, "stop_pct": 0.02},
        risk={"sizing": "stake", "stake_amount": 1000.0},
    )
    # (b) needs trades to exercise sizing and the ESS, so it replays the EMA-cross signals
    # with risk-based sizing; the ESS resets a day after each trip so trading goes on.
    risk_settings = _settings(emergency_stop={"backtest_reset_hours": 24})
    crossings = build_strategy(ema_settings, None).generate(candles)
    b_median, b_min, result = _best_of(
        args.repeat, lambda: simulate(risk_settings, candles, crossings)
    )
    c_median, c_min, ema_trades = _best_of(args.repeat, lambda: _ema_cross_end_to_end(ema_settings))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    command = "python " + " ".join(sys.argv)
    rows = [
        ("(a) features + ensemble signals", a_median, a_min, 2_000_000, f"{entries} entry signals"),
        ("(b) event simulation, risk sizing + ESS", b_median, b_min, 500_000,
         f"{len(result.trades)} trades"),
        ("(c) ema-cross 12/26, 2% stop, stake, load to trades", c_median, c_min, 1_000_000,
         f"{ema_trades} trades"),
    ]  # fmt: skip
    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # noqa: T201
    print(f"Machine: {_machine()}")  # noqa: T201
    print(f"Command: {command} (median and best of {args.repeat})")  # noqa: T201
    print(f"Candles: {count:,} (5 symbols x 5m)")  # noqa: T201
    print("| measurement | median s | candles/s (median) | candles/s (best) | target | |")  # noqa: T201
    print("|---|---|---|---|---|---|")  # noqa: T201
    for name, median, best, target, note in rows:
        rate, best_rate = count / median, count / best
        verdict = "met" if rate >= target else "missed"
        print(  # noqa: T201
            f"| {name} | {median:.3f} | {rate:,.0f} | {best_rate:,.0f} | {target:,} ({verdict}) "
            f"| {note} |"
        )
    print(f"Peak resident memory: {peak_mib:,.0f} MiB")  # noqa: T201


if __name__ == "__main__":
    main()
