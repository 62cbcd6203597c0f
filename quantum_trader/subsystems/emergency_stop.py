"""Emergency Stop System (ESS): the last gate before execution, and a latched kill switch.

Triggers, each checked only while the ESS is active:

- ``daily_loss``: the loss since the start of the UTC day reaches ``max_daily_loss``;
- ``drawdown``: the drawdown from the peak equity reaches ``max_drawdown``;
- ``stop_loss_burst``: the latest ``stop_loss_burst_count`` stop-loss exits (liquidations
  count too) lie within ``stop_loss_burst_hours`` of each other, bounds included;
- ``execution_errors``: over the latest ``error_window`` order attempts, once there are at
  least ``min_error_attempts``, the failed share reaches ``max_error_rate``;
- ``stale_data``: the newest candle opened more than ``max_data_age_seconds`` ago. Only live
  and paper trading call ``on_market_data``; a backtest never does, so it never trips on this;
- ``manual``: a person trips it by hand.

A trip is latched: it stays in force, also across a restart (``to_dict``/``from_dict`` or an
attached ``EssStateStore``), until ``reset`` names who authorised it. After a trip the state is
"reducing" (only reduce-only orders pass) when ``reduce_on_trip`` is set and ``flatten_on_trip``
is not, else "halted". The trip event lists the actions the engine must apply.

Equity reference points:

- The start-of-day equity is the first equity seen on a new UTC day (day boundaries at 00:00 UTC
  of the candle open time), not the equity at exactly 00:00.
- The peak is the highest equity seen since the ESS was created or last reset.
- An authorised reset restarts both the peak and the start-of-day equity at the last equity seen
  and clears the stop-loss and order-attempt windows, so the losses or errors that caused the
  trip do not trip it again at once.

When one candle breaches both equity limits, the daily loss is checked first and names the trip.
The ESS mode is always enforced: a kill switch that only observes would not stop anything, so
assigning any other mode raises ConfigurationError, and a registry must not cap it.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from quantum_trader.config import EmergencyStopSettings
from quantum_trader.core.types import ExitReason
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.ess_store import (
    EssSnapshot,
    EssStateStore,
    TradingState,
    TripAction,
    TripEvent,
    TripReason,
    invalid_state_error,
)

__all__ = [
    "EmergencyStop",
    "EssStateStore",
    "TradingState",
    "TripAction",
    "TripEvent",
    "TripReason",
]

logger = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_SECOND
NS_PER_DAY = 24 * NS_PER_HOUR

# A liquidation is a stop-loss that the exchange carried out, so it counts towards a burst.
_LOSS_EXITS = frozenset({ExitReason.STOP_LOSS.value, ExitReason.LIQUIDATION.value})


class EmergencyStop(Subsystem):
    """Latched kill switch; ``on_equity`` is called once per candle close.

    ``allows_entries`` and ``allows_order`` count each call as a candidate seen and each
    False as a veto; the caller records the veto with the symbol.
    """

    name = "Emergency Stop System"
    short_name = "ESS"

    def __init__(
        self,
        settings: EmergencyStopSettings,
        *,
        mode: Mode = Mode.ENFORCED,
        log: DecisionLog | None = None,
    ) -> None:
        super().__init__(mode, cadence=1, log=log)
        self.settings = settings
        self._day: int | None = None
        self._day_start = 0.0
        self._peak = 0.0
        self._last_equity: float | None = None
        self._trip: TripEvent | None = None
        self._tripped_state: TradingState = "halted"
        self._stop_loss_times: list[int] = []
        self._outcomes: deque[bool] = deque(maxlen=settings.error_window)
        self._store: EssStateStore | None = None

    @property
    def mode(self) -> Mode:
        """Always enforced; see the module docstring."""
        return Mode.ENFORCED

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value is not Mode.ENFORCED:
            raise ConfigurationError(
                f"the ESS mode must stay enforced, got {str(value)!r}: an emergency stop that does "
                "not bind cannot stop trading; leave the ESS out of any mode cap"
            )

    @property
    def state(self) -> TradingState:
        """ "active", "reducing" (only reduce-only orders pass) or "halted"."""
        return "active" if self._trip is None else self._tripped_state

    @property
    def trip(self) -> TripEvent | None:
        """The trip in force, or None."""
        return self._trip

    def allows_entries(self) -> bool:
        """Return whether new positions may be opened: only while active."""
        self.seen += 1
        if self._trip is None:
            return True
        self.vetoed += 1
        return False

    def allows_order(self, reduce_only: bool) -> bool:
        """Return whether a new order may be sent.

        Active: every order. Reducing: reduce-only orders. Halted: none, except reduce-only
        orders after a trip whose actions include ``flatten_positions``, so that the engine's
        closing orders pass even when it sends them through this gate.
        """
        self.seen += 1
        trip = self._trip
        if trip is None:
            return True
        if reduce_only and (
            self._tripped_state == "reducing" or "flatten_positions" in trip.actions
        ):
            return True
        self.vetoed += 1
        return False

    def on_equity(self, time_ns: int, equity: float) -> TripEvent | None:
        """Record the equity at the close of the candle opened at ``time_ns``.

        Returns the trip event when this call trips the ESS, else None (also while already
        tripped). Raises ValueError on a NaN equity, which means the account state is unknown.
        """
        if equity != equity:
            raise ValueError(f"equity at {time_ns} ns is NaN; the account state is unknown")
        self.heartbeat()
        day = time_ns // NS_PER_DAY
        if day != self._day:
            self._day = day
            self._day_start = equity
        if self._last_equity is None or equity > self._peak:
            self._peak = equity
        self._last_equity = equity
        if self._trip is not None:
            return None

        day_start = self._day_start
        if day_start > 0 and (day_start - equity) / day_start >= self.settings.max_daily_loss:
            return self._trip_on_loss(time_ns, "daily_loss", equity, day_start)
        peak = self._peak
        if peak > 0 and (peak - equity) / peak >= self.settings.max_drawdown:
            return self._trip_on_loss(time_ns, "drawdown", equity, peak)
        return None

    def on_trade_closed(self, time_ns: int, exit_reason: ExitReason | str) -> TripEvent | None:
        """Count a closed trade towards the stop-loss burst and return the trip it causes."""
        self.heartbeat()
        count = self.settings.stop_loss_burst_count
        if count is None or str(exit_reason) not in _LOSS_EXITS:
            return None
        times = self._stop_loss_times
        bisect.insort(times, time_ns)
        # Only the latest ``count`` exits can form a burst, so the list stays that short.
        del times[:-count]
        if self._trip is not None or len(times) < count:
            return None
        span_ns = times[-1] - times[0]
        window_hours = self.settings.stop_loss_burst_hours
        if span_ns > round(window_hours * NS_PER_HOUR):
            return None
        span_hours = span_ns / NS_PER_HOUR
        numbers = {
            "stop_losses": float(count),
            "span_hours": span_hours,
            "window_hours": window_hours,
        }
        detail = (
            f"{count} stop-loss exits within {span_hours:g} h reached the limit of {count} "
            f"within {window_hours:g} h"
        )
        return self._set_trip(TripEvent(time_ns, "stop_loss_burst", numbers, detail))

    def on_execution(self, time_ns: int, ok: bool) -> TripEvent | None:
        """Record one order attempt (``ok`` False when it failed) and return the trip it causes."""
        self.heartbeat()
        outcomes = self._outcomes
        outcomes.append(bool(ok))
        limit = self.settings.max_error_rate
        attempts = len(outcomes)
        if limit is None or self._trip is not None:
            return None
        if attempts < self.settings.min_error_attempts:
            return None
        errors = attempts - sum(outcomes)
        rate = errors / attempts
        if rate < limit:
            return None
        numbers = {
            "errors": float(errors),
            "attempts": float(attempts),
            "error_rate": rate,
            "limit": limit,
        }
        detail = (
            f"{errors} of the latest {attempts} order attempts failed ({rate:.1%}), "
            f"at or above the limit {limit:.1%}"
        )
        return self._set_trip(TripEvent(time_ns, "execution_errors", numbers, detail))

    def on_market_data(self, latest_candle_ns: int, now_ns: int) -> TripEvent | None:
        """Check the age of the newest candle the feed delivered and return the trip it causes.

        ``latest_candle_ns`` is that candle's open time, and one still forming counts.
        NOTE: with a feed of closed candles only, the age is at least one candle length, so
        ``max_data_age_seconds`` must exceed it (the default 900 s suits 5m candles).
        """
        self.heartbeat()
        limit = self.settings.max_data_age_seconds
        if limit is None or self._trip is not None:
            return None
        age_ns = now_ns - latest_candle_ns
        if age_ns <= round(limit * NS_PER_SECOND):
            return None
        age = age_ns / NS_PER_SECOND
        numbers = {"age_seconds": age, "limit_seconds": limit}
        detail = f"the newest candle opened {age:g} s ago, more than the limit of {limit:g} s"
        return self._set_trip(TripEvent(now_ns, "stale_data", numbers, detail))

    def trip_manual(self, time_ns: int, reason: str) -> TripEvent:
        """Trip the ESS by hand. An ESS that is already tripped keeps its first trip."""
        if not reason.strip():
            raise ConfigurationError("a manual emergency stop needs a reason; pass a short text")
        if self._trip is not None:
            logger.warning(
                "Manual emergency stop (%s) ignored: the ESS is already halted by %s since %d ns.",
                reason,
                self._trip.reason,
                self._trip.time_ns,
            )
            return self._trip
        numbers = {} if self._last_equity is None else {"equity": self._last_equity}
        return self._set_trip(TripEvent(time_ns, "manual", numbers, reason.strip()))

    def reset(self, time_ns: int, authorised_by: str) -> None:
        """Lift a trip and record who authorised it.

        Raises ConfigurationError when ``authorised_by`` is empty, or when the attached store
        cannot be written. In both cases the ESS stays tripped.
        """
        authoriser = authorised_by.strip()
        if not authoriser:
            raise ConfigurationError(
                "an emergency stop reset needs the name of the person who authorised it; "
                "pass authorised_by"
            )
        trip = self._trip
        if trip is None:
            logger.info("ESS reset by %s at %d ns: it was not halted.", authoriser, time_ns)
            self.record(
                time_ns, "*", Action.RESET, f"reset by {authoriser}: the ESS was not tripped"
            )
            return
        before = self.to_dict()
        self._lift_trip()
        try:
            self.persist()
        except ConfigurationError:
            # A reset that the store does not know about would be undone by a restart.
            self._load_state(before)
            raise
        hours = (time_ns - trip.time_ns) / NS_PER_HOUR
        reason = f"reset by {authoriser}, {hours:g} h after the {trip.reason} trip"
        self.record(time_ns, "*", Action.RESET, reason, {"tripped_hours": hours})
        logger.warning(
            "ESS reset by %s at %d ns; it was %s by %s since %d ns.",
            authoriser,
            time_ns,
            before["state"],
            trip.reason,
            trip.time_ns,
        )

    def attach_store(self, store: EssStateStore) -> None:
        """Load the state kept in ``store``, then save every trip and reset to it.

        An in-memory trip is kept when the store contains none. The state is written right
        away, so an unwritable file fails here and not at the first trip. Raises
        ConfigurationError naming the file when it is invalid or cannot be written.
        """
        stored = store.load()
        current = self.to_dict() if self._trip is not None else None
        if stored is not None:
            try:
                self._load_state(stored)
            except ConfigurationError as exc:
                raise invalid_state_error(store.path, str(exc)) from exc
            if self._trip is not None:
                logger.warning(
                    "ESS state loaded from %s: %s by %s since %d ns, until an authorised reset.",
                    store.path,
                    self.state,
                    self._trip.reason,
                    self._trip.time_ns,
                )
        if current is not None and self._trip is None:
            self._load_state(current)
        self._store = store
        self.persist()

    def persist(self) -> None:
        """Write the state to the attached store, if any.

        Trips and resets call this. An engine may also call it at shutdown, so that the peak
        and the start-of-day equity survive a restart too.
        """
        if self._store is not None:
            self._store.save(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Serialise the state (JSON-compatible) so a restart keeps the latch."""
        return self._snapshot().to_dict()

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        settings: EmergencyStopSettings,
        *,
        log: DecisionLog | None = None,
    ) -> EmergencyStop:
        """Rebuild an ESS from ``to_dict`` output. A tripped ESS comes back tripped.

        Raises ConfigurationError when the stored state is missing a key, has an unknown
        version, reason, action or state, or a trip that contradicts its state.
        """
        ess = cls(settings, log=log)
        ess._load_state(data)
        return ess

    def trip_actions(self) -> tuple[TripAction, ...]:
        """Return the actions that a trip carries under the current settings."""
        actions: tuple[TripAction, ...] = ("halt_entries", "cancel_open_orders")
        if self.settings.flatten_on_trip:
            actions += ("flatten_positions",)
        return actions

    def _trip_on_loss(
        self, time_ns: int, reason: TripReason, equity: float, reference: float
    ) -> TripEvent:
        loss = (reference - equity) / reference
        if reason == "daily_loss":
            limit = self.settings.max_daily_loss
            numbers = {"equity": equity, "start_of_day_equity": reference}
            detail = f"daily loss {loss:.2%} of start-of-day equity {reference:g}"
        else:
            limit = self.settings.max_drawdown
            numbers = {"equity": equity, "peak_equity": reference}
            detail = f"drawdown {loss:.2%} from peak equity {reference:g}"
        numbers.update({"loss": loss, "limit": limit})
        detail += f" reached the limit {limit:.2%} at equity {equity:g}"
        return self._set_trip(TripEvent(time_ns, reason, numbers, detail))

    def _set_trip(self, event: TripEvent) -> TripEvent:
        """Latch ``event``, record it and save it. The trip stays in force if the save fails."""
        settings = self.settings
        event = replace(event, actions=self.trip_actions())
        self._trip = event
        reducing = settings.reduce_on_trip and not settings.flatten_on_trip
        self._tripped_state = "reducing" if reducing else "halted"
        actions = ", ".join(event.actions)
        self.record(
            event.time_ns, "*", Action.TRIP, f"{event.reason}: {event.detail}", event.numbers
        )
        logger.warning(
            "Emergency stop tripped (%s) at %d ns: %s. State %s, actions: %s. It stays so "
            "until an authorised reset.",
            event.reason,
            event.time_ns,
            event.detail,
            self._tripped_state,
            actions,
        )
        self.persist()
        return event

    def _lift_trip(self) -> None:
        """Clear the trip and restart the equity references and the trigger windows."""
        self._trip = None
        if self._last_equity is not None:
            self._peak = self._last_equity
            self._day_start = self._last_equity
        self._stop_loss_times.clear()
        self._outcomes.clear()

    def _snapshot(self) -> EssSnapshot:
        return EssSnapshot(
            state=self.state,
            day=self._day,
            day_start_equity=self._day_start,
            peak_equity=self._peak,
            last_equity=self._last_equity,
            stop_loss_times_ns=tuple(self._stop_loss_times),
            execution_outcomes=tuple(self._outcomes),
            trip=self._trip,
        )

    def _load_state(self, data: Mapping[str, Any]) -> None:
        """Replace the state with ``to_dict`` output, validated by ``EssSnapshot.from_dict``."""
        snapshot = EssSnapshot.from_dict(data, self.trip_actions())
        self._day = snapshot.day
        self._day_start = snapshot.day_start_equity
        self._peak = snapshot.peak_equity
        self._last_equity = snapshot.last_equity
        self._trip = snapshot.trip
        self._tripped_state = "halted" if snapshot.state == "active" else snapshot.state
        self._stop_loss_times = sorted(snapshot.stop_loss_times_ns)
        self._outcomes = deque(snapshot.execution_outcomes, maxlen=self.settings.error_window)
