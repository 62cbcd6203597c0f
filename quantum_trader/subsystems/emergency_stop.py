"""Emergency Stop System (ESS): the last gate before execution, and a latched kill switch.

The ESS watches account equity once per candle close and halts new entries when the loss since
the start of the UTC day or the drawdown from the peak reaches its limit, or when a person trips
it by hand. A trip is latched: it stays in force, also across a restart through ``to_dict`` and
``from_dict``, until ``reset`` names who authorised it.

Reference points:

- The start-of-day equity is the first equity seen on a new UTC day (day boundaries at 00:00 UTC
  of the candle open time), not the equity at exactly 00:00.
- The peak is the highest equity seen since the ESS was created or last reset.
- An authorised reset restarts both the peak and the start-of-day equity at the last equity seen,
  so the loss that caused the trip does not trip it again on the next candle.

When one candle breaches both limits, the daily loss is checked first and names the trip.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from quantum_trader.config import EmergencyStopSettings
from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000
STATE_FORMAT_VERSION = 1

TripReason = Literal["daily_loss", "drawdown", "manual"]
_TRIP_REASONS: tuple[TripReason, ...] = ("daily_loss", "drawdown", "manual")


@dataclass(frozen=True, slots=True)
class TripEvent:
    """One trip: when (ns, UTC), why, the numbers that decided it and a sentence for people."""

    time_ns: int
    reason: TripReason
    numbers: dict[str, float] = field(default_factory=dict)
    detail: str = ""


class EmergencyStop:
    """Latched equity guard; ``on_equity`` is called once per candle close."""

    __slots__ = ("_day", "_day_start", "_last_equity", "_peak", "_trip", "settings")

    def __init__(self, settings: EmergencyStopSettings) -> None:
        self.settings = settings
        self._day: int | None = None
        self._day_start = 0.0
        self._peak = 0.0
        self._last_equity: float | None = None
        self._trip: TripEvent | None = None

    @property
    def state(self) -> Literal["active", "halted"]:
        """ "halted" while a trip is in force, else "active"."""
        return "active" if self._trip is None else "halted"

    @property
    def trip(self) -> TripEvent | None:
        """The trip in force, or None."""
        return self._trip

    def allows_entries(self) -> bool:
        """Return whether new positions may be opened."""
        return self._trip is None

    def on_equity(self, time_ns: int, equity: float) -> TripEvent | None:
        """Record the equity at the close of the candle opened at ``time_ns``.

        Returns the trip event when this call trips the ESS, else None (also while already
        halted). Raises ValueError on a NaN equity, which means the account state is unknown.
        """
        if equity != equity:
            raise ValueError(f"equity at {time_ns} ns is NaN; the account state is unknown")
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

    def trip_manual(self, time_ns: int, reason: str) -> TripEvent:
        """Halt new entries by hand. An ESS that is already halted keeps its first trip."""
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
        """Lift a trip. Raises ConfigurationError when ``authorised_by`` is empty."""
        if not authorised_by.strip():
            raise ConfigurationError(
                "an emergency stop reset needs the name of the person who authorised it; "
                "pass authorised_by"
            )
        if self._trip is None:
            logger.info("ESS reset by %s at %d ns: it was not halted.", authorised_by, time_ns)
            return
        logger.warning(
            "ESS reset by %s at %d ns; it was halted by %s since %d ns.",
            authorised_by,
            time_ns,
            self._trip.reason,
            self._trip.time_ns,
        )
        self._trip = None
        if self._last_equity is not None:
            self._peak = self._last_equity
            self._day_start = self._last_equity

    def to_dict(self) -> dict[str, Any]:
        """Serialise the state (JSON-compatible) so a restart keeps the latch.

        ``state`` is for readers of the stored state; ``from_dict`` derives it from ``trip``.
        """
        trip = self._trip
        return {
            "version": STATE_FORMAT_VERSION,
            "state": self.state,
            "day": self._day,
            "day_start_equity": self._day_start,
            "peak_equity": self._peak,
            "last_equity": self._last_equity,
            "trip": None
            if trip is None
            else {
                "time_ns": trip.time_ns,
                "reason": trip.reason,
                "numbers": dict(trip.numbers),
                "detail": trip.detail,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], settings: EmergencyStopSettings) -> EmergencyStop:
        """Rebuild an ESS from ``to_dict`` output; a halted ESS comes back halted.

        Raises ConfigurationError when the stored state is missing a key or has an unknown
        version or trip reason.
        """
        version = data.get("version")
        if version != STATE_FORMAT_VERSION:
            raise ConfigurationError(
                f"stored ESS state has version {version!r}, expected {STATE_FORMAT_VERSION}; "
                "reset the ESS state or upgrade Quantum Trader"
            )
        try:
            ess = cls(settings)
            ess._day = data["day"]
            ess._day_start = float(data["day_start_equity"])
            ess._peak = float(data["peak_equity"])
            last = data["last_equity"]
            ess._last_equity = None if last is None else float(last)
            ess._trip = _trip_from_dict(data["trip"])
        except KeyError as exc:
            raise ConfigurationError(
                f"stored ESS state is missing the key {exc.args[0]!r}; reset the ESS state"
            ) from exc
        return ess

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
        self._trip = event
        logger.warning(
            "Emergency stop tripped (%s) at %d ns: %s. New entries are halted until an "
            "authorised reset.",
            event.reason,
            event.time_ns,
            event.detail,
        )
        return event


def _trip_from_dict(data: Mapping[str, Any] | None) -> TripEvent | None:
    if data is None:
        return None
    reason = data["reason"]
    if reason not in _TRIP_REASONS:
        raise ConfigurationError(
            f"stored ESS trip has the unknown reason {reason!r}; expected one of "
            f"{', '.join(_TRIP_REASONS)}"
        )
    numbers = {str(key): float(value) for key, value in data["numbers"].items()}
    return TripEvent(int(data["time_ns"]), reason, numbers, str(data.get("detail", "")))
