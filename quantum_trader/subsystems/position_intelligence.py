"""Position Intelligence (PIL): classifies each open position and recommends what to do with it.

The R multiple of a position is ``side x (mark - entry) / initial_risk_per_unit``, where the side
is +1 long and -1 short and the initial risk per unit is the distance from the entry to the
initial stop. "With the trend" means ``side x trend > 0`` and "against the trend" means
``side x trend < 0``. A NaN trend counts as flat.

Classes, checked from the top, with the default thresholds:

=================  =====================================================================
class              rule
=================  =====================================================================
winner             R >= ``winner_r`` (1.5)
loser              R <= ``loser_r`` (-0.75), or R < 0 against the trend
struggling         R <= ``struggling_r`` (-0.25), or a breakeven position older than
                   ``max_age_candles``
potential winner   ``potential_winner_r`` (0.5) <= R < ``winner_r``, with the trend
breakeven          any other R above ``struggling_r``: -0.25 < R < 0.5, or a profit of
                   0.5 <= R < 1.5 that the trend does not back
=================  =====================================================================

Recommendations:

- winner: ``scale_in`` when with the trend and R >= ``scale_in_r`` (2). Otherwise
  ``tighten_stop`` to ``entry + side x lock_r x initial risk`` (1R of profit locked), or ``hold``
  when the stop already sits at that level or beyond it.
- potential winner and breakeven: ``hold``.
- struggling: ``reduce`` by ``reduce_share`` (0.5) of the quantity.
- loser: ``exit``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.core.types import PositionSide
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.subsystems.base import Mode, Subsystem

logger = logging.getLogger(__name__)


class PositionClass(StrEnum):
    WINNER = "winner"
    POTENTIAL_WINNER = "potential_winner"
    BREAKEVEN = "breakeven"
    STRUGGLING = "struggling"
    LOSER = "loser"


class Recommendation(StrEnum):
    HOLD = "hold"
    SCALE_IN = "scale_in"
    TIGHTEN_STOP = "tighten_stop"
    REDUCE = "reduce"
    EXIT = "exit"


class PositionSettings(BaseModel):
    """PIL settings. Thresholds are R multiples: profit or loss over the initial risk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(12, ge=1, le=100_000, description="Candles between two reviews.")
    winner_r: float = Field(1.5, gt=0, le=100, description="R at or above which a winner.")
    potential_winner_r: float = Field(
        0.5, gt=0, le=100, description="R at or above which a trend-backed potential winner."
    )
    struggling_r: float = Field(
        -0.25, ge=-100, lt=0, description="R at or below which a position is struggling."
    )
    loser_r: float = Field(-0.75, ge=-100, lt=0, description="R at or below which a loser.")
    # NOTE: 288 candles is one day of 5m candles, so set it for the timeframe traded.
    max_age_candles: int = Field(
        288, ge=1, le=10_000_000, description="Age beyond which a breakeven position struggles."
    )
    scale_in_r: float = Field(
        2.0, gt=0, le=100, description="R at or above which a trend-backed winner scales in."
    )
    lock_r: float = Field(
        1.0, ge=0, le=100, description="Profit in R a winner's tightened stop locks in."
    )
    reduce_share: float = Field(
        0.5, gt=0, lt=1, description="Share of the quantity a struggling position sells."
    )

    @model_validator(mode="after")
    def _check_order(self) -> PositionSettings:
        if not self.loser_r < self.struggling_r:
            raise ValueError(
                f"position.loser_r={self.loser_r:g} must be below "
                f"position.struggling_r={self.struggling_r:g}"
            )
        if not self.potential_winner_r < self.winner_r:
            raise ValueError(
                f"position.potential_winner_r={self.potential_winner_r:g} must be below "
                f"position.winner_r={self.winner_r:g}"
            )
        if not self.lock_r < self.winner_r:
            raise ValueError(
                f"position.lock_r={self.lock_r:g} must be below position.winner_r="
                f"{self.winner_r:g}, or a winner's tightened stop would lie beyond its mark"
            )
        if self.scale_in_r < self.winner_r:
            raise ValueError(
                f"position.scale_in_r={self.scale_in_r:g} must be at least "
                f"position.winner_r={self.winner_r:g}, because only winners scale in"
            )
        return self


