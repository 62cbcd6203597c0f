"""The AI Trading Engine as a subsystem: the walk-forward ensemble's signals, votes and scores.

The ensemble is trained walk-forward before the simulation (see ``models.walk_forward``); this
subsystem serves its per-candle output to the pipeline and reports its health and counters.
"""

from __future__ import annotations

import math

from quantum_trader.engine.decisions import DecisionLog
from quantum_trader.models.results import WalkForwardResult
from quantum_trader.subsystems.base import Mode, Subsystem


class AITradingEngine(Subsystem):
    """Serves the ensemble probability and each member's vote for a symbol's candle."""

    name = "AITradingEngine"
    short_name = "AI Trading Engine"

    def __init__(
        self, mode: Mode, result: WalkForwardResult | None, log: DecisionLog | None = None
    ) -> None:
        super().__init__(mode, 1, log)
        self.result = result

    def start(self) -> None:
        if self.mode is not Mode.OFF and self.result is None:
            raise RuntimeError("the AI Trading Engine has no trained models; train them first")
        super().start()

    def votes(self, symbol: str, row: int) -> dict[str, float]:
        """Return the ensemble probability and each member's vote at ``row`` (finite only)."""
        if self.result is None or symbol not in self.result.probability:
            return {}
        self.seen += 1
        self.heartbeat()
        numbers = {"probability": float(self.result.probability[symbol][row])}
        for member, values in self.result.votes[symbol].items():
            numbers[f"vote_{member}"] = float(values[row])
        return {key: value for key, value in numbers.items() if math.isfinite(value)}
