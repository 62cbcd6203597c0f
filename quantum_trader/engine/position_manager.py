"""Open-position management: PIL classifies each position, PAL amplifies the winners.

Every ``cadence`` candles the kernel hands the open positions to PIL, which recommends hold,
scale in, tighten the stop, reduce or exit; PAL then acts on winners only (scale in, partial
take-profit, trailing stop). Binding recommendations become orders that fill at the next open,
or stop amendments that apply from the next candle. Views are built from data up to the current
candle only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from quantum_trader.core.types import ExitReason, Position, PositionSide
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.subsystems.position_intelligence import (
    PositionAssessment,
    PositionIntelligence,
    PositionView,
    Recommendation,
)
from quantum_trader.subsystems.profit_amplification import (
    AmplifyAction,
    AmplifyLimits,
    MoveStop,
    ProfitAmplifier,
    ScaleIn,
    TakePartial,
)


@dataclass
class EntryRecord:
    """What the manager remembers of a position from its entry: risk per unit and quantity."""

    initial_risk_per_unit: float
    initial_quantity: float | None = None


class OrderSink(Protocol):
    """The pipeline methods the manager uses to act; the pipeline implements them."""

    def submit_close(self, symbol: str, time_ns: int, reason: ExitReason) -> object: ...

    def submit_reduce(
        self, symbol: str, quantity: float, time_ns: int, reason: ExitReason
    ) -> object: ...

    def submit_add(self, symbol: str, quantity: float, time_ns: int) -> object: ...

    def allows_additions(self) -> bool: ...


class PositionManager:
    """Runs PIL and PAL over the open positions at their cadence."""

    def __init__(
        self,
        *,
        exchange: SimulatedExchange,
        feed: CandleFeed,
        markets: dict[str, MarketRules],
        atr: dict[str, npt.NDArray[np.float64]],
        trend: dict[str, npt.NDArray[np.int8]],
        pil: PositionIntelligence,
        pal: ProfitAmplifier,
        max_position_share: float,
    ) -> None:
        self.exchange = exchange
        self.feed = feed
        self.markets = markets
        self.atr = atr
        self.trend = trend
        self.pil = pil
        self.pal = pal
        self.max_position_share = max_position_share
        self.entries: dict[str, EntryRecord] = {}
        self.cadence = pil.cadence

    def note_entry(self, symbol: str, stop_distance: float) -> None:
        """Remember the initial risk of a position about to open (one R per unit)."""
        self.entries[symbol] = EntryRecord(stop_distance)

    def manage(self, step: int, time_ns: int, equity: float, sink: OrderSink) -> set[str]:
        """Review every open position; return the symbols whose orders or stops changed."""
        views = self._views(step)
        if not views:
            return set()
        touched: set[str] = set()
        for assessment in self.pil.review(time_ns, list(views.values())):
            view = views[assessment.symbol]
            if self._apply_review(assessment, view, time_ns, sink):
                touched.add(view.symbol)
                continue
            if not self.pal.active:
                continue
            limits = self._limits(view, equity, sink)
            atr = float(self.atr[view.symbol][self._row(view.symbol, step)])
            actions = self.pal.amplify(time_ns, assessment, view, atr, limits)
            if self._apply_actions(actions, time_ns, sink):
                touched.add(view.symbol)
        return touched

    def forget_closed(self) -> None:
        for symbol in [s for s in self.entries if s not in self.exchange.positions]:
            del self.entries[symbol]
            self.pal.forget(symbol)

    def _row(self, symbol: str, step: int) -> int:
        steps = self.feed.series[symbol].step_of_row
        return int(np.searchsorted(steps, step, side="right")) - 1

    def _views(self, step: int) -> dict[str, PositionView]:
        views: dict[str, PositionView] = {}
        for symbol, position in self.exchange.positions.items():
            record = self.entries.get(symbol)
            row = self._row(symbol, step)
            if record is None or row < 0:
                continue
            if record.initial_quantity is None:
                record.initial_quantity = position.quantity
            views[symbol] = self._view(position, record, row)
        return views

    def _view(self, position: Position, record: EntryRecord, row: int) -> PositionView:
        series = self.feed.series[position.symbol]
        entry_row = int(np.searchsorted(series.step_of_row, self._entry_step(position)))
        entry_row = min(entry_row, row)
        if position.side is PositionSide.LONG:
            best = float(series.high_array[entry_row : row + 1].max())
        else:
            best = float(series.low_array[entry_row : row + 1].min())
        risk = record.initial_risk_per_unit
        mfe_r = int(position.side) * (best - position.entry_price) / risk if risk > 0 else 0.0
        return PositionView(
            symbol=position.symbol,
            side=position.side,
            entry_price=position.entry_price,
            quantity=position.quantity,
            stop_price=position.stop_price,
            initial_risk_per_unit=risk,
            mark=series.close[row],
            age_candles=row - entry_row,
            trend=float(self.trend[position.symbol][row]),
            mfe_r=mfe_r,
            initial_quantity=record.initial_quantity,
        )

    def _entry_step(self, position: Position) -> int:
        return int(np.searchsorted(self.feed.times_array, position.entry_ns))

    def _limits(self, view: PositionView, equity: float, sink: OrderSink) -> AmplifyLimits:
        rules = self.markets[view.symbol]
        room = self.max_position_share * equity - view.quantity * view.mark
        if not sink.allows_additions() or not math.isfinite(room):
            room = 0.0
        return AmplifyLimits(max(room, 0.0), rules.min_notional, rules.step_size)

    def _apply_review(
        self, assessment: PositionAssessment, view: PositionView, time_ns: int, sink: OrderSink
    ) -> bool:
        if not assessment.binding:
            return False
        recommendation = assessment.recommendation
        if recommendation is Recommendation.EXIT:
            sink.submit_close(view.symbol, time_ns, ExitReason.POSITION_EXIT)
            return True
        if recommendation is Recommendation.REDUCE and assessment.changed:
            quantity = view.quantity * assessment.reduce_share
            sink.submit_reduce(view.symbol, quantity, time_ns, ExitReason.POSITION_REDUCE)
            return True
        if recommendation is Recommendation.TIGHTEN_STOP and assessment.new_stop is not None:
            return self.exchange.amend_protection(view.symbol, stop_price=assessment.new_stop)
        return False

    def _apply_actions(self, actions: list[AmplifyAction], time_ns: int, sink: OrderSink) -> bool:
        acted = False
        for action in actions:
            if isinstance(action, ScaleIn) and action.binding:
                sink.submit_add(action.symbol, action.quantity, time_ns)
                acted = True
            elif isinstance(action, TakePartial) and action.binding:
                sink.submit_reduce(
                    action.symbol, action.quantity, time_ns, ExitReason.PARTIAL_TAKE_PROFIT
                )
                acted = True
            elif isinstance(action, MoveStop) and action.binding:
                moved = self.exchange.amend_protection(action.symbol, stop_price=action.new_stop)
                acted = acted or moved
        return acted
