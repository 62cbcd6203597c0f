"""The event-driven kernel shared by backtest, paper and live trading.

One ``step`` handles one instant of the timeline, in this order:

1. funding: positions open at a funding time pay or receive funding;
2. fills: each symbol with a position or an open order has its candle processed by the
   exchange (market orders fill at the open, then liquidation, stops and targets intrabar);
3. marking: equity is marked at the candles' close and the ESS checks it;
4. decisions: signals of the candles that just closed go through the pipeline, and the orders
   they create fill at the open of the next candle.

Only the clock, the feed and the exchange client differ between modes. Symbols with nothing to
do are skipped, which is what makes a backtest over hundreds of thousands of candles fast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from quantum_trader.core.types import ExitReason, Fill, Position, PositionSide
from quantum_trader.engine.bus import EventBus
from quantum_trader.engine.clock import SimulatedClock
from quantum_trader.engine.feed import CandleFeed, merge_activity
from quantum_trader.engine.pipeline import DecisionPipeline
from quantum_trader.engine.position_manager import PositionManager
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.subsystems.emergency_stop import EmergencyStop

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
FundingLookup = Callable[[str, int], float | None]
PROGRESS_EVERY = 4096
# A closing order at the end of the data fills on a flat pseudo-candle at the last close.
# Its unbounded volume makes the order's market-impact share zero.
_END_OF_DATA_VOLUME = 1e30


_QUIET_CHUNK = 512


def _exit_levels(position: Position) -> tuple[float, float]:
    """Return the prices at or below which, and at or above which, an exit may trigger.

    A long's stop and liquidation trigger on the way down and its target on the way up; a
    short's the other way round.
    """
    adverse = [p for p in (position.stop_price, position.liquidation_price) if p is not None]
    target = position.take_profit_price
    if position.side is PositionSide.LONG:
        below = max((p for p in adverse if p > 0), default=-math.inf)
        above = target if target is not None else math.inf
    else:
        below = target if target is not None else -math.inf
        above = min((p for p in adverse if p > 0), default=math.inf)
    return below, above


@dataclass
class FundingSchedule:
    """When funding is paid and at what rate; ``rate_at(symbol, time_ns)`` may return None."""

    interval_ns: int
    rate_at: FundingLookup


class TradingKernel:
    """Advances the clock over a candle feed and drives the exchange and the pipeline."""

    def __init__(
        self,
        *,
        clock: SimulatedClock,
        bus: EventBus,
        feed: CandleFeed,
        exchange: SimulatedExchange,
        pipeline: DecisionPipeline,
        emergency_stop: EmergencyStop,
        funding: FundingSchedule | None = None,
        reset_after_ns: int | None = None,
        skip_quiet: bool = True,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.feed = feed
        self.exchange = exchange
        self.pipeline = pipeline
        self.emergency_stop = emergency_stop
        self.funding = funding
        self.reset_after_ns = reset_after_ns
        self.skip_quiet = skip_quiet
        self._equity: list[float] = []
        self.funding_missing = 0
        self._engaged: set[str] = set()
        self._symbols = tuple(feed.series)
        # Per symbol with a position: the first row that may trigger its exits (see
        # _plan_quiet_rows); rows before it only mark the position.
        self._quiet_until: dict[str, int] = {}
        self._schedule = feed.signal_schedule(merge_activity(pipeline.profiles))
        self._next_signal = 0
        self._last_close = pipeline.last_close

    def run(self, progress: ProgressCallback | None = None) -> None:
        """Process the whole feed, then close what is still open at the last close."""
        steps = len(self.feed)
        step = 0
        next_report = 0
        while step < steps:
            self.step(step)
            step += 1
            if self.skip_quiet and self._is_quiet():
                step = self._skip_quiet(step, self._next_signal_step(steps))
            if progress is not None and step >= next_report:
                progress(step, steps)
                next_report = step + PROGRESS_EVERY
        self.close_at_end()
        if progress is not None:
            progress(steps, steps)

    def step(self, step: int) -> None:
        time_ns = self.feed.times[step]
        self.clock.advance_to(time_ns)
        exchange = self.exchange
        if self.funding is not None and exchange.positions:
            self._apply_funding(step, time_ns)
        if self._engaged:
            # Feed order, not set order: symbols share the cash, so the order of fills within
            # one step must not depend on string hashing, which differs between processes.
            engaged = self._engaged
            for symbol in self._symbols:
                if symbol not in engaged:
                    continue
                quiet_until = self._quiet_until.get(symbol)
                if quiet_until is not None:
                    series = self.feed.series[symbol]
                    row = series.row_at[step]
                    if 0 <= row < quiet_until:
                        self._last_close[symbol] = series.close[row]
                        continue
                self._process_candle(symbol, step, time_ns)
        equity = exchange.equity(self._last_close) if exchange.positions else exchange.cash
        self._equity.append(equity)
        if equity > self.pipeline.equity_peak:
            self.pipeline.equity_peak = equity
        if self.reset_after_ns is not None:
            self._maybe_reset(time_ns)
        trip = self.emergency_stop.on_equity(time_ns, equity)
        if trip is not None:
            self.pipeline.on_trip(trip, time_ns)
            self._engage_all_active()
        if self._engaged:
            self.pipeline.expire_limit_orders(time_ns)
        for symbol in self.pipeline.release_scheduled(time_ns):
            self._quiet_until.pop(symbol, None)
            self._engaged.add(symbol)
        manager = self.pipeline.position_manager
        if manager is not None and exchange.positions and step % manager.cadence == 0:
            self._manage_positions(manager, step, time_ns, equity)
        schedule = self._schedule
        index = self._next_signal
        while index < len(schedule.steps) and schedule.steps[index] == step:
            symbol, row = schedule.symbols[index], schedule.rows[index]
            self._last_close[symbol] = self.feed.series[symbol].close[row]
            self.pipeline.on_signal(symbol, row, time_ns, step, equity)
            self._quiet_until.pop(symbol, None)
            if exchange.has_activity(symbol):
                self._engaged.add(symbol)
            index += 1
        self._next_signal = index

    @property
    def equity(self) -> npt.NDArray[np.float64]:
        """Equity marked at each processed step's close (the last one after end-of-data exits)."""
        return np.asarray(self._equity, dtype=np.float64)

    def close_at_end(self) -> None:
        """Close every open position at its last close, as a taker, tagged end_of_data.

        Each exit is stamped with the close time of that symbol's last candle.
        """
        if not self.exchange.positions:
            return
        end_ns = self.feed.times[-1] + self.feed.timeframe_ns
        self.clock.advance_to(end_ns)
        for order in self.exchange.open_orders():
            self.exchange.cancel_order(order.client_order_id, end_ns)
        for symbol in list(self.exchange.positions):
            series = self.feed.series[symbol]
            close_ns = self.feed.times[int(series.step_of_row[-1])] + self.feed.timeframe_ns
            self.pipeline.submit_close(symbol, close_ns, ExitReason.END_OF_DATA)
            price = self._last_close[symbol]
            fills = self.exchange.process_candle(
                symbol, close_ns, price, price, price, price, _END_OF_DATA_VOLUME, False
            )
            self._publish_fills(fills)
        if self._equity:
            self._equity[-1] = self.exchange.cash

    def _process_candle(self, symbol: str, step: int, time_ns: int) -> None:
        series = self.feed.series[symbol]
        row = series.row_at[step]
        if row < 0:
            return
        fills = self.exchange.process_candle(
            symbol,
            time_ns,
            series.open[row],
            series.high[row],
            series.low[row],
            series.close[row],
            series.volume[row],
            series.synthetic[row],
        )
        self._last_close[symbol] = series.close[row]
        if fills:
            if self.pipeline.on_fills(time_ns):
                self._engage_all_active()
            self._publish_fills(fills)
        if not self.exchange.has_activity(symbol):
            self._engaged.discard(symbol)
            self._quiet_until.pop(symbol, None)
        elif self.skip_quiet:
            self._plan_quiet_rows(symbol, row)

    def _plan_quiet_rows(self, symbol: str, row: int) -> None:
        """Find the next candle that can touch the position's stop, target or liquidation.

        Until that row nothing can fill (no open order, no level in range), so the kernel only
        marks the position. Any candle whose range reaches a level is processed in full.
        """
        position = self.exchange.positions.get(symbol)
        if position is None or self.exchange.open_orders(symbol):
            self._quiet_until.pop(symbol, None)
            return
        below, above = _exit_levels(position)
        series = self.feed.series[symbol]
        start = row + 1
        total = len(series.close)
        while start < total:
            end = min(start + _QUIET_CHUNK, total)
            touched = (series.low_array[start:end] <= below) | (
                series.high_array[start:end] >= above
            )
            hits = np.flatnonzero(touched)
            if len(hits):
                self._quiet_until[symbol] = start + int(hits[0])
                return
            start = end
        self._quiet_until[symbol] = total

    def _apply_funding(self, step: int, time_ns: int) -> None:
        assert self.funding is not None
        if time_ns % self.funding.interval_ns:
            return
        for symbol in list(self.exchange.positions):
            rate = self.funding.rate_at(symbol, time_ns)
            if rate is None:
                self.funding_missing += 1
                continue
            series = self.feed.series[symbol]
            row = series.row_at[step]
            mark = series.open[row] if row >= 0 else self._last_close[symbol]
            self.exchange.apply_funding(symbol, time_ns, mark, rate)

    def _is_quiet(self) -> bool:
        """Return True when nothing can happen before the next signal.

        That is the case with no position and no open order (equity is then constant cash), and no
        pending ESS auto-reset whose time would fall inside the quiet stretch.
        """
        if self._engaged or self.exchange.positions:
            return False
        execution = self.pipeline.execution
        if execution is not None and execution.scheduled:
            return False
        return self.reset_after_ns is None or self.emergency_stop.trip is None

    def _next_signal_step(self, steps: int) -> int:
        schedule = self._schedule
        if self._next_signal < len(schedule.steps):
            return schedule.steps[self._next_signal]
        return steps

    def _skip_quiet(self, start: int, end: int) -> int:
        """Advance over steps ``start..end-1`` in one go and return ``end``.

        Equity is the unchanged cash balance throughout, so the ESS receives the same values as
        step by step. One call at the last step rolls its day forward.
        """
        if end <= start:
            return start
        cash = self.exchange.cash
        self._equity.extend([cash] * (end - start))
        last_time = self.feed.times[end - 1]
        self.clock.advance_to(last_time)
        trip = self.emergency_stop.on_equity(last_time, cash)
        if trip is not None:
            self.pipeline.on_trip(trip, last_time)
        return end

    def _manage_positions(
        self, manager: PositionManager, step: int, time_ns: int, equity: float
    ) -> None:
        manager.forget_closed()
        for symbol in manager.manage(step, time_ns, equity, self.pipeline):
            self._quiet_until.pop(symbol, None)
            self._engaged.add(symbol)

    def _maybe_reset(self, time_ns: int) -> None:
        """Lift a trip ``reset_after_ns`` after it happened, standing in for an operator."""
        trip = self.emergency_stop.trip
        assert self.reset_after_ns is not None
        if trip is None or time_ns - trip.time_ns < self.reset_after_ns:
            return
        hours = self.reset_after_ns / 3_600_000_000_000
        self.emergency_stop.reset(time_ns, f"backtest auto-reset {hours:g} h after the trip")
        equity = self._equity[-1] if self._equity else None
        self.pipeline.on_reset(time_ns, trip.reason, hours, equity)

    def _engage_all_active(self) -> None:
        self._quiet_until.clear()
        for symbol in self.feed.series:
            if self.exchange.has_activity(symbol):
                self._engaged.add(symbol)

    def _publish_fills(self, fills: list[Fill]) -> None:
        if self.bus.has_subscribers("fill"):
            for fill in fills:
                self.bus.publish("fill", fill)