@dataclass(frozen=True, slots=True)
class PositionView:
    """One open position as PIL and PAL see it at the close of a candle.

    ``initial_risk_per_unit`` is the distance from the entry to the initial stop (> 0).
    ``mark`` is the candle's close. ``trend`` is the trend direction or a signed strength, such
    as +1 when the fast EMA is above the slow one and -1 below. ``mfe_r`` is the maximum
    favourable excursion so far in R. ``initial_quantity`` is the quantity at the entry. None
    means the current quantity.
    """

    symbol: str
    side: PositionSide
    entry_price: float
    quantity: float
    stop_price: float | None
    initial_risk_per_unit: float
    mark: float
    age_candles: int
    trend: float
    mfe_r: float
    initial_quantity: float | None = None

    @property
    def r_multiple(self) -> float:
        return int(self.side) * (self.mark - self.entry_price) / self.initial_risk_per_unit


@dataclass(frozen=True, slots=True)
class PositionAssessment:
    """PIL's verdict on one position.

    ``new_stop`` is set for ``tighten_stop`` only. ``reduce_share`` is the share of the quantity
    to close: ``reduce_share`` for ``reduce``, 1 for ``exit``, else 0. ``changed`` is True when
    the class or recommendation differs from the previous review of the same position.
    ``binding`` is False unless PIL is enforced.
    """

    symbol: str
    classification: PositionClass
    r_multiple: float
    recommendation: Recommendation
    new_stop: float | None
    reduce_share: float
    binding: bool
    reason: str
    changed: bool = True


@dataclass(frozen=True, slots=True)
class _Seen:
    side: PositionSide
    age_candles: int
    classification: PositionClass
    recommendation: Recommendation


def invalid_view_reason(view: PositionView) -> str | None:
    """Describe why ``view`` cannot be assessed, or return None when its numbers are usable."""
    checks = (
        ("entry price", view.entry_price),
        ("mark", view.mark),
        ("quantity", view.quantity),
        ("initial risk per unit", view.initial_risk_per_unit),
    )
    for label, value in checks:
        if not (math.isfinite(value) and value > 0):
            return f"invalid {label} {value!r} (expected a finite number above 0)"
    if view.stop_price is not None and not (math.isfinite(view.stop_price) and view.stop_price > 0):
        return f"invalid stop price {view.stop_price!r} (expected None or a number above 0)"
    initial = view.initial_quantity
    if initial is not None and not (math.isfinite(initial) and initial > 0):
        return f"invalid initial quantity {initial!r} (expected None or a number above 0)"
    if view.age_candles < 0:
        return f"invalid age {view.age_candles} candles (expected 0 or more)"
    return None


