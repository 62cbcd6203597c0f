"""Write one backtest run to its own folder: result.json for programs, report.html for people."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantum_trader.backtest.metrics import (
    Metric,
    compute_metrics,
    drawdown_series,
    metrics_to_dict,
    per_symbol_table,
)
from quantum_trader.backtest.report_html import (
    decision_counts,
    downsample_positions,
    iso_time_ns,
    render_html,
)
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.core.types import PositionSide

logger = logging.getLogger(__name__)

RESULT_SCHEMA_VERSION = 1
MAX_CURVE_POINTS = 5000
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Paths of one run's folder and the files ``write_run`` wrote into it."""

    run_dir: Path
    report_html: Path
    result_json: Path


def write_run(
    result: BacktestResult, output_dir: Path, *, now: dt.datetime | None = None
) -> RunPaths:
    """Write result.json and report.html into a new folder under ``output_dir``.

    The folder is named ``YYYYmmdd-HHMMSS-<strategy>-<timeframe>`` from ``now`` (default: the
    current UTC time), with ``-2``, ``-3``, ... appended when that name is taken. result.json is
    strict JSON: NaN and infinities are written as null.
    """
    metrics = compute_metrics(result)
    per_symbol = per_symbol_table(result)
    run_dir = _create_run_dir(Path(output_dir), result.strategy, result.timeframe, now)

    result_json = run_dir / "result.json"
    payload = result_payload(result, metrics, per_symbol)
    result_json.write_text(json.dumps(payload, allow_nan=False), encoding="utf-8")

    report_html = run_dir / "report.html"
    report_html.write_text(render_html(result, metrics, per_symbol), encoding="utf-8")
    logger.info(
        "Wrote backtest run %s to %s: result.json %.1f MB, report.html %.1f MB.",
        result.run_id,
        run_dir,
        result_json.stat().st_size / 1e6,
        report_html.stat().st_size / 1e6,
    )
    return RunPaths(run_dir=run_dir, report_html=report_html, result_json=result_json)


def _create_run_dir(
    output_dir: Path, strategy: str, timeframe: str, now: dt.datetime | None
) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
    name = _UNSAFE_NAME_CHARACTERS.sub("_", f"{stamp}-{strategy}-{timeframe}")
    output_dir.mkdir(parents=True, exist_ok=True)
    candidate, suffix = output_dir / name, 1
    while True:
        try:
            # mkdir without exist_ok claims the name atomically, even against a parallel run.
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = output_dir / f"{name}-{suffix}"


def result_payload(
    result: BacktestResult, metrics: list[Metric], per_symbol: list[dict[str, Any]]
) -> dict[str, Any]:
    """Build the JSON-safe content of result.json; times are ISO 8601 UTC strings."""
    payload: dict[str, Any] = {
        "schema_version": RESULT_SCHEMA_VERSION,
        "run_id": result.run_id,
        "strategy": result.strategy,
        "timeframe": result.timeframe,
        "market_type": result.market_type,
        "symbols": result.symbols,
        "initial_capital": result.initial_capital,
        "fees_paid": result.fees_paid,
        "funding_paid": result.funding_paid,
        "settings": result.settings,
        "data_reports": result.data_reports,
        "model_report": result.model_report,
        "metrics": metrics_to_dict(metrics),
        "per_symbol": per_symbol,
        "emergency_stop": result.emergency_stop,
        "open_positions": result.open_positions,
        "orders": result.orders,
        "fills": result.fills,
        "trades": result.trades,
        "decision_counts": decision_counts(result),
        "subsystems": result.subsystems,
        "health": result.health,
        "subsystem_contributions": result.contributions,
        "decisions": result.decisions,
        "equity_curve": equity_curve_records(result),
    }
    converted: dict[str, Any] = to_jsonable(payload)
    return converted


def equity_curve_records(
    result: BacktestResult, max_points: int = MAX_CURVE_POINTS
) -> list[dict[str, Any]]:
    """Return (time, equity, drawdown, buy_and_hold) rows, downsampled to about ``max_points``.

    Drawdowns are computed on the full curve before downsampling, and the deepest point is
    always kept, so the curve never understates the maximum drawdown.
    """
    equity = result.equity.astype(float)
    if equity.empty:
        return []
    drawdown = drawdown_series(equity).to_numpy()
    keep = downsample_positions(equity.to_numpy(), max_points - 1)
    keep = np.union1d(keep, [int(np.argmax(drawdown))])
    benchmark = result.benchmark_equity.reindex(equity.index).astype(float).to_numpy()
    return [
        {
            "time": equity.index[position],
            "equity": float(equity.iloc[position]),
            "drawdown": float(drawdown[position]),
            "buy_and_hold": float(benchmark[position]),
        }
        for position in keep
    ]


def _record(instance: Any) -> dict[str, Any]:
    """Convert a dataclass; an integer ``*_ns`` field becomes an ISO ``*_time`` string."""
    record: dict[str, Any] = {}
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        if field.name.endswith("_ns") and isinstance(value, int):
            base = field.name.removesuffix("_ns")
            record[base if base.endswith("time") else f"{base}_time"] = iso_time_ns(value)
        else:
            record[field.name] = to_jsonable(value)
    return record


def _utc_iso(value: dt.datetime) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return stamp.isoformat()


def _scalar_to_jsonable(value: Any) -> Any:
    """Convert a scalar, or return ``NotImplemented`` when ``value`` is a container."""
    if isinstance(value, PositionSide):
        return "long" if value is PositionSide.LONG else "short"
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is pd.NaT:
        return None
    if isinstance(value, dt.datetime):
        return _utc_iso(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, Path):
        return str(value)
    return NotImplemented


def to_jsonable(value: Any) -> Any:
    """Convert ``value`` to plain JSON types: NaN and infinities become None.

    Handles enums (a position side becomes "long" or "short"), numpy scalars and arrays,
    timestamps (ISO 8601 UTC, naive ones read as UTC), dataclasses, pydantic models, pandas
    objects, mappings and sequences. Anything else is written as ``str(value)``.
    """
    scalar = _scalar_to_jsonable(value)
    if scalar is not NotImplemented:
        return scalar
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _record(value)
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(to_jsonable(key)): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    logger.debug("Writing a %s to JSON as its string form.", type(value).__name__)
    return str(value)
