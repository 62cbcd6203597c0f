"""Pure rules of the live timeline: the history length, the masked warm-up, the stale-data
limit and which newly fetched times are complete enough to trade."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from quantum_trader.backtest.signal_set import SignalSet
from quantum_trader.config import Settings, model_settings_for
from quantum_trader.core.types import NS_PER_SECOND
from quantum_trader.data.timeframes import timeframe_to_seconds
from quantum_trader.errors import ConfigurationError
from quantum_trader.strategies.base import SignalFrame
from quantum_trader.subsystems.base import Mode

logger = logging.getLogger(__name__)

# Candles fetched before trading when the AI Trading Engine is off (the rule profiles' warm-up).
RULES_HISTORY_CANDLES = 500


def history_candles(settings: Settings) -> int:
    """Return the closed candles per symbol a live run starts with (see ``live.history_candles``).

    Raises ConfigurationError when a configured count leaves the AI model without a fold.
    """
    model = model_settings_for(settings.model, settings.data.timeframe)
    needed = model.train_window + model.retrain_every if model.mode is not Mode.OFF else 0
    configured = settings.live.history_candles
    if configured is None:
        return max(needed, RULES_HISTORY_CANDLES)
    if model.mode is not Mode.OFF and configured <= model.train_window:
        raise ConfigurationError(
            f"live.history_candles={configured} is too short: the {settings.data.timeframe} "
            f"model trains on model.train_window={model.train_window} candles, so the AI Trading "
            f"Engine would have no trained model. Set it above {model.train_window}, or leave it "
            f"unset for {needed} (the window plus one refit interval)"
        )
    return configured


def mask_entries_before(
    signals: SignalSet, candles: dict[str, pd.DataFrame], trade_from_ns: int
) -> SignalSet:
    """Return ``signals`` with every entry of a candle opened before ``trade_from_ns`` removed."""
    profiles: dict[str, dict[str, SignalFrame]] = {}
    for name, frames in signals.profiles.items():
        profiles[name] = {}
        for symbol, frame in frames.items():
            times = candles[symbol]["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
            entry = frame.entry.copy()
            entry[times < trade_from_ns] = 0
            profiles[name][symbol] = replace(frame, entry=entry)
    return SignalSet(profiles, signals.supervision, signals.model, signals.ai_entries)


def complete_times(
    timeline: dict[str, pd.DataFrame],
    fetched: dict[str, pd.DataFrame],
    newest_closed_ns: int,
    timeframe_ns: int,
    *,
    now_ns: int,
    max_wait_seconds: float,
    exchange: str,
) -> dict[str, pd.DataFrame] | None:
    """Return the rows to append to ``timeline``: every time after its end, up to
    ``newest_closed_ns``, for which every symbol has a candle.

    The first time a symbol is missing ends the rows, unless ``max_wait_seconds`` have passed
    since that candle closed: then the symbol gets a flat synthetic candle at its previous close
    (volume 0) and the rows go on. A time no symbol has delivered always ends the rows, so a feed
    that returns nothing makes the data stale instead of flat. Returns None when no time is
    complete.
    """
    last = max(int(frame["date"].iloc[-1].value) for frame in timeline.values())
    index = {
        symbol: {int(stamp.value): row for row, stamp in enumerate(frame["date"])}
        for symbol, frame in fetched.items()
    }
    previous = {symbol: float(frame["close"].iloc[-1]) for symbol, frame in timeline.items()}
    rows: dict[str, list[dict[str, object]]] = {symbol: [] for symbol in timeline}
    for time_ns in range(last + timeframe_ns, newest_closed_ns + timeframe_ns, timeframe_ns):
        missing = [symbol for symbol in timeline if time_ns not in index.get(symbol, {})]
        if len(missing) == len(timeline):
            break  # the exchange delivered nothing for this time: wait, and let the data age
        if missing:
            waited = (now_ns - time_ns - timeframe_ns) / NS_PER_SECOND
            if waited < max_wait_seconds:
                break
            logger.warning(
                "No %s candle at %s from %s after %.0f s; using a flat synthetic candle.",
                ", ".join(missing),
                pd.Timestamp(time_ns, tz="UTC").isoformat(),
                exchange,
                waited,
            )
        for symbol in timeline:
            row = index.get(symbol, {}).get(time_ns)
            if row is None:
                values = _flat_candle(time_ns, previous[symbol])
            else:
                candle = fetched[symbol].iloc[row]
                values = {str(key): value for key, value in candle.items()}
                values["synthetic"] = bool(values.get("synthetic", False))
                previous[symbol] = float(candle["close"])
            rows[symbol].append(values)
    if not any(rows.values()):
        return None
    columns = list(next(iter(timeline.values())).columns)
    return {symbol: pd.DataFrame(values, columns=columns) for symbol, values in rows.items()}


def _flat_candle(time_ns: int, price: float) -> dict[str, object]:
    return {
        "date": pd.Timestamp(time_ns, tz="UTC"),
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "volume": 0.0,
        "synthetic": True,
    }


def with_stale_limit(settings: Settings) -> Settings:
    """Return ``settings`` with an ESS stale-data limit that closed candles can meet.

    The newest closed candle opened at least one candle length ago, and up to two lengths plus
    the waits just before the next one is processed. An unset limit becomes that bound; a
    configured limit below it is refused, as it would trip the ESS on every poll.
    """
    live = settings.live
    candle = timeframe_to_seconds(settings.data.timeframe)
    needed = 2 * candle + live.max_wait_seconds + 2 * live.poll_seconds
    ess = settings.emergency_stop
    limit = ess.max_data_age_seconds
    if limit is None:
        return settings
    if "max_data_age_seconds" not in ess.model_fields_set:
        ess = ess.model_copy(update={"max_data_age_seconds": max(limit, needed)})
        return settings.model_copy(update={"emergency_stop": ess})
    if limit < needed:
        raise ConfigurationError(
            f"emergency_stop.max_data_age_seconds={limit:g} is below {needed:g} s, the age the "
            f"newest closed {settings.data.timeframe} candle reaches in a live run (two candle "
            "lengths plus live.max_wait_seconds and two polls); raise it or leave it unset"
        )
    return settings
