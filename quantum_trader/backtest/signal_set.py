"""Signals of every strategy profile, and the Model Supervisor's arrays, for one backtest."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantum_trader.config import Settings, model_settings_for
from quantum_trader.engine.progress import ProgressCallback
from quantum_trader.features.higher import build_model_features
from quantum_trader.models.walk_forward import WalkForwardResult
from quantum_trader.strategies.ai import AIStrategy
from quantum_trader.strategies.base import SignalFrame
from quantum_trader.strategies.ema_cross import EmaCrossStrategy
from quantum_trader.strategies.mean_reversion import MeanReversionStrategy
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.feature_drift import drift_by_fold
from quantum_trader.subsystems.meta_strategy import MEAN_REVERSION, ML_ENSEMBLE, TREND_FOLLOWING
from quantum_trader.subsystems.model_supervisor import SupervisionArrays, supervise


@dataclass
class SignalSet:
    """Profile name -> symbol -> signals, in priority order, plus supervision arrays.

    ``model`` is the walk-forward result when the ML ensemble was trained.
    """

    profiles: dict[str, dict[str, SignalFrame]]
    supervision: dict[str, SupervisionArrays] | None = None
    model: WalkForwardResult | None = None
    ai_entries: int = field(default=0)

    def without(self, profile: str) -> SignalSet:
        profiles = {name: frames for name, frames in self.profiles.items() if name != profile}
        return SignalSet(profiles, self.supervision, self.model, 0)


def ai_pipeline_signals(
    settings: Settings, candles: dict[str, pd.DataFrame], progress: ProgressCallback | None
) -> SignalSet:
    """Build the three profiles of the AI pipeline: ML ensemble, trend following, mean reversion.

    The ML ensemble is trained walk-forward unless the AI Trading Engine is off.
    """
    profiles: dict[str, dict[str, SignalFrame]] = {}
    supervision = None
    model = None
    model_settings = model_settings_for(settings.model, settings.data.timeframe)
    if model_settings.mode is not Mode.OFF:
        strategy = AIStrategy(model_settings, settings.data.timeframe, progress=progress)
        profiles[ML_ENSEMBLE] = strategy.generate(candles)
        model = strategy.result
        if model is not None and settings.supervisor.mode is not Mode.OFF:
            supervision = _supervision(settings, model_settings.horizon, candles, model)
    rules = settings.strategy
    profiles[TREND_FOLLOWING] = EmaCrossStrategy(
        fast=rules.fast_period,
        slow=rules.slow_period,
        stop_pct=rules.stop_pct,
        allow_short=settings.model.allow_short,
    ).generate(candles)
    profiles[MEAN_REVERSION] = MeanReversionStrategy(
        allow_short=settings.model.allow_short
    ).generate(candles)
    entries = sum(int((f.entry != 0).sum()) for f in profiles.get(ML_ENSEMBLE, {}).values())
    return SignalSet(profiles, supervision, model, entries)


def _supervision(
    settings: Settings,
    horizon: int,
    candles: dict[str, pd.DataFrame],
    model: WalkForwardResult,
) -> dict[str, SupervisionArrays]:
    arrays = {}
    config = settings.supervisor
    for symbol, frame in candles.items():
        features = build_model_features(
            frame, settings.data.timeframe, settings.model.higher_timeframe
        ).to_numpy(np.float64)
        times = frame["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        drift = drift_by_fold(features, times, model.folds, config.drift_window, config.psi_bins)
        arrays[symbol] = supervise(
            model.votes[symbol],
            model.probability[symbol],
            model.labels[symbol],
            horizon,
            config,
            drift=drift,
        )
    return arrays