class PositionIntelligence(Subsystem):
    """Classifies open positions and recommends an action for each (rules in the module doc).

    Call ``review`` every ``cadence`` candles with every open position. A decision is recorded
    when a position's class or recommendation changes, and when a position cannot be assessed.

    Counters: ``seen`` counts positions assessed. ``changed`` counts, while enforced, the
    assessments whose recommendation is new and is not ``hold``, because only those change what
    happens to a position. ``vetoed`` stays 0, since PIL blocks no candidate.
    """

    name = "PositionIntelligence"
    short_name = "PIL"

    def __init__(self, settings: PositionSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self._seen: dict[str, _Seen] = {}

    def due(self, row: int) -> bool:
        """Return whether candle ``row`` is a review point (every ``cadence`` rows from 0)."""
        return row % self.cadence == 0

    def review(self, time_ns: int, positions: list[PositionView]) -> list[PositionAssessment]:
        """Assess every open position. Returns one assessment per valid position, in input order.

        A position with invalid numbers is skipped with a recorded rejection. A symbol listed
        twice is assessed at its first entry. Symbols missing from ``positions`` are forgotten,
        because their positions have closed.
        """
        if not self.active:
            return []
        self.heartbeat()
        assessments: list[PositionAssessment] = []
        reviewed: set[str] = set()
        for view in positions:
            if view.symbol in reviewed:
                logger.warning("PIL ignored a second view of the %s position.", view.symbol)
                continue
            reviewed.add(view.symbol)
            problem = invalid_view_reason(view)
            if problem is not None:
                self._seen.pop(view.symbol, None)
                self.record(
                    time_ns, view.symbol, Action.REJECT, f"position not assessed: {problem}"
                )
                continue
            assessments.append(self._assess(time_ns, view))

        for symbol in set(self._seen) - reviewed:
            del self._seen[symbol]
        return assessments

    def classify(self, view: PositionView) -> tuple[PositionClass, str]:
        """Return the class of a valid position and the rule that decided it."""
        settings = self.settings
        r = view.r_multiple
        direction = _trend_direction(view)
        if r >= settings.winner_r:
            return PositionClass.WINNER, f"R {r:.4g} >= {settings.winner_r:g}"
        if r <= settings.loser_r:
            return PositionClass.LOSER, f"R {r:.4g} <= {settings.loser_r:g}"
        if r < 0 and direction < 0:
            return PositionClass.LOSER, f"R {r:.4g} < 0 against the trend"
        if r <= settings.struggling_r:
            return PositionClass.STRUGGLING, f"R {r:.4g} <= {settings.struggling_r:g}"
        if r >= settings.potential_winner_r and direction > 0:
            return (
                PositionClass.POTENTIAL_WINNER,
                f"R {r:.4g} >= {settings.potential_winner_r:g} with the trend",
            )
        if view.age_candles > settings.max_age_candles:
            return (
                PositionClass.STRUGGLING,
                f"R {r:.4g} breakeven for {view.age_candles} candles, longer than "
                f"{settings.max_age_candles}",
            )
        return (
            PositionClass.BREAKEVEN,
            f"R {r:.4g} above {settings.struggling_r:g} and not a trend-backed win",
        )

    def _recommend(
        self, view: PositionView, classification: PositionClass
    ) -> tuple[Recommendation, float | None, float, str]:
        """Return the recommendation, the new stop, the share to close and the reason."""
        settings = self.settings
        if classification is PositionClass.LOSER:
            return Recommendation.EXIT, None, 1.0, "exit"
        if classification is PositionClass.STRUGGLING:
            return (
                Recommendation.REDUCE,
                None,
                settings.reduce_share,
                f"reduce by {settings.reduce_share:g} of the quantity",
            )
        if classification is not PositionClass.WINNER:
            return Recommendation.HOLD, None, 0.0, "hold"
        return self._recommend_for_winner(view)

    def _recommend_for_winner(
        self, view: PositionView
    ) -> tuple[Recommendation, float | None, float, str]:
        settings = self.settings
        r = view.r_multiple
        if r >= settings.scale_in_r and _trend_direction(view) > 0:
            return (
                Recommendation.SCALE_IN,
                None,
                0.0,
                f"scale in with the trend at R >= {settings.scale_in_r:g}",
            )
        side = int(view.side)
        lock_stop = view.entry_price + side * settings.lock_r * view.initial_risk_per_unit
        stop = view.stop_price
        if stop is not None and side * (stop - lock_stop) >= 0:
            return (
                Recommendation.HOLD,
                None,
                0.0,
                f"hold because the stop {stop:g} already locks profit",
            )
        return (
            Recommendation.TIGHTEN_STOP,
            lock_stop,
            0.0,
            f"tighten the stop to {lock_stop:g}, locking {settings.lock_r:g}R",
        )

    def _assess(self, time_ns: int, view: PositionView) -> PositionAssessment:
        classification, rule = self.classify(view)
        recommendation, new_stop, share, advice = self._recommend(view, classification)
        previous = self._seen.get(view.symbol)
        # A different side or a younger age means the old position closed and a new one opened.
        changed = (
            previous is None
            or previous.side is not view.side
            or view.age_candles < previous.age_candles
            or previous.classification is not classification
            or previous.recommendation is not recommendation
        )
        self._seen[view.symbol] = _Seen(view.side, view.age_candles, classification, recommendation)

        self.seen += 1
        reason = f"{classification.value}: {rule}, so {advice}"
        if changed:
            if self.binding and recommendation is not Recommendation.HOLD:
                self.changed += 1
            action = Action.APPROVE if recommendation is Recommendation.HOLD else Action.RESIZE
            self.record(time_ns, view.symbol, action, reason, _numbers(view, new_stop, share))
        return PositionAssessment(
            symbol=view.symbol,
            classification=classification,
            r_multiple=view.r_multiple,
            recommendation=recommendation,
            new_stop=new_stop,
            reduce_share=share,
            binding=self.binding,
            reason=reason,
            changed=changed,
        )


def _trend_direction(view: PositionView) -> int:
    """+1 with the position, -1 against it, 0 for a flat or NaN trend."""
    signed = int(view.side) * view.trend
    if signed > 0:
        return 1
    if signed < 0:
        return -1
    return 0


def _numbers(view: PositionView, new_stop: float | None, share: float) -> dict[str, float]:
    numbers = {
        "r_multiple": view.r_multiple,
        "entry_price": view.entry_price,
        "mark": view.mark,
        "quantity": view.quantity,
        "initial_risk_per_unit": view.initial_risk_per_unit,
        "age_candles": float(view.age_candles),
        "trend": view.trend,
        "mfe_r": view.mfe_r,
        "reduce_share": share,
    }
    if view.stop_price is not None:
        numbers["stop_price"] = view.stop_price
    if new_stop is not None:
        numbers["new_stop"] = new_stop
    return numbers
