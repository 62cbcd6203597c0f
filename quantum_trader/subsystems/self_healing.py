"""Self-Healing: watches heartbeats and dependencies and restarts failed subsystems.

Each ``check`` reports every registered subsystem's health and the result of every dependency
check. A failed subsystem is restarted after a backoff delay of ``backoff_base * 2**(n - 1)``
seconds, capped at ``backoff_max``, where ``n`` is the number of its failures within the last
``restart_window`` seconds (1, 2, 4 ... s with the defaults). At most ``max_restarts`` restarts
happen within the window: the next failure stops the restarts and calls the configured action
once, either tripping the ESS or switching to the safe profile. After a person has fixed the
cause, ``reset`` clears that subsystem's failure history.

A stale heartbeat (older than ``max_heartbeat_age``) is reported degraded but not restarted.
In observe or advisory mode every action is recorded as non-binding and nothing is changed.
Counters: ``seen`` counts subsystems examined, ``changed`` counts restarts and escalations
performed, ``vetoed`` stays 0.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Health, Mode, Subsystem
from quantum_trader.subsystems.registry import SubsystemRegistry

logger = logging.getLogger(__name__)

DependencyCheck = Callable[[], str | None]
RepeatedFailureAction = Literal["safe_profile", "trip_ess"]
HealingActionKind = Literal["restart", "trip_ess", "safe_profile"]


class HealingSettings(BaseModel):
    """Self-Healing settings; times in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(1, ge=1, le=100_000, description="Candles between two health checks.")
    max_heartbeat_age: float = Field(
        60.0, gt=0, le=86_400, description="Heartbeat age in seconds above which it is degraded."
    )
    backoff_base: float = Field(
        1.0, gt=0, le=3_600, description="Delay in seconds before the first restart."
    )
    backoff_max: float = Field(
        60.0, gt=0, le=86_400, description="Maximum delay in seconds before a restart."
    )
    max_restarts: int = Field(
        3, ge=0, le=100, description="Restarts allowed per subsystem within the window."
    )
    restart_window: float = Field(
        600.0, gt=0, le=604_800, description="Seconds over which failures are counted."
    )
    on_repeated_failure: RepeatedFailureAction = "trip_ess"

    @model_validator(mode="after")
    def _check_backoff(self) -> HealingSettings:
        if self.backoff_max < self.backoff_base:
            raise ValueError(
                f"backoff_max ({self.backoff_max} s) is below backoff_base "
                f"({self.backoff_base} s); raise backoff_max or lower backoff_base"
            )
        return self


