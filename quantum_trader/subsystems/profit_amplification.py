"""Profit Amplification (PAL): adds to, banks and trails winning positions, and never opens one.

PAL acts only on positions that PIL classed ``winner`` or ``potential_winner``. Its rules, with
the default settings, for one call of ``amplify``:

1. Scale in: when PIL recommends ``scale_in`` and fewer than ``max_scale_ins`` (1) adds were
   made, buy ``scale_in_share`` (0.5) x the initial quantity. An add whose notional
   (quantity x mark) exceeds ``max_add_notional`` is cut to fit. The add is dropped when the cut
   quantity, floored to the quantity step, is 0 or below the minimum notional.
2. Partial take profit: otherwise, when R >= ``partial_take_profit_r`` (2) and fewer than
   ``max_partials`` (1) partials were taken, sell ``partial_share`` (0.5) x the current
   quantity. Adding and banking in the same call would work against each other, so a scale-in
   defers the partial to a later call.
3. Stop: the trailing stop switches on once R or the maximum favourable excursion reaches
   ``trailing_start_r`` (1.5). It trails at ``trail_atr`` (2) ATRs from the mark:
   ``mark - 2 x ATR`` for a long and ``mark + 2 x ATR`` for a short. When PIL recommends
   ``tighten_stop``, its stop is a candidate too. The tightest candidate wins, and a stop only
   moves towards the mark: a long stop never moves down and a short stop never moves up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.exchange.markets import floor_quantity
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.position_intelligence import (
    PositionAssessment,
    PositionClass,
    PositionView,
    Recommendation,
    invalid_view_reason,
)

AMPLIFIED_CLASSES = (PositionClass.WINNER, PositionClass.POTENTIAL_WINNER)


class AmplifierSettings(BaseModel):
    """PAL settings. Thresholds are R multiples: profit over the initial risk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(12, ge=1, le=100_000, description="Candles between two passes.")
    scale_in_share: float = Field(
        0.5, gt=0, le=1, description="Share of the initial quantity one scale-in buys."
    )
    max_scale_ins: int = Field(1, ge=0, le=10, description="Scale-ins per position.")
    partial_take_profit_r: float = Field(
        2.0, gt=0, le=100, description="R at or above which a partial profit is taken."
    )
    partial_share: float = Field(
        0.5, gt=0, lt=1, description="Share of the current quantity a partial sells."
    )
    max_partials: int = Field(1, ge=0, le=10, description="Partial take-profits per position.")
    trailing_start_r: float = Field(
        1.5, gt=0, le=100, description="R (or max favourable excursion) that starts trailing."
    )
    trail_atr: float = Field(2.0, gt=0, le=100, description="Trailing distance in ATRs.")


@dataclass(frozen=True, slots=True)
class AmplifyLimits:
    """Bounds on what PAL may add, from the portfolio balancer and the sizing.

    ``max_add_notional`` is the largest notional one scale-in may buy (0 allows none).
    ``min_add_notional`` is the exchange's minimum notional. ``quantity_step`` is the exchange's
    quantity step, and 0 means no rounding.
    """

    max_add_notional: float
    min_add_notional: float = 0.0
    quantity_step: float = 0.0


@dataclass(frozen=True, slots=True)
class ScaleIn:
    """Buy ``quantity`` more on the side of the open position."""

    symbol: str
    quantity: float
    binding: bool
    reason: str


@dataclass(frozen=True, slots=True)
class TakePartial:
    """Close ``quantity`` of the open position."""

    symbol: str
    quantity: float
    binding: bool
    reason: str


@dataclass(frozen=True, slots=True)
class MoveStop:
    """Move the position's stop to ``new_stop``, always towards the mark."""

    symbol: str
    new_stop: float
    binding: bool
    reason: str


AmplifyAction = ScaleIn | TakePartial | MoveStop


@dataclass(slots=True)
class _Progress:
    """Counts of the scale-ins and partials PAL made on one position."""

    side: int
    age_candles: int
    scale_ins: int = 0
    partials: int = 0


