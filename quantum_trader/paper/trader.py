"""Paper trading: replay the shipped candles through the backtest's kernel in wall-clock time.

The trader builds the same TradingSession a backtest builds (same signals, same subsystems,
same decision code) and steps its kernel one candle time at a time, so a replay gives exactly
the trades of ``simulate`` over the same candles. Fills, orders and decisions are published on
the session's EventBus as the kernel produces them.

Without ``service.database_url`` the state lives in memory only. With it, each step is
journaled in one transaction (see ``paper.journal``), and a restarted trader resumes at the
stored step with the ESS latch and the subsystem modes restored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from quantum_trader.backtest.runner import TradingSession, build_session, load_market_data
from quantum_trader.backtest.signal_set import SignalSet, ai_pipeline_signals
from quantum_trader.config import Settings
from quantum_trader.core.types import Order, Position, Trade
from quantum_trader.engine.bus import Handler
from quantum_trader.engine.decisions import Decision
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.commands import (
    LoggedCommand,
    replay,
    reset_session,
    set_session_mode,
    trip_session,
)
from quantum_trader.paper.events import CandleEvent, HealthWatch, SignalEvent, iso_time
from quantum_trader.paper.journal import Journal
from quantum_trader.paper.redis_feed import TOPICS, RedisFeed
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.registry import SubsystemRegistry, SubsystemStatus
from quantum_trader.subsystems.supervisor_os import Directives

logger = logging.getLogger(__name__)

EVENT_TOPICS = ("candle", "signal", "order", "fill", "decision", "health")
# A replay that has not stepped for this many seconds of wall time delivers stale data.
REPLAY_DATA_AGE_LIMIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ProfileSignal:
    """One strategy profile's signal on one candle."""

    entry: int
    exit: bool
    confidence: float | None


@dataclass(frozen=True, slots=True)
class LatestSignal:
    """The signals of the newest candle of a symbol that the replay has closed."""

    symbol: str
    time_ns: int
    profiles: dict[str, ProfileSignal]
    votes: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class TraderStatus:
    """Progress of the replay and the state of the account."""

    step: int
    steps: int
    finished: bool
    market_time_ns: int | None
    equity: float
    cash: float
    open_positions: int
    loop_lag_seconds: float
    data_age_seconds: float | None
    data_age_limit_seconds: float
    source: str = "replay"
    exchange: str | None = None
    last_poll_error: str | None = None
    rebuild_seconds: float | None = None


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat()


