"""Events the paper trader publishes besides the kernel's orders, fills and decisions.

``candle``: each symbol's candle of a processed step. ``signal``: a strategy profile's entry or
exit on that candle, with the ensemble's votes. ``health``: a subsystem whose health changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from quantum_trader.subsystems.registry import SubsystemRegistry


def iso_time(time_ns: int) -> str:
    """Return ``time_ns`` (ns UTC) as ISO 8601 with the UTC offset."""
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat()


@dataclass(frozen=True, slots=True)
class CandleEvent:
    """One closed candle as the trader processed it (``time`` is its open, ISO 8601 UTC)."""

    symbol: str
    time: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    synthetic: bool


@dataclass(frozen=True, slots=True)
class SignalEvent:
    """The profiles' signals on a candle where at least one profile enters or exits.

    ``profiles`` maps a profile name to its entry (+1 long, -1 short, 0 none), exit and
    confidence. ``votes`` maps each ensemble member to its probability of a rise.
    """

    symbol: str
    time: str
    profiles: dict[str, dict[str, float | int | bool | None]]
    votes: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """A subsystem's health changed from ``previous`` to ``health``."""

    name: str
    short_name: str
    previous: str | None
    health: str
    time: str


@dataclass
class HealthWatch:
    """Remembers each subsystem's last health and reports the changes."""

    last: dict[str, str] = field(default_factory=dict)

    def changes(self, registry: SubsystemRegistry, now_ns: int) -> list[HealthEvent]:
        """Return one event per subsystem whose health differs from the previous call."""
        events = []
        for row in registry.status():
            health = str(row.health)
            previous = self.last.get(row.short_name)
            if health != previous:
                events.append(
                    HealthEvent(row.name, row.short_name, previous, health, iso_time(now_ns))
                )
                self.last[row.short_name] = health
        return events
