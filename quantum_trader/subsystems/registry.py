"""The subsystem registry: start order, integration stage, status and task supervision.

Subsystems are registered under their short name with the names they depend on. ``start``
starts them in dependency order (ties in registration order) and ``stop`` stops them in the
reverse order.

The integration stage caps every subsystem's mode, so a new deployment can let the subsystems
observe first and bind later. A subsystem never runs above its configured mode, and ``off``
stays off at every stage:

============  ==========================================================================
stage         highest mode allowed
============  ==========================================================================
observation   observe, for every subsystem
partial       advisory, except the safety subsystems (ESS, Trading Mathematician), which
              keep enforced
coordination  enforced, except the autonomy-only subsystems (PAL, AI-HFOS), whose
              amplification and directives stay advisory
autonomy      enforced, for every subsystem (no cap)
============  ==========================================================================

Both name sets are constructor arguments. The stage never overwrites the configured mode, so
raising the stage again restores it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from quantum_trader.engine.decisions import Action
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import DEFAULT_MAX_HEARTBEAT_AGE, Health, Mode, Subsystem

logger = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[None]]
FailureListener = Callable[[str, BaseException], None]

SAFETY_SUBSYSTEMS = frozenset({"ESS", "Trading Mathematician"})
AUTONOMY_ONLY_SUBSYSTEMS = frozenset({"PAL", "AI-HFOS"})

_MODE_RANK = {Mode.OFF: 0, Mode.OBSERVE: 1, Mode.ADVISORY: 2, Mode.ENFORCED: 3}


class IntegrationStage(StrEnum):
    OBSERVATION = "observation"
    PARTIAL = "partial"
    COORDINATION = "coordination"
    AUTONOMY = "autonomy"


class SubsystemStartError(ConfigurationError):
    """A subsystem failed to start, so the registry stopped the ones started before it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"subsystem {name} failed to start: {reason}. The subsystems started before it "
            "were stopped again; fix the cause and start the service again."
        )
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SubsystemStatus:
    """One row of the status API."""

    name: str
    short_name: str
    mode: Mode
    health: Health
    last_heartbeat: str | None
    last_decision: str | None
    last_error: str | None
    errors: int
    counters: dict[str, int]


def stage_cap(
    stage: IntegrationStage,
    short_name: str,
    safety: frozenset[str] = SAFETY_SUBSYSTEMS,
    autonomy_only: frozenset[str] = AUTONOMY_ONLY_SUBSYSTEMS,
) -> Mode:
    """Return the highest mode ``stage`` allows for the subsystem named ``short_name``."""
    if stage is IntegrationStage.OBSERVATION:
        return Mode.OBSERVE
    if stage is IntegrationStage.PARTIAL:
        return Mode.ENFORCED if short_name in safety else Mode.ADVISORY
    if stage is IntegrationStage.COORDINATION:
        return Mode.ADVISORY if short_name in autonomy_only else Mode.ENFORCED
    return Mode.ENFORCED


def cap_mode(mode: Mode, cap: Mode) -> Mode:
    """Return ``mode`` lowered to ``cap`` when it is above it."""
    return mode if _MODE_RANK[mode] <= _MODE_RANK[cap] else cap


def _iso_utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


async def _run(factory: TaskFactory) -> None:
    # A task needs a coroutine, and the factory may return any awaitable.
    await factory()