class PaperTrader:
    """A replay of candles through a TradingSession at a chosen speed (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = _without_simulated_resets(settings)
        self._session: TradingSession | None = None
        self._signals: SignalSet | None = None
        self._next_step = 0
        self._finished = False
        self._last_step_wall: float | None = None
        self.loop_lag_seconds = 0.0
        service = settings.service
        url = service.database_url
        self._journal = Journal(url, service.database_password_file) if url else None
        self._redis: RedisFeed | None = None
        self._handlers: list[tuple[str, Handler]] = []
        self._health = HealthWatch()
        self._commands: list[LoggedCommand] = []
        self._started = False
        self._unjournaled = False
        self.journal_error: str | None = None

    # Lifecycle.

    def prepare(self) -> None:
        """Load the configured candles, build the AI pipeline signals and the session.

        A prepared trader is left as it is.
        """
        if self._session is not None:
            return
        data = load_market_data(self.settings)
        self._signals = ai_pipeline_signals(self.settings, data.candles, None)
        # Every step is processed one by one: a live loop has no future to skip over.
        self._session = build_session(
            self.settings, data.candles, self._signals, data.catalog, skip_quiet=False
        )
        logger.info(
            "Paper trader prepared: %d symbols, %d candle times from %s.",
            len(data.candles),
            len(self._session.feed),
            _iso(self._session.feed.times[0]),
        )

    def start(self) -> None:
        """Start the subsystems in dependency order, then resume from the journal if any.

        A failure raises with its reason. A started trader is left as it is.
        """
        if self._started:
            return
        self._started = True
        self.session.start()
        if self._journal is not None:
            self._resume(self._journal)
        service = self.settings.service
        if service.redis_url:
            self._redis = RedisFeed(service.redis_url, service.redis_prefix)
            for topic in TOPICS:
                self.subscribe(topic, self._redis.handler(topic))

    def database_problem(self) -> str | None:
        """Return why the journal database is unreachable, or None (also without a journal)."""
        if self._journal is None:
            return None
        if self.journal_error is not None:
            return f"the journal database rejected the last step: {self.journal_error}"
        return self._journal.database_problem()

    def _resume(self, journal: Journal) -> None:
        """Replay the steps the database holds, with the stored commands where they were
        applied, then check the replay against the stored counts."""
        stored = journal.stored_step()
        session = self.session
        steps = min(stored, len(session.feed))
        self._commands = journal.stored_commands()
        # Commands after the last journaled step are not in its counts yet, so they are
        # applied after the check. Their decisions are journaled with the next step.
        replay(session, steps, [c for c in self._commands if c.step < steps])
        self._next_step = steps
        journal.verify_resume(session, steps)
        for command in self._commands:
            if command.step >= steps:
                command.apply(session)

    def stop(self) -> None:
        """Stop the subsystems in reverse start order and release the journal's lock."""
        if self._session is not None and self._session.stack is not None:
            self._session.stack.registry.stop()
        if self._journal is not None:
            self._journal.close()

    @property
    def session(self) -> TradingSession:
        """The session built by ``prepare``."""
        if self._session is None:
            raise ConfigurationError("the paper trader is not prepared, so call prepare() first")
        return self._session

    @property
    def registry(self) -> SubsystemRegistry:
        """The registry of the fourteen subsystems."""
        stack = self.session.stack
        if stack is None:
            raise ConfigurationError("this session runs without subsystems")
        return stack.registry

    # Stepping.

    @property
    def finished(self) -> bool:
        """Whether every candle time has been processed and open positions were closed."""
        return self._finished

    def step(self) -> bool:
        """Process the next candle time; return whether one was processed.

        After the last candle time, open positions are closed at their last close, as at the
        end of a backtest, so a finished replay has the backtest's trades. While the journal
        database rejects the last step, no new step is processed (see ``_journal_caught_up``).
        """
        if self._finished:
            return False
        if not self._journal_caught_up():
            return False
        session = self.session
        if self._next_step >= len(session.feed):
            session.kernel.close_at_end()
            self._finished = True
            logger.info("Paper replay finished after %d candle times.", self._next_step)
            return False
        session.kernel.step(self._next_step)
        self._publish_candles(self._next_step)
        if self._redis is not None and session.stack is not None:
            self._redis.store_policy(session.stack.oversight.policy.policy)
        self._next_step += 1
        self._unjournaled = self._journal is not None
        self._journal_caught_up()
        self._last_step_wall = time.time()
        # The subsystems run inside the kernel step, so a completed step is their heartbeat.
        self.heartbeat()
        self.publish_health_changes()
        return True

    def _journal_caught_up(self) -> bool:
        """Journal the last processed step if it is not yet; return False while that fails.

        A database error (a lock held by another program, a restarted server) rolls the
        step's transaction back, so the same rows are written again at the next call.
        """
        if not self._unjournaled or self._journal is None:
            return True
        step = self._next_step - 1
        try:
            self._journal.record(self.session, step, self.status().equity, self.drawdown())
        except SQLAlchemyError as exc:
            message = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            if message != self.journal_error:
                logger.warning(
                    "Journaling step %d failed, so trading waits for the database: %s",
                    step,
                    message,
                )
            self.journal_error = message
            return False
        if self.journal_error is not None:
            logger.info("The journal database accepted step %d again.", step)
        self.journal_error = None
        self._unjournaled = False
        return True

    def _publish_candles(self, step: int) -> None:
        """Publish each symbol's candle of ``step``, and the signals where a profile acts."""
        session = self.session
        bus = session.bus
        time_ns = session.feed.times[step]
        for symbol, series in session.feed.series.items():
            row = series.row_at[step]
            if row < 0:
                continue
            bus.publish(
                "candle",
                CandleEvent(
                    symbol, iso_time(time_ns), series.open[row], series.high[row],
                    series.low[row], series.close[row], series.volume[row],
                    series.synthetic[row],
                ),
            )  # fmt: skip
            signal = self.signal_at(symbol, row)
            if any(profile.entry != 0 or profile.exit for profile in signal.profiles.values()):
                profiles = {name: asdict(profile) for name, profile in signal.profiles.items()}
                bus.publish(
                    "signal", SignalEvent(symbol, iso_time(time_ns), profiles, signal.votes)
                )

    def publish_health_changes(self) -> None:
        """Publish a ``health`` event for each subsystem whose health changed."""
        stack = self.session.stack
        if stack is None:
            return
        now_ns = time.time_ns()
        for event in self._health.changes(stack.registry, now_ns):
            self.session.bus.publish("health", event)

    def heartbeat(self) -> None:
        """Record a heartbeat of every running subsystem."""
        stack = self.session.stack
        if stack is not None:
            for subsystem in stack.registry.subsystems.values():
                if subsystem.running:
                    subsystem.heartbeat()

    async def run(self, speed: float, stop_event: asyncio.Event) -> None:
        """Step through the timeline at ``speed`` candle times per second until done or stopped.

        ``loop_lag_seconds`` records how late the latest step started against its schedule.
        """
        if not math.isfinite(speed) or speed <= 0:
            raise ConfigurationError(
                f"paper speed must be a positive number of candles per second, got {speed}"
            )
        interval = 1.0 / speed
        next_due = time.monotonic()
        while not stop_event.is_set():
            self.loop_lag_seconds = max(0.0, time.monotonic() - next_due)
            if not self.step() and self._finished:
                return
            next_due += interval
            # Sleep at least zero seconds so the event loop serves requests between steps.
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))

    # Reading state.

    @property
    def symbols(self) -> list[str]:
        """The traded symbols as the catalog names them."""
        return list(self.session.candles)

    def status(self) -> TraderStatus:
        """Return the replay's progress and the account's equity."""
        session = self.session
        equity = session.kernel.equity
        market_time = session.feed.times[self._next_step - 1] if self._next_step else None
        age = None if self._last_step_wall is None else time.time() - self._last_step_wall
        return TraderStatus(
            step=self._next_step,
            steps=len(session.feed),
            finished=self._finished,
            market_time_ns=market_time,
            equity=float(equity[-1]) if len(equity) else session.exchange.cash,
            cash=session.exchange.cash,
            open_positions=len(session.exchange.positions),
            loop_lag_seconds=self.loop_lag_seconds,
            data_age_seconds=age,
            data_age_limit_seconds=REPLAY_DATA_AGE_LIMIT_SECONDS,
        )

    def subsystem_status(self) -> list[SubsystemStatus]:
        """Return one status row per subsystem."""
        return self.registry.status()

    def directives(self) -> Directives:
        """Return AI-HFOS's current global mode and limits."""
        stack = self.session.stack
        if stack is None:
            raise ConfigurationError("this session runs without subsystems")
        return stack.oversight.hfos.directives

    def trades(self) -> list[Trade]:
        """Return the closed trades, oldest first."""
        return list(self.session.exchange.trades)

    def positions(self) -> list[Position]:
        """Return the open positions."""
        return list(self.session.exchange.positions.values())

    def orders(self) -> list[Order]:
        """Return every order submitted so far, oldest first."""
        return list(self.session.exchange.orders)

    def equity(self) -> list[tuple[int, float]]:
        """Return (candle open time in ns, equity at its close) for each processed step."""
        session = self.session
        values = session.kernel.equity.tolist()
        return list(zip(session.feed.times[: len(values)], values, strict=True))

    def drawdown(self) -> float:
        """Return the current drawdown from the equity peak as a fraction of the peak."""
        curve = self.session.kernel.equity
        if not len(curve):
            return 0.0
        peak = float(np.max(curve))
        return 0.0 if peak <= 0 else max(0.0, 1.0 - float(curve[-1]) / peak)

    def decisions(
        self,
        symbol: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 100,
    ) -> list[Decision]:
        """Return the newest ``limit`` decisions, oldest first, filtered by symbol and time.

        ``since`` and ``until`` are inclusive bounds in ns UTC on the decision time.
        """
        if limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {limit}")
        matched: list[Decision] = []
        for decision in reversed(self.session.log.decisions):
            if symbol is not None and decision.symbol != symbol:
                continue
            if since is not None and decision.time_ns < since:
                continue
            if until is not None and decision.time_ns > until:
                continue
            matched.append(decision)
            if len(matched) == limit:
                break
        matched.reverse()
        return matched

    def latest_signal(self, symbol: str) -> LatestSignal | None:
        """Return the signals of ``symbol``'s newest processed candle, or None before the first."""
        session, signals = self.session, self._signals
        assert signals is not None  # set together with the session
        series = session.feed.series[symbol]
        processed = min(self._next_step, len(session.feed))
        rows = np.asarray(series.row_at[:processed], dtype=np.int64)
        known = rows[rows >= 0]
        if not len(known):
            return None
        return self.signal_at(symbol, int(known[-1]))

    def signal_at(self, symbol: str, row: int) -> LatestSignal:
        """Return the signals of ``symbol``'s candle at ``row`` of its frame."""
        session, signals = self.session, self._signals
        assert signals is not None  # set together with the session
        profiles = {
            name: ProfileSignal(
                entry=int(frames[symbol].entry[row]),
                exit=bool(frames[symbol].exit[row]),
                confidence=_finite(float(frames[symbol].confidence[row])),
            )
            for name, frames in signals.profiles.items()
            if symbol in frames
        }
        votes: dict[str, float | None] = {}
        if signals.model is not None and symbol in signals.model.votes:
            for model_name, values in signals.model.votes[symbol].items():
                votes[model_name] = _finite(float(values[row]))
        time_ns = int(session.candles[symbol]["date"].iloc[row].value)
        return LatestSignal(symbol, time_ns, profiles, votes)

    # Commands.

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler`` with every event the session publishes on ``topic``."""
        self.session.bus.subscribe(topic, handler)
        self._handlers.append((topic, handler))

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``topic``."""
        self.session.bus.unsubscribe(topic, handler)
        if (topic, handler) in self._handlers:
            self._handlers.remove((topic, handler))

    def set_mode(self, short_name: str, mode: Mode | str) -> Mode:
        """Set a subsystem's configured mode and return its effective mode."""
        effective = set_session_mode(self.session, short_name, mode)
        value = str(Mode(mode).value)
        self._log_command("mode", {"short_name": short_name, "mode": value})
        if self._journal is not None:
            self._journal.save_mode(short_name, value)
        return effective

    def trip(self, reason: str) -> None:
        """Trip the ESS by hand. Pending entry orders are cancelled, as for any other trip."""
        trip_session(self.session, reason)
        self._log_command("trip", {"reason": reason})
        self._store_ess()

    def _log_command(self, kind: str, payload: dict[str, Any]) -> None:
        """Log an applied command, and journal it, so that replays apply it at this step."""
        command = LoggedCommand(self._next_step, kind, payload)
        self._commands.append(command)
        if self._journal is not None:
            self._journal.save_command(command)

    def _store_ess(self) -> None:
        if self._journal is not None:
            self._journal.repository.save_ess_state(
                json.loads(json.dumps(self.session.emergency_stop.to_dict(), default=str))
            )

    def reset(self, authorised_by: str) -> None:
        """Lift an ESS trip. The equity peak restarts at the current equity.

        Raises ConfigurationError when the ESS is not tripped, because a reset also restarts
        the drawdown that AI-HFOS reads.
        """
        if self.session.emergency_stop.trip is None:
            raise ConfigurationError("the ESS is not tripped, so there is nothing to reset")
        reset_session(self.session, authorised_by)
        self._log_command("reset", {"authorised_by": authorised_by})
        self._store_ess()


def _without_simulated_resets(settings: Settings) -> Settings:
    """Return ``settings`` without ``emergency_stop.backtest_reset_hours``.

    In paper trading, as in live trading, a trip stays in force until an operator resets it
    through the API, so the backtest's simulated resets do not apply.
    """
    ess = settings.emergency_stop
    if ess.backtest_reset_hours is None:
        return settings
    logger.info(
        "emergency_stop.backtest_reset_hours=%g applies to backtests only; in paper trading a "
        "trip holds until it is reset through the API.",
        ess.backtest_reset_hours,
    )
    ess = ess.model_copy(update={"backtest_reset_hours": None})
    return settings.model_copy(update={"emergency_stop": ess})


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
