"""OpportunityRanker: scores candidate markets from 0 to 1 and admits the best ``top_n``.

Six factors, each mapped to 0..1, are combined by a weighted sum whose weights add up to 1, so
the score lies in 0..1 too. A missing, NaN or infinite input gives its factor 0, because unknown
counts as worst. So bad market data lowers a score and does not raise. The factors:

- ``trend``: ``min(trend_strength / trend_full_strength, 1)``, where the strength is the EMA gap
  in ATRs. A trend-following candidate whose side opposes the trend direction gets 0. A
  mean-reversion candidate gets 1 minus that value, because it prefers a weak trend.
- ``volatility_quality``: 1 at ``target_atr_ratio`` (ATR over close), falling linearly to 0 at an
  ATR ratio of 0 and of 3 x target: ``r / t`` below the target, ``(3t - r) / 2t`` above it.
- ``liquidity``: log-scaled quote volume, 0 at ``liquidity_floor`` or below and 1 at
  ``liquidity_full`` or above: ``log(v / floor) / log(full / floor)``.
- ``regime_fit``: the Kaufman efficiency ratio for a trend-following candidate, 1 minus it for a
  mean-reversion candidate.
- ``recent_results``: ``0.5 + 0.5 x tanh(mean / pnl_scale)`` over the pnl ratios of the symbol's
  last ``recent_trades`` closed trades. It is 0.5 when the symbol has no closed trade.
- ``cost``: ``1 - min(round_trip_cost / atr_ratio, 1)``, so a round trip that costs a whole ATR
  scores 0.

Ties are broken by symbol name.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.market_stats import MarketSnapshot

logger = logging.getLogger(__name__)

FACTORS = ("trend", "volatility_quality", "liquidity", "regime_fit", "recent_results", "cost")
WEIGHT_SUM_TOLERANCE = 1e-9

Style = Literal["trend", "mean_reversion"]


class FactorWeights(BaseModel):
    """Weights of the six factors. Each is >= 0 and together they sum to 1 within 1e-9."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trend: float = Field(0.25, ge=0, le=1)
    volatility_quality: float = Field(0.15, ge=0, le=1)
    liquidity: float = Field(0.15, ge=0, le=1)
    regime_fit: float = Field(0.2, ge=0, le=1)
    recent_results: float = Field(0.1, ge=0, le=1)
    cost: float = Field(0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _check_sum(self) -> FactorWeights:
        total = math.fsum(self.as_dict().values())
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            listed = ", ".join(f"{name}={value:g}" for name, value in self.as_dict().items())
            raise ValueError(
                f"ranker weights must sum to 1 (within {WEIGHT_SUM_TOLERANCE:g}), but "
                f"{listed} sum to {total:.12g}; scale them so they add up to 1"
            )
        return self

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in FACTORS}