class SubsystemRegistry:
    """Owns every subsystem: registration, start and stop order, modes, status and tasks."""

    def __init__(
        self,
        stage: IntegrationStage = IntegrationStage.AUTONOMY,
        safety_subsystems: Iterable[str] = SAFETY_SUBSYSTEMS,
        autonomy_only_subsystems: Iterable[str] = AUTONOMY_ONLY_SUBSYSTEMS,
        max_heartbeat_age: float = DEFAULT_MAX_HEARTBEAT_AGE,
    ) -> None:
        self._safety = frozenset(safety_subsystems)
        self._autonomy_only = frozenset(autonomy_only_subsystems)
        overlap = self._safety & self._autonomy_only
        if overlap:
            raise ConfigurationError(
                f"subsystems {sorted(overlap)} are both safety subsystems and autonomy-only "
                "subsystems; put each name in one of the two sets only"
            )
        self.stage = IntegrationStage(stage)
        self.max_heartbeat_age = max_heartbeat_age
        self._subsystems: dict[str, Subsystem] = {}
        self._depends_on: dict[str, tuple[str, ...]] = {}
        self._configured: dict[str, Mode] = {}
        self._started: list[str] = []
        self._factories: dict[str, TaskFactory] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[FailureListener] = []

    # Registration and dependency order.

    @property
    def subsystems(self) -> Mapping[str, Subsystem]:
        """The registered subsystems by short name, in registration order (a copy)."""
        return dict(self._subsystems)

    def get(self, name: str) -> Subsystem:
        """Return the subsystem registered as ``name``; raise ConfigurationError when unknown."""
        subsystem = self._subsystems.get(name)
        if subsystem is None:
            known = ", ".join(self._subsystems) or "none"
            raise ConfigurationError(
                f"no subsystem is registered as {name!r}; registered subsystems: {known}"
            )
        return subsystem

    def register(self, subsystem: Subsystem, depends_on: Sequence[str] = ()) -> None:
        """Register ``subsystem`` under its short name, after the ones it depends on.

        Raises ConfigurationError on a duplicate name, a dependency that is not registered yet
        or a subsystem that depends on itself.
        """
        name = subsystem.short_name
        if isinstance(depends_on, str):
            depends_on = (depends_on,)
        if name in self._subsystems:
            raise ConfigurationError(
                f"a subsystem named {name!r} is already registered; give each a unique short name"
            )
        if name in depends_on:
            raise ConfigurationError(f"subsystem {name!r} depends on itself, a cyclic dependency")
        unknown = [dependency for dependency in depends_on if dependency not in self._subsystems]
        if unknown:
            raise ConfigurationError(
                f"subsystem {name!r} depends on {unknown}, which are not registered; "
                "register dependencies first"
            )
        self._subsystems[name] = subsystem
        self._depends_on[name] = tuple(dict.fromkeys(depends_on))
        self._configured[name] = Mode(subsystem.mode)
        subsystem.mode = self.effective_mode(name)

    def add_dependency(self, name: str, depends_on: str) -> None:
        """Make ``name`` start after ``depends_on``, both already registered.

        Raises ConfigurationError naming the cycle when the new edge would close one.
        """
        self.get(name)
        self.get(depends_on)
        path = self._path(depends_on, name)
        if path is not None:
            cycle = " -> ".join([name, *path])
            raise ConfigurationError(
                f"subsystem {name!r} cannot depend on {depends_on!r}: cyclic dependency {cycle}"
            )
        if depends_on not in self._depends_on[name]:
            self._depends_on[name] = (*self._depends_on[name], depends_on)

    def _path(self, start: str, goal: str) -> list[str] | None:
        """Return a dependency path from ``start`` to ``goal``, or None when there is none."""
        if start == goal:
            return [start]
        for dependency in self._depends_on[start]:
            rest = self._path(dependency, goal)
            if rest is not None:
                return [start, *rest]
        return None

    def start_order(self) -> list[str]:
        """Return the short names in dependency order, ties broken by registration order."""
        order: list[str] = []
        placed: set[str] = set()
        while len(order) < len(self._subsystems):
            # The registration graph is acyclic, so every pass places at least one name.
            for name, dependencies in self._depends_on.items():
                if name not in placed and placed.issuperset(dependencies):
                    order.append(name)
                    placed.add(name)
                    break
        return order

    # Start and stop.

    def start(self, *, quiet: bool = False) -> None:
        """Start every subsystem in dependency order; the ones already started are skipped.

        When one fails to start, it is marked failed, the ones already started are stopped in
        reverse order and SubsystemStartError names it and its reason. ``quiet`` logs the
        successful starts at DEBUG instead of INFO (for a session rebuilt behind a running one).
        """
        level = logging.DEBUG if quiet else logging.INFO
        for name in self.start_order():
            if name in self._started:
                continue
            subsystem = self._subsystems[name]
            try:
                subsystem.start()
            except Exception as exc:
                subsystem.fail(exc)
                logger.error("Subsystem %s failed to start: %s. Stopping the others.", name, exc)
                self.stop()
                raise SubsystemStartError(name, str(exc) or type(exc).__name__) from exc
            self._started.append(name)
            logger.log(level, "Subsystem %s started in %s mode.", name, subsystem.mode)

    def stop(self, *, quiet: bool = False) -> None:
        """Stop the started subsystems in reverse start order, logging any stop that fails.

        ``quiet`` logs the successful stops at DEBUG instead of INFO.
        """
        level = logging.DEBUG if quiet else logging.INFO
        while self._started:
            name = self._started.pop()
            try:
                self._subsystems[name].stop()
            except Exception:
                logger.exception("Subsystem %s failed to stop; stopping the others.", name)
            else:
                logger.log(level, "Subsystem %s stopped.", name)

    def restart(self, name: str) -> None:
        """Start ``name`` again, with a new task when one is attached.

        A subsystem with a task must be restarted inside a running event loop. Exceptions from
        ``start`` propagate to the caller.
        """
        subsystem = self.get(name)
        subsystem.start()
        if name not in self._started:
            self._started.append(name)
        if name in self._factories:
            self._launch(name)
        logger.info("Subsystem %s restarted.", name)

    # Integration stage and modes.

    def effective_mode(self, name: str) -> Mode:
        """Return the configured mode of ``name`` capped by the current stage."""
        self.get(name)
        cap = stage_cap(self.stage, name, self._safety, self._autonomy_only)
        return cap_mode(self._configured[name], cap)

    def configured_mode(self, name: str) -> Mode:
        """Return the mode set for ``name`` before the stage cap."""
        self.get(name)
        return self._configured[name]

    def set_mode(self, name: str, mode: Mode | str) -> Mode:
        """Set the configured mode of ``name``, apply the stage cap and record the change.

        Returns the effective mode. Raises ConfigurationError on an unknown name or mode.
        """
        subsystem = self.get(name)
        try:
            new_mode = Mode(mode)
        except ValueError:
            allowed = ", ".join(m.value for m in Mode)
            raise ConfigurationError(
                f"invalid mode {mode!r} for subsystem {name}; use one of: {allowed}"
            ) from None
        old_mode = self._configured[name]
        self._configured[name] = new_mode
        subsystem.mode = self.effective_mode(name)
        reason = (
            f"mode set from {old_mode} to {new_mode}; "
            f"effective {subsystem.mode} at the {self.stage} stage"
        )
        subsystem.record(time.time_ns(), "*", Action.MODE_CHANGE, reason)
        logger.info("Subsystem %s: %s.", name, reason)
        return subsystem.mode

    def set_stage(self, stage: IntegrationStage | str) -> None:
        """Switch the integration stage and apply its cap to every subsystem's mode."""
        try:
            self.stage = IntegrationStage(stage)
        except ValueError:
            allowed = ", ".join(s.value for s in IntegrationStage)
            raise ConfigurationError(
                f"invalid integration stage {stage!r}; use one of: {allowed}"
            ) from None
        for name, subsystem in self._subsystems.items():
            subsystem.mode = self.effective_mode(name)
        logger.info("Integration stage set to %s.", self.stage)

    # Status.

    def status(self, now: float | None = None) -> list[SubsystemStatus]:
        """Return one status row per subsystem in registration order.

        ``now`` is the Unix time in seconds used for the heartbeat age (default: the clock).
        """
        rows = []
        for name, subsystem in self._subsystems.items():
            decision = subsystem.last_decision
            rows.append(
                SubsystemStatus(
                    name=type(subsystem).__name__,
                    short_name=name,
                    mode=subsystem.mode,
                    health=subsystem.health(now, self.max_heartbeat_age),
                    last_heartbeat=_iso_utc(subsystem.last_heartbeat),
                    last_decision=None if decision is None else decision.reason,
                    last_error=subsystem.last_error,
                    errors=subsystem.errors,
                    counters=subsystem.counters(),
                )
            )
        return rows

    # Task supervision for the service.

    def attach_task(self, name: str, factory: TaskFactory) -> None:
        """Register the coroutine factory that runs ``name``'s loop in service mode."""
        self.get(name)
        if name in self._factories:
            raise ConfigurationError(f"subsystem {name} already has a task attached")
        self._factories[name] = factory

    def on_failure(self, callback: FailureListener) -> None:
        """Call ``callback(short_name, exception)`` whenever a subsystem task fails."""
        self._listeners.append(callback)

    def task(self, name: str) -> asyncio.Task[None] | None:
        """Return the current asyncio task of ``name``, or None."""
        return self._tasks.get(name)

    async def start_tasks(self) -> None:
        """Create one asyncio task per attached factory, in start order."""
        for name in self.start_order():
            current = self._tasks.get(name)
            if name in self._factories and (current is None or current.done()):
                self._launch(name)

    async def stop_tasks(self) -> None:
        """Cancel every task in reverse start order and wait until they have ended."""
        tasks = [
            self._tasks.pop(name) for name in reversed(self.start_order()) if name in self._tasks
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _launch(self, name: str) -> None:
        old = self._tasks.pop(name, None)
        if old is not None and not old.done():
            old.cancel()
        task = asyncio.get_running_loop().create_task(_run(self._factories[name]), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._on_task_done(name, done))

    def _on_task_done(self, name: str, task: asyncio.Task[None]) -> None:
        # A replaced or cancelled task does not reflect the subsystem's current state.
        if self._tasks.get(name) is not task or task.cancelled():
            return
        subsystem = self._subsystems[name]
        error = task.exception()
        if error is None:
            logger.warning("The task of subsystem %s returned; marking it stopped.", name)
            subsystem.stop()
            return
        logger.error("The task of subsystem %s failed: %r", name, error, exc_info=error)
        subsystem.fail(error)
        for listener in self._listeners:
            try:
                listener(name, error)
            except Exception:
                logger.exception("A failure listener raised while handling subsystem %s.", name)
