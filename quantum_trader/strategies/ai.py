"""The AI strategy: walk-forward ensemble probabilities turned into signals.

With ``p`` the ensemble probability that the close rises over the label horizon:

- confidence = max(p, 1 - p).
- entry = +1 (long) when ``p >= entry_confidence``; entry = -1 (short) when ``allow_short`` and
  ``1 - p >= entry_confidence``; otherwise 0.
- Long only: exit when ``p < exit_confidence`` (the model no longer favours the long side).
- With shorts: the exit flag does not name the side it closes, so the strategy works as a
  reversal system. An opposite entry reverses the position, and exit is set inside the neutral
  band where both ``p`` and ``1 - p`` are below exit_confidence, so no side is favoured. With the
  default exit_confidence of 0.5 the band is empty, so positions close only by reversal, stop
  or target.
- A NaN probability (warm-up, rows before the first fold) gives no entry and no exit.

``exit_confidence`` above ``entry_confidence`` would open and close on the same row, so it is
rejected.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

from quantum_trader.config import ModelSettings
from quantum_trader.errors import ConfigurationError
from quantum_trader.models.walk_forward import (
    ProgressCallback,
    WalkForwardResult,
    walk_forward_predict,
)
from quantum_trader.strategies.base import ENTRY_LONG, ENTRY_SHORT, NO_ENTRY, SignalFrame

logger = logging.getLogger(__name__)


def signals_from_probability(
    probability: npt.ArrayLike,
    entry_confidence: float,
    exit_confidence: float,
    allow_short: bool,
) -> SignalFrame:
    """Apply the signal rule of this module to one symbol's probabilities."""
    if exit_confidence > entry_confidence:
        raise ConfigurationError(
            f"model.exit_confidence={exit_confidence} is above "
            f"model.entry_confidence={entry_confidence}; lower exit_confidence"
        )
    p = np.asarray(probability, dtype=np.float64)
    known = np.isfinite(p)
    safe = np.where(known, p, 0.5)

    entry = np.full(len(p), NO_ENTRY, dtype=np.int8)
    entry[known & (safe >= entry_confidence)] = ENTRY_LONG
    if allow_short:
        # 1 - p is compared with the threshold, not p with 1 - threshold, so that p = 0.44
        # meets 0.56 exactly as p = 0.56 does (1 - 0.56 is 0.43999... in binary floats).
        entry[known & (1.0 - safe >= entry_confidence)] = ENTRY_SHORT
        exit_flag = known & (1.0 - safe < exit_confidence) & (safe < exit_confidence)
    else:
        exit_flag = known & (safe < exit_confidence)

    confidence = np.where(known, np.maximum(p, 1.0 - p), np.nan)
    return SignalFrame(entry=entry, exit=exit_flag, confidence=confidence)


class AIStrategy:
    """Signals from the walk-forward ensemble; ``result`` keeps the last walk-forward run."""

    name = "ai"

    def __init__(
        self,
        settings: ModelSettings,
        timeframe: str,
        progress: ProgressCallback | None = None,
        weights: dict[str, float] | None = None,
    ) -> None:
        if settings.exit_confidence > settings.entry_confidence:
            raise ConfigurationError(
                f"model.exit_confidence={settings.exit_confidence} is above "
                f"model.entry_confidence={settings.entry_confidence}; lower exit_confidence"
            )
        self.settings = settings
        self.timeframe = timeframe
        self.progress = progress
        self.weights = weights
        self.result: WalkForwardResult | None = None

    def generate(self, candles: dict[str, pd.DataFrame]) -> dict[str, SignalFrame]:
        """Train walk-forward on all symbols and turn the probabilities into signals."""
        self.result = walk_forward_predict(
            candles, self.settings, self.timeframe, self.progress, weights=self.weights
        )
        signals: dict[str, SignalFrame] = {}
        for symbol, probability in self.result.probability.items():
            signals[symbol] = signals_from_probability(
                probability,
                self.settings.entry_confidence,
                self.settings.exit_confidence,
                self.settings.allow_short,
            )
            logger.info(
                "AI signals for %s: %d long entries, %d short entries, %d exits.",
                symbol,
                int((signals[symbol].entry == ENTRY_LONG).sum()),
                int((signals[symbol].entry == ENTRY_SHORT).sum()),
                int(signals[symbol].exit.sum()),
            )
        return signals