class RankerSettings(BaseModel):
    """OpportunityRanker settings. Ratios are fractions of the price (0.005 = 0.5%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(1, ge=1, le=100_000, description="Candles between two rankings.")
    top_n: int = Field(3, ge=1, le=10_000, description="Candidates admitted per ranking.")
    weights: FactorWeights = FactorWeights()
    trend_full_strength: float = Field(
        3.0, gt=0, le=100, description="EMA gap in ATRs at which the trend factor reaches 1."
    )
    # NOTE: the best ATR ratio depends on the timeframe. It is roughly 0.002 on 5m and 0.006 on
    # 1h candles of large crypto markets (an estimate), so set it for the timeframe traded.
    target_atr_ratio: float = Field(
        0.005, gt=0, lt=1, description="ATR over close at which volatility quality is 1."
    )
    liquidity_floor: float = Field(
        1e6, gt=0, description="Quote volume (Universe OS window) at which liquidity is 0."
    )
    liquidity_full: float = Field(
        1e10, gt=0, description="Quote volume (Universe OS window) at which liquidity is 1."
    )
    recent_trades: int = Field(10, ge=1, le=10_000, description="Closed trades per symbol kept.")
    pnl_scale: float = Field(
        0.02,
        gt=0,
        le=10,
        description="Mean pnl ratio at which recent_results is 0.5 + 0.5 x tanh(1) = 0.88.",
    )

    @model_validator(mode="after")
    def _check_liquidity_bounds(self) -> RankerSettings:
        if self.liquidity_floor >= self.liquidity_full:
            raise ValueError(
                f"ranker.liquidity_floor={self.liquidity_floor:g} must be below "
                f"ranker.liquidity_full={self.liquidity_full:g}"
            )
        return self


@dataclass(frozen=True, slots=True)
class RankInput:
    """One candidate market. ``side`` is +1 long, -1 short, 0 unknown.

    ``round_trip_cost`` is the cost of entering and leaving as a fraction of the notional (both
    fees plus the expected slippage). The other fields mean what they mean in ``MarketStats``.
    """

    symbol: str
    trend_strength: float
    trend_direction: int
    atr_ratio: float
    quote_volume: float | None
    efficiency: float
    round_trip_cost: float
    side: int = 0
    style: Style = "trend"

    @classmethod
    def from_snapshot(
        cls, snapshot: MarketSnapshot, round_trip_cost: float, side: int = 0, style: Style = "trend"
    ) -> RankInput:
        """Build a candidate from a market snapshot."""
        return cls(
            symbol=snapshot.symbol,
            trend_strength=snapshot.trend_strength,
            trend_direction=snapshot.trend_direction,
            atr_ratio=snapshot.atr_ratio,
            quote_volume=snapshot.quote_volume,
            efficiency=snapshot.efficiency,
            round_trip_cost=round_trip_cost,
            side=side,
            style=style,
        )


@dataclass(frozen=True, slots=True)
class Ranking:
    """One ranking: each candidate's score and factors, every candidate best first, the top.

    ``binding`` is False unless the ranker is enforced, and then the pipeline must not drop
    candidates outside ``top``.
    """

    time_ns: int
    scores: dict[str, float]
    factors: dict[str, dict[str, float]]
    order: list[str]
    top: list[str]
    binding: bool


def _unit(value: float) -> float:
    """Clip to 0..1, with NaN as 0."""
    if value != value:
        return 0.0
    return min(max(value, 0.0), 1.0)


def _finite(value: float | None) -> float:
    if value is None:
        return math.nan
    number = float(value)
    return number if math.isfinite(number) else math.nan


class OpportunityRanker(Subsystem):
    """Scores candidates and, when enforced, admits only the top ``top_n`` of the last ranking.

    Call ``rank`` every ``cadence`` candles. With a cadence above 1, rank every tradable market
    and not only the candidates of that candle, because ``allows`` vetoes a symbol missing from
    the last ranking. Feed closed trades to ``on_trade_closed``.

    Counters: ``seen`` counts candidates ranked. ``changed`` counts, while enforced, the
    candidates each ranking leaves out of the top, whose admission differs from passing every
    candidate through. Reordering inside the top changes nothing downstream and is not counted.
    ``vetoed`` counts entries ``allows`` blocked while enforced.
    """

    name = "OpportunityRanker"
    short_name = "OpportunityRanker"

    def __init__(self, settings: RankerSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self.ranking: Ranking | None = None
        self._results: dict[str, deque[float]] = {}

    def due(self, row: int) -> bool:
        """Return whether candle ``row`` is a ranking point (every ``cadence`` rows from 0)."""
        return row % self.cadence == 0

    def on_trade_closed(self, symbol: str, pnl_ratio: float) -> None:
        """Remember a closed trade's pnl ratio for the ``recent_results`` factor."""
        if not math.isfinite(pnl_ratio):
            logger.warning("Ignored a non-finite pnl ratio %r of a %s trade.", pnl_ratio, symbol)
            return
        history = self._results.get(symbol)
        if history is None:
            history = self._results[symbol] = deque(maxlen=self.settings.recent_trades)
        history.append(pnl_ratio)

    def factors(self, candidate: RankInput) -> dict[str, float]:
        """Compute the six factors of one candidate, each in 0..1 (formulas in the module doc)."""
        settings = self.settings
        strength = _unit(_finite(candidate.trend_strength) / settings.trend_full_strength)
        if candidate.style == "mean_reversion":
            trend = 1.0 - strength
        elif candidate.side * candidate.trend_direction < 0:
            trend = 0.0
        else:
            trend = strength
        efficiency = _unit(_finite(candidate.efficiency))
        regime_fit = efficiency if candidate.style == "trend" else 1.0 - efficiency
        atr_ratio = _finite(candidate.atr_ratio)
        return {
            "trend": trend,
            "volatility_quality": self._volatility_quality(atr_ratio),
            "liquidity": self._liquidity(_finite(candidate.quote_volume)),
            "regime_fit": regime_fit,
            "recent_results": self._recent_results(candidate.symbol),
            "cost": _cost(_finite(candidate.round_trip_cost), atr_ratio),
        }

    def rank(self, time_ns: int, inputs: Iterable[RankInput]) -> Ranking:
        """Score the candidates, order them best first and keep the ranking.

        A symbol that appears more than once is scored once, at its first input.
        """
        self.heartbeat()
        weights = self.settings.weights.as_dict()
        scores: dict[str, float] = {}
        factors: dict[str, dict[str, float]] = {}
        for candidate in inputs:
            if candidate.symbol in scores:
                logger.warning("OpportunityRanker ignored a second input of %s.", candidate.symbol)
                continue
            values = self.factors(candidate)
            factors[candidate.symbol] = values
            score = math.fsum(weights[name] * values[name] for name in FACTORS)
            scores[candidate.symbol] = _unit(score)

        self.seen += len(scores)
        order = sorted(scores, key=lambda symbol: (-scores[symbol], symbol))
        top = order[: self.settings.top_n]
        if self.binding:
            self.changed += len(order) - len(top)
        self.ranking = Ranking(time_ns, scores, factors, order, top, self.binding)
        return self.ranking

    def allows(self, symbol: str, time_ns: int) -> bool:
        """Return whether an entry on ``symbol`` may go ahead under the last ranking.

        Records an approval for a symbol in the top. When enforced, any other symbol is vetoed,
        counted and recorded. In observe or advisory mode the would-be veto is recorded as an
        approval that names it, and the entry goes ahead.
        """
        if not self.active:
            return True
        ranking = self.ranking
        numbers: dict[str, float] = {}
        if ranking is None or symbol not in ranking.scores:
            reason = "the market was not in the last ranking"
        else:
            position = ranking.order.index(symbol) + 1
            numbers = {"score": ranking.scores[symbol], "rank": float(position)}
            numbers.update(ranking.factors[symbol])
            reason = (
                f"rank {position} of {len(ranking.order)}, score {ranking.scores[symbol]:.4f} "
                f"(the top {self.settings.top_n} pass)"
            )
            if symbol in ranking.top:
                self.record(time_ns, symbol, Action.APPROVE, reason, numbers)
                return True

        if self.binding:
            self.vetoed += 1
            self.record(time_ns, symbol, Action.VETO, f"entry vetoed: {reason}", numbers)
            return False
        self.record(time_ns, symbol, Action.APPROVE, f"not enforced, would veto: {reason}", numbers)
        return True

    def _volatility_quality(self, atr_ratio: float) -> float:
        target = self.settings.target_atr_ratio
        if not atr_ratio > 0:
            return 0.0
        if atr_ratio <= target:
            return atr_ratio / target
        return _unit((3.0 * target - atr_ratio) / (2.0 * target))

    def _liquidity(self, quote_volume: float) -> float:
        floor, full = self.settings.liquidity_floor, self.settings.liquidity_full
        # At or below the floor the factor is 0; this also keeps a tiny subnormal volume, whose
        # ratio to the floor rounds to 0, away from log(0).
        if not quote_volume > floor:
            return 0.0
        return _unit(math.log(quote_volume / floor) / math.log(full / floor))

    def _recent_results(self, symbol: str) -> float:
        history = self._results.get(symbol)
        if not history:
            return 0.5
        mean = math.fsum(history) / len(history)
        return 0.5 + 0.5 * math.tanh(mean / self.settings.pnl_scale)


def _cost(round_trip_cost: float, atr_ratio: float) -> float:
    """1 - min(cost / ATR ratio, 1). An unknown cost or ATR ratio gives 0, a negative cost 1."""
    if not atr_ratio > 0 or round_trip_cost != round_trip_cost:
        return 0.0
    return 1.0 - min(max(round_trip_cost, 0.0) / atr_ratio, 1.0)
