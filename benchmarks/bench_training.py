"""Measure walk-forward training of the full ensemble on the shipped 5m candles of five symbols.

The run trains LightGBM, XGBoost and the linear model with 2 threads, with the 1h context
features, and predicts every test window. The 5m settings below count in 5m candles:

- horizon 12 (one hour ahead), purge 12;
- train_window 8640 (30 days) and retrain_every 2016 (weekly refits);
- max_train_rows 20000 (the default): about 34,000 pooled training rows per fold are thinned to
  every 2nd row;
- early_stopping_rounds 20 (the default): the tree members stop once the log loss on the
  calibration slice has not improved for 20 trees. Without it the run took about 2.5 times as
  long on a 2-core machine.

Loading the files is outside the timing; building the features is inside.

Usage: python benchmarks/bench_training.py [--repeat 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantum_trader.backtest.runner import load_market_data
from quantum_trader.config import DEFAULT_SYMBOLS, load_settings
from quantum_trader.models.results import WalkForwardResult
from quantum_trader.models.walk_forward import ENSEMBLE, walk_forward_predict

MODEL_5M: dict[str, Any] = {
    "models": ["lightgbm", "xgboost", "linear"],
    "horizon": 12,
    "train_window": 8640,
    "retrain_every": 2016,
    "higher_timeframe": "1h",
}


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


def _report(result: WalkForwardResult) -> list[str]:
    lines = ["| model | rows | AUC | Brier | hit rate | log loss |", "|---|---|---|---|---|---|"]
    for name, scores in result.pooled_scores().items():
        cells = [scores.auc, scores.brier, scores.hit_rate, scores.log_loss]
        text = " | ".join("n/a" if value is None else f"{value:.4f}" for value in cells)
        lines.append(f"| {name} | {scores.rows:,} | {text} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="Runs to time.")
    parser.add_argument("--threads", type=int, default=2, help="Threads per tree model.")
    args = parser.parse_args()

    settings = load_settings(
        overrides={"data": {"timeframe": "5m", "symbols": DEFAULT_SYMBOLS}, "model": MODEL_5M}
    )
    candles = load_market_data(settings).candles
    count = sum(len(frame) for frame in candles.values())

    times: list[float] = []
    result: WalkForwardResult | None = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = walk_forward_predict(candles, settings.model, "5m", threads=args.threads)
        times.append(time.perf_counter() - start)
    assert result is not None  # --repeat is at least 1
    trained = sum(1 for fold in result.folds if fold.scores)

    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # noqa: T201
    print(f"Machine: {_machine()}")  # noqa: T201
    print(f"Candles: {count:,} (5 symbols x 5m), threads per model: {args.threads}")  # noqa: T201
    print(f"Settings: {MODEL_5M}, max_train_rows {settings.model.max_train_rows}")  # noqa: T201
    print(  # noqa: T201
        f"Folds: {len(result.folds)} ({trained} trained); "
        f"rows per fold fitted: {result.folds[-1].train_rows:,}"
    )
    print(  # noqa: T201
        f"Walk-forward time: median {statistics.median(times):.1f} s, best {min(times):.1f} s "
        f"over {args.repeat} run(s)"
    )
    for line in _report(result):
        print(line)  # noqa: T201
    print(f"Ensemble rows scored: {result.pooled_scores()[ENSEMBLE].rows:,}")  # noqa: T201


if __name__ == "__main__":
    main()