@dataclass(frozen=True, slots=True)
class HealingAction:
    """One recovery action; ``performed`` is False when not binding or when it raised."""

    subsystem: str
    action: HealingActionKind
    attempt: int
    reason: str
    binding: bool
    performed: bool


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Health per subsystem (as found, before any action), dependency errors and actions."""

    time: float
    subsystems: dict[str, Health]
    dependencies: dict[str, str | None]
    actions: list[HealingAction]

    @property
    def healthy(self) -> bool:
        """True when every subsystem is healthy and every dependency check passed."""
        return all(h is Health.HEALTHY for h in self.subsystems.values()) and not any(
            self.dependencies.values()
        )


@dataclass(slots=True)
class _Recovery:
    errors_seen: int
    failures: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    attempt: int = 0
    restarts: int = 0
    escalated: bool = False
    advised: bool = False


class EventBusProtocol(Protocol):
    def subscribe(self, topic: str, handler: Callable[[Any], None]) -> None: ...

    def unsubscribe(self, topic: str, handler: Callable[[Any], None]) -> None: ...

    def publish(self, topic: str, event: Any) -> None: ...


def backoff_delay(attempt: int, base: float, maximum: float) -> float:
    """Return the delay in seconds before restart ``attempt`` (1-based): base doubled, capped."""
    if attempt < 1:
        raise ValueError(f"restart attempt must be at least 1, got {attempt}")
    # The exponent is capped so a long failure history cannot overflow the float.
    return min(base * 2.0 ** min(attempt - 1, 64), maximum)


def data_freshness_check(
    last_candle_time: Callable[[], float],
    max_age_s: float,
    clock: Callable[[], float] = time.time,
) -> DependencyCheck:
    """Build a check that fails when the last candle (Unix seconds) is older than ``max_age_s``.

    ``last_candle_time`` returns NaN while no candle has arrived yet.
    """
    if not max_age_s > 0:
        raise ConfigurationError(f"max_age_s must be a positive number of seconds, got {max_age_s}")

    def check() -> str | None:
        last = last_candle_time()
        if last != last:
            return "no market data has been received yet"
        age = clock() - last
        if age > max_age_s:
            return (
                f"market data is stale: the last candle is {age:.0f} s old, "
                f"above the limit of {max_age_s:g} s"
            )
        return None

    return check


_probe_ids = itertools.count(1)


def event_bus_check(bus: EventBusProtocol) -> DependencyCheck:
    """Build a check that publishes a probe on a private topic and verifies its handler ran."""
    topic = f"self_healing.probe.{next(_probe_ids)}"

    def check() -> str | None:
        token = object()
        received: list[object] = []
        handler = received.append
        bus.subscribe(topic, handler)
        try:
            bus.publish(topic, token)
        finally:
            bus.unsubscribe(topic, handler)
        if token not in received:
            return f"the event bus did not deliver a probe event on topic {topic}"
        return None

    return check


class SelfHealing(Subsystem):
    """Health checks and restarts with backoff; escalates through injected callables.

    ``trip`` receives a reason and must trip the ESS; ``safe_profile`` receives a reason and
    must switch the system to its safe profile. The one that ``on_repeated_failure`` names is
    required.
    """

    name = "Self-Healing"
    short_name = "Self-Healing"

    def __init__(
        self,
        settings: HealingSettings,
        trip: Callable[[str], None] | None = None,
        safe_profile: Callable[[str], None] | None = None,
        log: DecisionLog | None = None,
    ) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        needed = trip if settings.on_repeated_failure == "trip_ess" else safe_profile
        if needed is None:
            argument = "trip" if settings.on_repeated_failure == "trip_ess" else "safe_profile"
            raise ConfigurationError(
                f"Self-Healing is set to {settings.on_repeated_failure} after repeated failures "
                f"but no {argument} callable was given; pass {argument}=..."
            )
        self.settings = settings
        self._trip = trip
        self._safe_profile = safe_profile
        self._checks: dict[str, DependencyCheck] = {}
        self._dependency_errors: dict[str, str | None] = {}
        self._recovery: dict[str, _Recovery] = {}
        self._last_health: dict[str, Health] = {}

    def add_dependency_check(self, name: str, check: DependencyCheck) -> None:
        """Register ``check``, which returns an error text or None, under ``name``."""
        if name in self._checks:
            raise ConfigurationError(f"a dependency check named {name!r} is already registered")
        self._checks[name] = check

    def restart_count(self, name: str) -> int:
        """Return how many times Self-Healing has restarted the subsystem ``name``."""
        recovery = self._recovery.get(name)
        return 0 if recovery is None else recovery.restarts

    def reset(self, name: str) -> None:
        """Forget the failures of ``name`` so restarts resume; call once the cause is fixed."""
        self._recovery.pop(name, None)

    def check(self, now: float, registry: SubsystemRegistry) -> HealthReport:
        """Check every subsystem and dependency at Unix time ``now`` and act on failures."""
        self.heartbeat()
        health: dict[str, Health] = {}
        actions: list[HealingAction] = []
        for name, subsystem in registry.subsystems.items():
            state = subsystem.health(now, self.settings.max_heartbeat_age)
            health[name] = state
            self._log_transition(name, state, subsystem.last_error)
            if subsystem is self:
                continue
            self.seen += 1
            action = self._recover(now, name, subsystem, registry, state)
            if action is not None:
                actions.append(action)
        dependencies = self._run_dependency_checks()
        return HealthReport(now, health, dependencies, actions)

    def _recover(
        self,
        now: float,
        name: str,
        subsystem: Subsystem,
        registry: SubsystemRegistry,
        state: Health,
    ) -> HealingAction | None:
        failed = state is Health.FAILED
        # Failures from before Self-Healing first saw the subsystem are not counted.
        recovery = self._recovery.setdefault(
            name, _Recovery(errors_seen=max(subsystem.errors - int(failed), 0))
        )
        for _ in range(subsystem.errors - recovery.errors_seen):
            recovery.failures.append(now)
        recovery.errors_seen = subsystem.errors
        while recovery.failures and recovery.failures[0] < now - self.settings.restart_window:
            recovery.failures.popleft()

        if not failed or recovery.escalated:
            if not failed:
                recovery.restart_at = None
                recovery.advised = False
            return None
        count = len(recovery.failures)
        if count > self.settings.max_restarts:
            return self._escalate(now, name, subsystem, recovery, count)
        restart_at = recovery.restart_at
        if restart_at is None:
            restart_at = self._schedule(now, recovery)
        if now < restart_at:
            return None
        return self._restart(now, name, subsystem, registry, recovery)

    def _schedule(self, now: float, recovery: _Recovery) -> float:
        """Set the next restart time from the failures in the window and return it."""
        recovery.attempt = max(len(recovery.failures), 1)
        delay = backoff_delay(
            recovery.attempt, self.settings.backoff_base, self.settings.backoff_max
        )
        recovery.restart_at = now + delay
        return recovery.restart_at

    def _restart(
        self,
        now: float,
        name: str,
        subsystem: Subsystem,
        registry: SubsystemRegistry,
        recovery: _Recovery,
    ) -> HealingAction | None:
        attempt = recovery.attempt
        numbers = {"attempt": float(attempt), "failures_in_window": float(len(recovery.failures))}
        cause = f"subsystem {name} failed ({subsystem.last_error})"
        if not self.binding:
            if recovery.advised:
                return None
            recovery.advised = True
            reason = f"not enforced, would restart: {cause}, attempt {attempt}"
            self.record(_to_ns(now), "*", Action.APPROVE, reason, numbers)
            return HealingAction(name, "restart", attempt, reason, False, False)

        recovery.restart_at = None
        try:
            registry.restart(name)
        except Exception as exc:
            # A failed restart is a failure too: it counts towards the limit and the next
            # attempt waits the longer backoff from now.
            subsystem.fail(exc)
            recovery.failures.append(now)
            recovery.errors_seen = subsystem.errors
            self._schedule(now, recovery)
            reason = f"restart attempt {attempt} of subsystem {name} failed: {exc}"
            logger.error("Self-Healing: %s.", reason)
            self.record(_to_ns(now), "*", Action.RESTART, reason, numbers)
            return HealingAction(name, "restart", attempt, reason, True, False)
        recovery.restarts += 1
        self.changed += 1
        reason = f"restarted after {cause}, attempt {attempt}"
        logger.warning("Self-Healing %s.", reason)
        self.record(_to_ns(now), "*", Action.RESTART, reason, numbers)
        return HealingAction(name, "restart", attempt, reason, True, True)

    def _escalate(
        self, now: float, name: str, subsystem: Subsystem, recovery: _Recovery, count: int
    ) -> HealingAction:
        kind: HealingActionKind = self.settings.on_repeated_failure
        window = self.settings.restart_window
        reason = (
            f"subsystem {name} failed {count} times within {window:g} s, more than the "
            f"{self.settings.max_restarts} restarts allowed; last error: {subsystem.last_error}"
        )
        numbers = {"failures_in_window": float(count), "window_s": window}
        action = Action.TRIP if kind == "trip_ess" else Action.MODE_CHANGE
        if not self.binding:
            recovery.escalated = True
            note = f"not enforced, would {kind}: {reason}"
            self.record(_to_ns(now), "*", Action.APPROVE, note, numbers)
            return HealingAction(name, kind, count, note, False, False)

        callback = self._trip if kind == "trip_ess" else self._safe_profile
        assert callback is not None  # the constructor requires the configured one
        try:
            callback(reason)
        except Exception as exc:
            # Escalation stays pending, so the next check tries it again.
            note = f"{kind} failed ({exc}) for: {reason}"
            logger.exception("Self-Healing: %s.", note)
            self.record(_to_ns(now), "*", action, note, numbers)
            return HealingAction(name, kind, count, note, True, False)
        recovery.escalated = True
        self.changed += 1
        logger.error("Self-Healing stopped restarting and called %s: %s.", kind, reason)
        self.record(_to_ns(now), "*", action, f"{kind}: {reason}", numbers)
        return HealingAction(name, kind, count, reason, True, True)

    def _run_dependency_checks(self) -> dict[str, str | None]:
        results: dict[str, str | None] = {}
        for name, check in self._checks.items():
            try:
                error = check()
            except Exception as exc:
                error = f"the check raised {type(exc).__name__}: {exc}"
            previous = self._dependency_errors.get(name)
            if error is not None and previous is None:
                logger.warning("Dependency %s failed its health check: %s.", name, error)
            elif error is None and previous is not None:
                logger.info("Dependency %s passed its health check again.", name)
            self._dependency_errors[name] = error
            results[name] = error
        return results

    def _log_transition(self, name: str, state: Health, error: str | None) -> None:
        previous = self._last_health.get(name)
        self._last_health[name] = state
        if previous is None or previous is state:
            return
        if state is Health.FAILED:
            logger.error("Subsystem %s failed: %s.", name, error)
        elif state is Health.DEGRADED:
            logger.warning("Subsystem %s is degraded: its heartbeat is missing or stale.", name)
        else:
            logger.info("Subsystem %s is %s.", name, state)


def _to_ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
