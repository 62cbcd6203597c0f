"""The decision pipeline: a closed candle's signal flows through sizing and the ESS to an order.

Every step records a Decision, so the report can explain "why did it buy SOL at 10:05, and why
not BTC?". Risk layers never raise on a bad candidate: they reject it with a recorded reason.
Orders decided at the close of candle t are market orders that the exchange fills at the open of
the symbol's next tradable candle.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import (
    ExitReason,
    Order,
    OrderSide,
    OrderType,
    Position,
    PositionSide,
)
from quantum_trader.engine.bus import EventBus
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.engine.gates import ExecutionGate, PortfolioGate
from quantum_trader.engine.order_desk import OrderDesk
from quantum_trader.engine.oversight import OversightLayer
from quantum_trader.engine.position_manager import PositionManager
from quantum_trader.engine.selection import SelectionLayer
from quantum_trader.exchange.markets import MarketRules
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.strategies.base import SignalFrame
from quantum_trader.subsystems.ai_engine import AITradingEngine
from quantum_trader.subsystems.emergency_stop import EmergencyStop, TripEvent
from quantum_trader.subsystems.meta_strategy import ML_ENSEMBLE
from quantum_trader.subsystems.sizing import (
    MAX_RISK_SCALE,
    SizingDecision,
    TradingMathematician,
)

logger = logging.getLogger(__name__)

SIZING = "Trading Mathematician"
ESS = "ESS"
STRATEGY = "Strategy"
PORTFOLIO_LIMIT = "Position limit"


class DecisionPipeline(OrderDesk):
    """Turns signals into orders through sizing, position limits and the emergency stop."""

    def __init__(
        self,
        *,
        exchange: SimulatedExchange,
        sizing: TradingMathematician,
        emergency_stop: EmergencyStop,
        markets: dict[str, MarketRules],
        profiles: dict[str, dict[str, SignalFrame]],
        atr: dict[str, npt.NDArray[np.float64]],
        feed: CandleFeed,
        risk: RiskSettings,
        log: DecisionLog,
        bus: EventBus,
        flatten_on_trip: bool,
        selection: SelectionLayer | None = None,
        position_manager: PositionManager | None = None,
        oversight: OversightLayer | None = None,
        portfolio: PortfolioGate | None = None,
        execution: ExecutionGate | None = None,
        ai_engine: AITradingEngine | None = None,
    ) -> None:
        self.exchange = exchange
        self.sizing = sizing
        self.emergency_stop = emergency_stop
        self.markets = markets
        if not profiles:
            raise ValueError("the pipeline needs at least one strategy profile")
        # Profile name -> symbol -> signals, in priority order for candidates on one candle.
        self.profiles = profiles
        self.selection = selection
        self.position_manager = position_manager
        self.oversight = oversight
        self.portfolio = portfolio
        self.execution = execution
        self.ai_engine = ai_engine
        self.atr = atr
        self.feed = feed
        self.risk = risk
        self.log = log
        self.bus = bus
        self.flatten_on_trip = flatten_on_trip
        # Latest close per symbol with a position or order; the kernel updates it every candle.
        self.last_close: dict[str, float] = {}
        # Highest equity marked so far; the kernel raises it every step.
        self.equity_peak = exchange.cash
        self._position_profile: dict[str, str] = {}
        self._trades_seen = 0
        # Entries vetoed while the ESS was halted, and the symbols already recorded this halt.
        self.halted_vetoes = 0
        self._halt_recorded: set[str] = set()
        self._sequence = 0

    def on_signal(self, symbol: str, row: int, time_ns: int, step: int, equity: float) -> None:
        """Act on the signals of ``symbol``'s candle ``row``, which has just closed.

        With a position open, only the profile that opened it may close it. When flat, the
        profiles are asked in priority order, and the first admitted candidate is sized.
        """
        position = self.exchange.positions.get(symbol)
        if position is not None:
            self._on_signal_in_position(symbol, row, time_ns, position)
            return
        if self._has_pending_entry(symbol):
            return
        for profile, frames in self.profiles.items():
            frame = frames.get(symbol)
            if frame is None or frame.entry[row] == 0:
                continue
            if self._consider_entry(symbol, row, time_ns, step, equity, profile, frame):
                return

    def _on_signal_in_position(
        self, symbol: str, row: int, time_ns: int, position: Position
    ) -> None:
        profile = self._position_profile.get(symbol, next(iter(self.profiles)))
        frame = self.profiles[profile].get(symbol)
        if frame is None:
            return
        entry = int(frame.entry[row])
        self._maybe_exit(symbol, position, entry, bool(frame.exit[row]), time_ns)
        if entry != 0 and entry != int(position.side):
            # One position per symbol: an opposite signal only closes it (above); the new side
            # needs a new signal once the symbol is flat.
            side_name = PositionSide(entry).name.lower()
            reason = f"{side_name} entry not opened: {symbol} first closes its position"
            self._record(time_ns, symbol, STRATEGY, Action.REJECT, reason, {})

    def _consider_entry(
        self,
        symbol: str,
        row: int,
        time_ns: int,
        step: int,
        equity: float,
        profile: str,
        frame: SignalFrame,
    ) -> bool:
        """Run one profile's entry candidate through every gate; True when an order was sent."""
        side = PositionSide(int(frame.entry[row]))
        numbers = {
            "confidence": float(frame.confidence[row]),
            "close": self.feed.series[symbol].close[row],
        }
        if not self.emergency_stop.allows_entries():
            self._veto_while_halted(time_ns, symbol, side, numbers)
            return False
        if self.ai_engine is not None and profile == ML_ENSEMBLE:
            numbers.update(self.ai_engine.votes(symbol, row))
        label = f"{side.name.lower()} entry from {profile}"
        self._record(time_ns, symbol, STRATEGY, Action.SIGNAL, label, numbers)
        risk_scale = 1.0
        if self.selection is not None:
            admission = self.selection.admit(
                step=step,
                time_ns=time_ns,
                symbol=symbol,
                row=row,
                side=side,
                profile=profile,
                trades=self.exchange.trades,
                equity_peak=self.equity_peak,
                equity=equity,
            )
            if not admission.admitted:
                return False
            risk_scale = admission.risk_scale
        if self.oversight is not None:
            verdict = self.oversight.admit(
                step=step,
                time_ns=time_ns,
                symbol=symbol,
                confidence=numbers["confidence"],
                trades=self.exchange.trades,
                open_positions=len(self.exchange.positions),
                equity_peak=self.equity_peak,
                equity=equity,
            )
            if not verdict.admitted:
                return False
            risk_scale = min(risk_scale * verdict.risk_scale, MAX_RISK_SCALE)
        if risk_scale <= 0:
            reason = f"{side.name.lower()} entry dropped: the combined risk scale is 0"
            self._record(time_ns, symbol, STRATEGY, Action.REJECT, reason, {})
            return False
        if not self._fits_position_limit(symbol, time_ns):
            return False
        return self._size_and_submit(symbol, row, side, time_ns, step, equity, profile, risk_scale)

    def _veto_while_halted(
        self, time_ns: int, symbol: str, side: PositionSide, numbers: dict[str, float]
    ) -> None:
        """Record the first vetoed entry per symbol of a halt; count the later ones.

        A halt can last months in a backtest. One record per symbol and a count keep the log
        readable, and every vetoed candidate is still counted.
        """
        self.halted_vetoes += 1
        if symbol in self._halt_recorded:
            return
        self._halt_recorded.add(symbol)
        trip = self.emergency_stop.trip
        halted_by = trip.reason if trip is not None else "manual"
        reason = (
            f"{side.name.lower()} entry vetoed: the ESS is halted ({halted_by} trip); later "
            f"entries of {symbol} are counted until the reset, not listed"
        )
        self._record(time_ns, symbol, ESS, Action.VETO, reason, numbers)

    def on_fills(self, time_ns: int) -> bool:
        """Pass trades closed since the last call on; return True when they tripped the ESS."""
        trades = self.exchange.trades
        tripped = False
        for trade in trades[self._trades_seen :]:
            if self.selection is not None:
                self.selection.on_trade_closed(trade)
            trip = self.emergency_stop.on_trade_closed(trade.exit_time.value, trade.exit_reason)
            if trip is not None:
                self.on_trip(trip, time_ns)
                tripped = True
        self._trades_seen = len(trades)
        return tripped

    def on_trip(self, trip: TripEvent, time_ns: int) -> None:
        self._halt_recorded.clear()
        self._on_trip(trip, time_ns)

    def _on_trip(self, trip: TripEvent, time_ns: int) -> None:
        """Record the trip, cancel pending entries and, when configured, flatten."""
        self._record(time_ns, "*", ESS, Action.TRIP, trip.detail, trip.numbers)
        for order in self.exchange.open_orders():
            if not order.reduce_only:
                self.exchange.cancel_order(order.client_order_id, time_ns)
        if self.flatten_on_trip or "flatten_positions" in trip.actions:
            for symbol in list(self.exchange.positions):
                self.submit_close(symbol, time_ns, ExitReason.EMERGENCY_STOP)

    def allows_additions(self) -> bool:
        return self.emergency_stop.allows_entries()

    def on_reset(
        self, time_ns: int, trip_reason: str, hours: float, equity: float | None = None
    ) -> None:
        """Record a reset; the equity peak restarts at the current equity, as the ESS's does.

        Without that, the drawdown AI-HFOS and MSC AI read would stay at its trip level and
        keep trading stopped after the reset.
        """
        reason = f"reset {hours:g} h after the {trip_reason} trip (backtest_reset_hours)"
        numbers = {"hours": hours, "entries_vetoed_while_halted": float(self.halted_vetoes)}
        self._record(time_ns, "*", ESS, Action.RESET, reason, numbers)
        if equity is not None:
            self.equity_peak = equity

    def _maybe_exit(
        self, symbol: str, position: Position, entry: int, exit_signal: bool, time_ns: int
    ) -> None:
        reverse = entry != 0 and entry != int(position.side)
        if not (exit_signal or reverse):
            return
        reason = (
            ExitReason.REVERSE_SIGNAL if reverse and not exit_signal else ExitReason.EXIT_SIGNAL
        )
        order = self.submit_close(symbol, time_ns, reason)
        if order is not None:
            self._record(
                time_ns,
                symbol,
                STRATEGY,
                Action.SUBMIT,
                f"close {symbol}: {reason}",
                {
                    "quantity": position.quantity,
                },
            )

    def _fits_position_limit(self, symbol: str, time_ns: int) -> bool:
        pending = sum(1 for o in self.exchange.open_orders() if not o.reduce_only)
        engaged = len(self.exchange.positions) + pending
        if engaged < self.risk.max_open_positions:
            return True
        reason = (
            f"{engaged} positions open or pending reach max_open_positions="
            f"{self.risk.max_open_positions}"
        )
        self._record(time_ns, symbol, PORTFOLIO_LIMIT, Action.VETO, reason, {"open": engaged})
        return False

    def _size_and_submit(
        self,
        symbol: str,
        row: int,
        side: PositionSide,
        time_ns: int,
        step: int,
        equity: float,
        profile: str,
        risk_scale: float,
    ) -> bool:
        """Size the candidate, fit it into the portfolio and hand it to execution."""
        frame = self.profiles[profile][symbol]
        price = self.feed.series[symbol].close[row]
        result = self.sizing.size(
            symbol,
            side,
            reference_price=price,
            atr=float(self.atr[symbol][row]),
            equity=equity,
            available_cash=self._available_cash(),
            rules=self.markets[symbol],
            stop_pct=_optional(frame.stop_pct, row),
            take_profit_pct=_optional(frame.take_profit_pct, row),
            risk_scale=risk_scale,
            recent_trades=self.exchange.trades,
            volatility=self._volatility(symbol, row),
        )
        if not isinstance(result, SizingDecision):
            self._record(time_ns, symbol, SIZING, Action.REJECT, result.reason, result.numbers)
            return False
        self._record(time_ns, symbol, SIZING, Action.APPROVE, result.reason, result.numbers)
        quantity = result.quantity
        if self.portfolio is not None:
            fitted = self.portfolio.fit(
                step=step,
                time_ns=time_ns,
                symbol=symbol,
                side=side,
                quantity=quantity,
                price=price,
                score=float(frame.confidence[row]),
                equity=equity,
                marks=self.last_close,
            )
            if fitted is None:
                return False
            quantity = fitted
        order = Order(
            client_order_id=self._next_id("entry", symbol, time_ns),
            symbol=symbol,
            side=OrderSide.BUY if side is PositionSide.LONG else OrderSide.SELL,
            type=OrderType.MARKET,
            quantity=quantity,
            created_ns=time_ns,
            tag=f"entry:{profile}",
            leverage=result.leverage,
            stop_distance=result.stop_distance,
            take_profit_distance=result.take_profit_distance,
        )
        orders = (
            [order] if self.execution is None else self.execution.plan(time_ns, row, order, price)
        )
        submitted = [self._submit(o, time_ns, price) for o in orders]
        if not submitted or any(o.reject_reason is not None for o in submitted):
            return False
        self._position_profile[symbol] = profile
        if self.position_manager is not None:
            self.position_manager.note_entry(symbol, result.stop_distance)
        return True

    def release_scheduled(self, time_ns: int) -> list[str]:
        """Submit execution slices due at ``time_ns``; return their symbols."""
        if self.execution is None or not self.execution.scheduled:
            return []
        symbols = []
        for order in self.execution.release(time_ns):
            if not self.emergency_stop.allows_entries():
                continue
            self._submit(order, time_ns, self.last_close.get(order.symbol, 0.0))
            symbols.append(order.symbol)
        return symbols

    def expire_limit_orders(self, time_ns: int) -> None:
        """Cancel entry limit orders past AELM's timeout and submit their market replacements."""
        if self.execution is None or not self.execution.manager.active:
            return
        open_orders = [o for o in self.exchange.open_orders() if o.type is OrderType.LIMIT]
        if not open_orders:
            return
        actions = self.execution.manager.expire_limits(
            time_ns, open_orders, lambda _order: self.emergency_stop.allows_entries()
        )
        for action in actions:
            self.exchange.cancel_order(action.canceled.client_order_id, time_ns)
            if action.replacement is not None:
                symbol = action.replacement.symbol
                self._submit(action.replacement, time_ns, self.last_close.get(symbol, 0.0))

    def _volatility(self, symbol: str, row: int) -> float | None:
        if self.selection is None:
            return None
        value = float(self.selection.stats[symbol].volatility[row])
        return value if math.isfinite(value) else None


def _optional(values: npt.NDArray[np.float64] | None, row: int) -> float | None:
    if values is None:
        return None
    value = float(values[row])
    return None if math.isnan(value) else value
