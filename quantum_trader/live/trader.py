"""Paper trading on live candles: closed candles from ccxt drive the backtest's kernel.

The decision code is the backtest's, unchanged: the signals, the fourteen subsystems and the
kernel run over a timeline of candles. In a live run that timeline grows. When new candles have
closed, the trader appends them, rebuilds the signals and a new session over the whole timeline
in a worker thread, replays the steps it already processed (nothing is published then), and
swaps the new session in. Then it processes the new steps as the replay does: orders, fills and
decisions are published and journaled.

This is exact, not an approximation, because the pipeline never looks ahead. Every signal of a
candle depends only on candles up to it, and the walk-forward folds are anchored at the first
candle. So the replay of the processed steps rebuilds the state the running session holds. The
swap checks that (the same orders, fills and trades, or the loop stops with the reason).
Operator commands (ESS trip and reset, subsystem modes) and stale-data trips are logged with the
step they came before, and the replay applies them at the same point.

The run starts with ``live.history_candles`` closed candles per symbol. They warm up the model
and the subsystems but open no position: entry signals before the first live candle are masked.
With a journal database, the trader stores where its timeline starts (the live anchor) and
every candle of the timeline before it trades it. A restart rebuilds the timeline from the
stored candles, because the exchange may since have delivered a candle that was filled in, or
corrected one. It replays to the stored step, and the next poll catches up on the candles that
closed while it was down.

A new time is processed once every symbol has delivered its candle. A symbol still missing
``live.max_wait_seconds`` after the close gets a flat synthetic candle at its previous close,
which it then keeps, so that the timeline never changes behind the trader. A time that no
symbol has delivered is never filled in: the data then ages until the ESS trips on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from quantum_trader.backtest.runner import TradingSession, build_session, trading_symbols
from quantum_trader.backtest.signal_set import SignalSet, ai_pipeline_signals
from quantum_trader.config import Settings
from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError, TemporaryError
from quantum_trader.live.ccxt_source import CcxtCandleSource
from quantum_trader.live.timeline import (
    complete_times,
    history_candles,
    mask_entries_before,
    with_stale_limit,
)
from quantum_trader.paper.commands import LoggedCommand, apply_command, replay
from quantum_trader.paper.trader import PaperTrader, TraderStatus
from quantum_trader.persistence.repository import LiveAnchor

logger = logging.getLogger(__name__)


class LiveTrader(PaperTrader):
    """Paper trading on closed candles from an exchange (see the module docstring)."""

    def __init__(self, settings: Settings, *, source: CcxtCandleSource | None = None) -> None:
        if settings.exchange.market_type is MarketType.FUTURES and (
            settings.exchange.funding_rate is None
        ):
            raise ConfigurationError(
                "live futures paper trading needs exchange.funding_rate (a constant rate per "
                "funding interval); the funding history is not read from the exchange yet"
            )
        super().__init__(with_stale_limit(settings))
        self._source = source
        self._candles: dict[str, pd.DataFrame] = {}
        self._anchor: LiveAnchor | None = None
        self._pending_since: dict[int, float] = {}
        self.last_poll_error: str | None = None
        self.last_poll_wall: float | None = None
        self.rebuild_seconds: float | None = None

    @property
    def source(self) -> CcxtCandleSource:
        """The candle source, built from ``live`` settings on first use."""
        if self._source is None:
            settings = self.settings
            self._source = CcxtCandleSource(
                settings.live, settings.data.timeframe, settings.exchange.market_type
            )
        return self._source

    @property
    def anchor(self) -> LiveAnchor:
        """Where this run's timeline and its trading begin."""
        if self._anchor is None:
            raise ConfigurationError("the live trader is not prepared, so call prepare() first")
        return self._anchor

    # Lifecycle.

    def prepare(self) -> None:
        """Fetch the history (or the stored timeline), build the signals and the session.

        A prepared trader is left as it is.
        """
        if self._session is not None:
            return
        settings = self.settings
        symbols = tuple(trading_symbols(settings))
        stored = None if self._journal is None else self._journal.repository.load_live_anchor()
        source = self.source
        if stored is not None and self._journal is not None:
            self._check_anchor(stored, symbols)
            self._anchor = stored
            repository = self._journal.repository
            for symbol in symbols:
                frame = repository.load_live_candles(symbol)
                if not len(frame):  # a crash between storing the anchor and the candles
                    frame = source.closed_since(symbol, stored.first_open_ns)
                self._candles[symbol] = frame
        else:
            count = history_candles(settings)
            for symbol in symbols:
                self._candles[symbol] = source.history(symbol, count)
                logger.info(
                    "Fetched %d %s candles of %s.",
                    len(self._candles[symbol]),
                    settings.data.timeframe,
                    symbol,
                )
            first = min(int(frame["date"].iloc[0].value) for frame in self._nonempty())
            trade_from = source.last_closed_open_ns() + source.timeframe_ns
            self._anchor = LiveAnchor(
                exchange=source.name,
                market_type=settings.exchange.market_type.value,
                timeframe=settings.data.timeframe,
                symbols=symbols,
                first_open_ns=first,
                trade_from_ns=trade_from,
            )
        self._trim_to_common_end()
        if stored is None and self._journal is not None:
            self._journal.repository.save_live_anchor(self.anchor)
            self._journal.repository.save_live_candles(self._candles)
        self._session, self._signals = self._build(self._candles, 0, [], start=False)
        logger.info(
            "Live paper trader prepared on %s: %d symbols, %d candle times, trading from %s.",
            source.name,
            len(symbols),
            len(self.session.feed),
            pd.Timestamp(self.anchor.trade_from_ns, tz="UTC").isoformat(),
        )

    def _nonempty(self) -> list[pd.DataFrame]:
        frames = [frame for frame in self._candles.values() if len(frame)]
        if len(frames) != len(self._candles):
            empty = [symbol for symbol, frame in self._candles.items() if not len(frame)]
            raise ConfigurationError(
                f"{self.source.name} returned no closed {self.settings.data.timeframe} candles "
                f"for {', '.join(empty)}; check data.symbols and live.exchange"
            )
        return frames

    def _check_anchor(self, stored: LiveAnchor, symbols: tuple[str, ...]) -> None:
        wanted = (
            self.source.name,
            self.settings.exchange.market_type.value,
            self.settings.data.timeframe,
            symbols,
        )
        found = (stored.exchange, stored.market_type, stored.timeframe, stored.symbols)
        if wanted != found:
            raise ConfigurationError(
                f"the journal database contains a live run on {found}, but the settings request "
                f"{wanted}; start with a new database URL"
            )

    def _trim_to_common_end(self) -> None:
        """Drop candles after the newest time every symbol has, so each step has all symbols."""
        ends = [int(frame["date"].iloc[-1].value) for frame in self._nonempty()]
        end = pd.Timestamp(min(ends), tz="UTC")
        for symbol, frame in self._candles.items():
            self._candles[symbol] = frame[frame["date"] <= end].reset_index(drop=True)

    def start(self) -> None:
        """Start the subsystems, resume from the journal, then warm up on the history.

        A started trader is left as it is.
        """
        if self._started:
            return
        super().start()
        warm_up = self._steps_before(self.anchor.trade_from_ns)
        if self._next_step < warm_up:
            session = self.session
            for step in range(self._next_step, warm_up):
                session.kernel.step(step)
            self._next_step = warm_up
            if self._journal is not None:
                status = self.status()
                self._journal.record(session, warm_up - 1, status.equity, self.drawdown())
            self.last_poll_wall = time.time()
            logger.info("Warmed up on %d candle times of history.", warm_up)

    def _steps_before(self, time_ns: int) -> int:
        return int(np.searchsorted(self.session.feed.times_array, time_ns, side="left"))

    # Building and swapping sessions.

    def _build(
        self,
        candles: dict[str, pd.DataFrame],
        replay_to: int,
        commands: list[LoggedCommand],
        *,
        start: bool = True,
    ) -> tuple[TradingSession, SignalSet]:
        """Build the signals and a session over ``candles``; started, it is replayed to
        ``replay_to`` with ``commands`` applied where they were logged."""
        signals = ai_pipeline_signals(self.settings, candles, None)
        signals = mask_entries_before(signals, candles, self.anchor.trade_from_ns)
        session = build_session(self.settings, candles, signals, skip_quiet=False)
        if not start:
            return session, signals
        session.start(quiet=True)
        replay(session, replay_to, commands)
        return session, signals

    def _swap(self, session: TradingSession, signals: SignalSet, applied: int) -> None:
        """Replace the running session by its rebuilt copy (see the module docstring)."""
        old = self.session
        counts_old = (len(old.exchange.orders), len(old.exchange.fills), len(old.exchange.trades))
        counts_new = (
            len(session.exchange.orders),
            len(session.exchange.fills),
            len(session.exchange.trades),
        )
        if counts_old != counts_new:
            if session.stack is not None:
                session.stack.registry.stop(quiet=True)
            raise ConfigurationError(
                f"rebuilding the live session at step {self._next_step} gave (orders, fills, "
                f"trades) = {counts_new}, but the running session has {counts_old}: the "
                "exchange changed candles that had already closed; restart with a new database"
            )
        for command in self._commands[applied:]:
            command.apply(session)
        for topic, handler in self._handlers:
            old.bus.unsubscribe(topic, handler)
            session.bus.subscribe(topic, handler)
        if old.stack is not None:
            old.stack.registry.stop(quiet=True)
        self._session, self._signals = session, signals

    # The loop.

    def step(self) -> bool:
        """Process the next candle time when it has arrived; a live timeline never finishes."""
        if not self._journal_caught_up() or self._next_step >= len(self.session.feed):
            return False
        return super().step()

    async def run(self, speed: float, stop_event: asyncio.Event) -> None:
        """Poll for closed candles every ``live.poll_seconds`` and trade them until stopped.

        ``speed`` is ignored: live candles arrive at the exchange's pace. A poll that fails
        after its retries (LiveDataError) is logged and tried again at the next poll. The
        subsystems' heartbeats then age, so the service reports itself degraded until candles
        arrive again. Any other error (a bad symbol, a malformed candle, a rebuild that does not
        match the running session) trips the ESS and ends the loop, and the readiness probe
        reports it.
        """
        del speed
        poll = self.settings.live.poll_seconds
        while not stop_event.is_set():
            started = time.monotonic()
            try:
                await self.poll_once()
            except Exception as exc:
                # No candle will be processed any more, so stops and exits of open positions
                # cannot trigger: the ESS records that the trader has stopped trading.
                self.last_poll_error = f"{type(exc).__name__}: {exc}"
                logger.error("The live loop stopped: %s", self.last_poll_error)
                if self.session.emergency_stop.trip is None:
                    self.trip(f"the live loop stopped: {self.last_poll_error}")
                raise
            self.loop_lag_seconds = max(0.0, time.monotonic() - started - poll)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=poll)

    async def poll_once(self) -> int:
        """Fetch new closed candles, trade them, and return how many steps were processed."""
        try:
            new = await asyncio.to_thread(self._fetch_new)
        except TemporaryError as exc:
            # The exchange failed after its retries: try again at the next poll. The ESS still
            # checks the age of the data, so a long outage trips it.
            self.last_poll_error = f"{type(exc).__name__}: {exc}"
            logger.warning("Polling %s for candles failed: %s", self.source.name, exc)
            self._check_stale_data()
            self.publish_health_changes()
            return 0

        self.last_poll_error = None
        self.last_poll_wall = time.time()
        if new:
            candles = {
                symbol: pd.concat([self._candles[symbol], new[symbol]], ignore_index=True)
                for symbol in self._candles
            }
            applied = len(self._commands)
            began = time.monotonic()
            session, signals = await asyncio.to_thread(
                self._build, candles, self._next_step, list(self._commands)
            )
            self.rebuild_seconds = time.monotonic() - began
            self._swap(session, signals, applied)
            self._candles = candles
            if self._journal is not None:
                # Stored before they are traded, so a restart rebuilds this exact timeline.
                self._journal.repository.save_live_candles(new)

        # Steps a restart fetched but has not processed yet are caught up here as well.
        processed = 0
        while self.step():
            processed += 1

        self.heartbeat()
        self._check_stale_data()
        self.publish_health_changes()
        return processed

    def _fetch_new(self) -> dict[str, pd.DataFrame] | None:
        """Fetch the closed candles after the timeline and return those of complete times."""
        source = self.source
        last = int(self.session.feed.times[-1])
        newest_closed = source.last_closed_open_ns()
        if newest_closed <= last:
            return None
        fetched = {
            symbol: source.closed_since(symbol, last + source.timeframe_ns)
            for symbol in self._candles
        }
        return complete_times(
            self._candles,
            fetched,
            newest_closed,
            source.timeframe_ns,
            now_ns=source.now_ns(),
            max_wait_seconds=self.settings.live.max_wait_seconds,
            exchange=source.name,
        )

    def _check_stale_data(self) -> None:
        """Run the ESS's stale-data check on the newest candle; a trip is logged as a command."""
        session = self.session
        payload = {"newest_ns": int(session.feed.times[-1]), "now_ns": self.source.now_ns()}
        was_active = session.emergency_stop.trip is None
        apply_command(session, "stale_data", payload)
        if was_active and session.emergency_stop.trip is not None:
            self._log_command("stale_data", payload)
            self._store_ess()

    # Reading state.

    def status(self) -> TraderStatus:
        """Return the progress; the data age runs from the close of the newest candle."""
        status = super().status()
        newest_close = (int(self.session.feed.times[-1]) + self.session.feed.timeframe_ns) / 1e9
        live = self.settings.live
        limit = self.session.feed.timeframe_ns / 1e9 + live.max_wait_seconds + 2 * live.poll_seconds
        now = self.source.now_ns() / 1e9
        age = None if self.last_poll_wall is None else max(0.0, now - newest_close)
        return replace(
            status,
            finished=False,
            data_age_seconds=age,
            data_age_limit_seconds=limit,
            source="live",
            exchange=self.source.name,
            last_poll_error=self.last_poll_error,
            rebuild_seconds=self.rebuild_seconds,
        )
