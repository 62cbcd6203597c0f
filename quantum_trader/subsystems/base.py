"""What every AI subsystem shares: a mode, a cadence, a decision record and a heartbeat.

Modes:

- ``off``: not run at all.
- ``observe``: computes and records its verdicts, changes nothing.
- ``advisory``: records a recommendation the next layer may use; binding only where that layer
  chooses to follow it.
- ``enforced``: its verdict binds (a veto blocks the candidate, a resize changes the size).
"""

from __future__ import annotations

import time
from enum import StrEnum

from quantum_trader.engine.decisions import Action, Decision, DecisionLog


class Mode(StrEnum):
    OFF = "off"
    OBSERVE = "observe"
    ADVISORY = "advisory"
    ENFORCED = "enforced"


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPED = "stopped"


# A heartbeat older than this many seconds makes a running subsystem degraded.
DEFAULT_MAX_HEARTBEAT_AGE = 60.0


class Subsystem:
    """Base class: name, short name, mode, cadence in candles, decision counters, heartbeat.

    ``cadence`` is how many candles pass between two evaluations (1 = every candle). The
    counters feed the report's contributions table: ``seen`` candidates examined, ``changed``
    candidates whose outcome the subsystem altered (resized, re-ranked, re-weighted), and
    ``vetoed`` candidates it blocked while enforced.
    """

    name = "subsystem"
    short_name = "subsystem"

    def __init__(self, mode: Mode, cadence: int, log: DecisionLog | None = None) -> None:
        if cadence < 1:
            raise ValueError(f"{self.name}: cadence must be at least 1 candle, got {cadence}")
        self.mode = mode
        self.cadence = cadence
        self.log = log if log is not None else DecisionLog()
        self.seen = 0
        self.changed = 0
        self.vetoed = 0
        self.last_heartbeat: float | None = None
        self.last_decision: Decision | None = None
        self.running = False
        self.last_error: str | None = None
        self.errors = 0

    @property
    def active(self) -> bool:
        return self.mode is not Mode.OFF

    @property
    def binding(self) -> bool:
        return self.mode is Mode.ENFORCED

    def heartbeat(self) -> None:
        self.last_heartbeat = time.time()

    def start(self) -> None:
        """Mark the subsystem running and beat once; subclasses extend this with their setup."""
        self.running = True
        self.last_error = None
        self.heartbeat()

    def stop(self) -> None:
        self.running = False

    def fail(self, error: BaseException | str) -> None:
        """Record a failure: the subsystem stops running until it is started again."""
        self.running = False
        self.errors += 1
        self.last_error = str(error)

    def health(
        self, now: float | None = None, max_age: float = DEFAULT_MAX_HEARTBEAT_AGE
    ) -> Health:
        """Return healthy only while running with a heartbeat younger than ``max_age`` seconds."""
        if self.last_error is not None and not self.running:
            return Health.FAILED
        if not self.running:
            return Health.STOPPED
        if self.last_heartbeat is None:
            return Health.DEGRADED
        age = (time.time() if now is None else now) - self.last_heartbeat
        return Health.HEALTHY if age <= max_age else Health.DEGRADED

    def record(
        self,
        time_ns: int,
        symbol: str,
        action: Action,
        reason: str,
        numbers: dict[str, float] | None = None,
    ) -> Decision:
        """Append a decision to the log, tagged with this subsystem's name and mode."""
        decision = Decision(
            time_ns, symbol, self.short_name, action, f"[{self.mode}] {reason}", numbers or {}
        )
        self.log.record(decision)
        self.last_decision = decision
        return decision

    def counters(self) -> dict[str, int]:
        return {"seen": self.seen, "changed": self.changed, "vetoed": self.vetoed}