class ProfitAmplifier(Subsystem):
    """Scales in, takes partial profit and trails the stop of winners (rules in the module doc).

    Call ``amplify`` every ``cadence`` candles for each open position PIL assessed, and
    ``forget`` when a position closes. Every action and every dropped scale-in is recorded. The
    scale-in and partial counts per position advance only while enforced, because otherwise no
    action is carried out.

    Counters: ``seen`` counts positions examined. ``changed`` counts binding actions. ``vetoed``
    stays 0, since PAL blocks no candidate.
    """

    name = "ProfitAmplifier"
    short_name = "PAL"

    def __init__(self, settings: AmplifierSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self._progress: dict[str, _Progress] = {}

    def due(self, row: int) -> bool:
        """Return whether candle ``row`` is an amplification point (every ``cadence`` rows)."""
        return row % self.cadence == 0

    def forget(self, symbol: str) -> None:
        """Drop what PAL remembers of the closed position on ``symbol``."""
        self._progress.pop(symbol, None)

    def amplify(
        self,
        time_ns: int,
        assessment: PositionAssessment,
        view: PositionView | None,
        atr: float,
        limits: AmplifyLimits,
    ) -> list[AmplifyAction]:
        """Decide and record the actions for one position: a scale-in or a partial, then a stop.

        ``view`` None, or a quantity of 0, means no open position, and then there is no action.
        Positions outside the winner and potential winner classes get no action either.
        """
        if not self.active:
            return []
        self.heartbeat()
        self.seen += 1
        symbol = assessment.symbol
        problem = _skip_reason(assessment, view)
        if problem is not None:
            if view is None or view.quantity == 0:
                self.forget(symbol)
            self.record(time_ns, symbol, Action.REJECT, problem)
            return []
        if view is None or assessment.classification not in AMPLIFIED_CLASSES:
            return []

        progress = self._progress_of(view)
        actions: list[AmplifyAction] = []
        size_action: ScaleIn | TakePartial | None = self._scale_in(
            time_ns, assessment, view, limits, progress
        )
        if size_action is None:
            size_action = self._partial(time_ns, assessment, view, limits, progress)
        if size_action is not None:
            actions.append(size_action)
        stop_action = self._move_stop(time_ns, assessment, view, atr)
        if stop_action is not None:
            actions.append(stop_action)
        return actions

    def _progress_of(self, view: PositionView) -> _Progress:
        progress = self._progress.get(view.symbol)
        side = int(view.side)
        # A different side or a younger age means the old position closed and a new one opened.
        if progress is None or progress.side != side or view.age_candles < progress.age_candles:
            progress = _Progress(side, view.age_candles)
            self._progress[view.symbol] = progress
        progress.age_candles = view.age_candles
        return progress

    def _scale_in(
        self,
        time_ns: int,
        assessment: PositionAssessment,
        view: PositionView,
        limits: AmplifyLimits,
        progress: _Progress,
    ) -> ScaleIn | None:
        settings = self.settings
        if assessment.recommendation is not Recommendation.SCALE_IN:
            return None
        if progress.scale_ins >= settings.max_scale_ins:
            return None
        initial = view.initial_quantity if view.initial_quantity is not None else view.quantity
        requested = settings.scale_in_share * initial
        quantity, note = _fit_add(requested, view.mark, limits)
        numbers = {
            "r_multiple": assessment.r_multiple,
            "initial_quantity": initial,
            "requested_quantity": requested,
            "quantity": quantity,
            "mark": view.mark,
            "notional": quantity * view.mark,
            "max_add_notional": limits.max_add_notional,
            "min_add_notional": limits.min_add_notional,
        }
        base = f"scale in {settings.scale_in_share:g} x initial quantity {initial:g}"
        if quantity <= 0:
            self.record(time_ns, view.symbol, Action.REJECT, f"{base} dropped: {note}", numbers)
            return None
        if self.binding:
            progress.scale_ins += 1
        reason = f"{base} at R {assessment.r_multiple:.4g}: buy {quantity:g}{note}"
        self._record_action(time_ns, view.symbol, reason, numbers)
        return ScaleIn(view.symbol, quantity, self.binding, reason)

    def _partial(
        self,
        time_ns: int,
        assessment: PositionAssessment,
        view: PositionView,
        limits: AmplifyLimits,
        progress: _Progress,
    ) -> TakePartial | None:
        settings = self.settings
        r = assessment.r_multiple
        if r < settings.partial_take_profit_r or progress.partials >= settings.max_partials:
            return None
        quantity = settings.partial_share * view.quantity
        if limits.quantity_step > 0:
            quantity = floor_quantity(quantity, limits.quantity_step)
        numbers = {"r_multiple": r, "position_quantity": view.quantity, "quantity": quantity}
        base = f"take {settings.partial_share:g} of quantity {view.quantity:g} at R {r:.4g}"
        if quantity <= 0:
            reason = f"{base} dropped: it rounds to 0 at step {limits.quantity_step:g}"
            self.record(time_ns, view.symbol, Action.REJECT, reason, numbers)
            return None
        if self.binding:
            progress.partials += 1
        reason = f"{base} >= {settings.partial_take_profit_r:g}: sell {quantity:g}"
        self._record_action(time_ns, view.symbol, reason, numbers)
        return TakePartial(view.symbol, quantity, self.binding, reason)

    def _move_stop(
        self, time_ns: int, assessment: PositionAssessment, view: PositionView, atr: float
    ) -> MoveStop | None:
        side = int(view.side)
        candidates: dict[str, float] = {}
        trailing_stop, skip_note = self._trailing_stop(view, assessment.r_multiple, atr)
        if skip_note is not None:
            self.record(time_ns, view.symbol, Action.REJECT, skip_note, {"atr": atr})
        if trailing_stop is not None:
            candidates["trailing_stop"] = trailing_stop
        lock_stop = assessment.new_stop
        if assessment.recommendation is Recommendation.TIGHTEN_STOP and lock_stop is not None:
            candidates["lock_stop"] = lock_stop
        if not candidates:
            return None

        source = max(candidates, key=lambda name: side * candidates[name])
        target = candidates[source]
        current = view.stop_price
        # A stop at or beyond the mark would close the position at once, which is an exit's job.
        if side * (view.mark - target) <= 0:
            return None
        if current is not None and side * (target - current) <= 0:
            return None
        numbers = {"new_stop": target, "mark": view.mark, "atr": atr, **candidates}
        if current is not None:
            numbers["stop_price"] = current
        before = "no stop" if current is None else f"{current:g}"
        label = (
            f"trailing {self.settings.trail_atr:g} ATR from the mark"
            if source == "trailing_stop"
            else "PIL's profit-locking stop"
        )
        reason = f"move the stop from {before} to {target:g}, the {label}"
        self._record_action(time_ns, view.symbol, reason, numbers)
        return MoveStop(view.symbol, target, self.binding, reason)

    def _trailing_stop(
        self, view: PositionView, r: float, atr: float
    ) -> tuple[float | None, str | None]:
        """Return the trailing stop (None while trailing is off) and a reason when skipped."""
        settings = self.settings
        excursion = max(r, view.mfe_r) if math.isfinite(view.mfe_r) else r
        if excursion < settings.trailing_start_r:
            return None, None
        if not (math.isfinite(atr) and atr > 0):
            return (
                None,
                f"trailing stop skipped because the ATR {atr!r} is invalid (expected above 0)",
            )
        return view.mark - int(view.side) * settings.trail_atr * atr, None

    def _record_action(
        self, time_ns: int, symbol: str, reason: str, numbers: dict[str, float]
    ) -> None:
        if self.binding:
            self.changed += 1
        self.record(time_ns, symbol, Action.RESIZE, reason, numbers)


def _skip_reason(assessment: PositionAssessment, view: PositionView | None) -> str | None:
    """Describe why PAL cannot act on this position, or return None."""
    if view is None or view.quantity == 0:
        return f"no action: there is no open position on {assessment.symbol}, and PAL opens none"
    if view.symbol != assessment.symbol:
        return (
            f"no action: the assessment of {assessment.symbol} was paired with the position "
            f"on {view.symbol}. Pass the matching pair."
        )
    problem = invalid_view_reason(view)
    if problem is not None:
        return f"no action: {problem}"
    return None


def _fit_add(requested: float, mark: float, limits: AmplifyLimits) -> tuple[float, str]:
    """Cut a scale-in to the limits. Returns the quantity (0 when dropped) and a note."""
    cap = limits.max_add_notional
    if not (math.isfinite(cap) and cap > 0):
        return 0.0, f"max_add_notional {cap!r} allows no add"
    quantity = requested
    note = ""
    if quantity * mark > cap:
        quantity = cap / mark
        note = f", cut from {requested:g} to fit max_add_notional {cap:g}"
    if limits.quantity_step > 0:
        quantity = floor_quantity(quantity, limits.quantity_step)
    if quantity <= 0:
        return 0.0, f"the quantity rounds to 0 at step {limits.quantity_step:g}"
    if quantity * mark < limits.min_add_notional:
        return 0.0, (
            f"notional {quantity * mark:g} is below the min notional {limits.min_add_notional:g}"
        )
    return quantity, note
