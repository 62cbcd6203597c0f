"""Self-Healing: health report, restarts with backoff, escalation and dependency checks.

Times are a fake clock passed as ``now`` (seconds); nothing sleeps. With the defaults the
restart delay before attempt n is 1 * 2**(n - 1) s: 1 s, 2 s, 4 s, and 3 restarts are allowed
within 600 s, so the 4th failure inside the window escalates.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from quantum_trader.engine.bus import EventBus
from quantum_trader.engine.decisions import Action
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Health, Mode, Subsystem
from quantum_trader.subsystems.registry import SubsystemRegistry
from quantum_trader.subsystems.self_healing import (
    HealingSettings,
    SelfHealing,
    backoff_delay,
    data_freshness_check,
    event_bus_check,
)


class Worker(Subsystem):
    name = "Worker"
    short_name = "Worker"

    def __init__(self) -> None:
        super().__init__(Mode.ENFORCED, 1)
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        super().start()


def setup(
    settings: HealingSettings | None = None,
) -> tuple[SubsystemRegistry, Worker, SelfHealing, list[str]]:
    trips: list[str] = []
    registry = SubsystemRegistry()
    worker = Worker()
    healing = SelfHealing(settings or HealingSettings(), trip=trips.append)
    registry.register(worker)
    registry.register(healing)
    registry.start()
    return registry, worker, healing, trips


def crash_and_recover(
    healing: SelfHealing, registry: SubsystemRegistry, worker: Worker, at: float, delay: float
) -> None:
    """Fail the worker at ``at`` and run checks just before and at ``at + delay``."""
    worker.fail(RuntimeError("order book feed lost"))
    assert healing.check(at, registry).actions == []
    assert healing.check(at + delay - 0.5, registry).actions == []
    (action,) = healing.check(at + delay, registry).actions
    assert action.action == "restart"


# Backoff.


def test_backoff_doubles_from_one_second() -> None:
    assert backoff_delay(1, 1.0, 60.0) == 1.0
    assert backoff_delay(2, 1.0, 60.0) == 2.0
    assert backoff_delay(3, 1.0, 60.0) == 4.0


def test_backoff_capped_at_maximum() -> None:
    # 1 * 2**6 = 64 s is above the 60 s cap.
    assert backoff_delay(7, 1.0, 60.0) == 60.0
    assert backoff_delay(1000, 1.0, 60.0) == 60.0


def test_backoff_attempt_zero_rejected() -> None:
    with pytest.raises(ValueError, match="at least 1, got 0"):
        backoff_delay(0, 1.0, 60.0)


def test_restarts_wait_one_two_four_seconds() -> None:
    registry, worker, healing, _ = setup()
    # Failures at 0, 10 and 20 s are the 1st, 2nd and 3rd within 600 s.
    for at, delay, attempt in ((0.0, 1.0, 1), (10.0, 2.0, 2), (20.0, 4.0, 3)):
        worker.fail(RuntimeError("order book feed lost"))
        assert healing.check(at, registry).actions == []
        assert healing.check(at + delay - 0.5, registry).actions == []
        (action,) = healing.check(at + delay, registry).actions
        assert action.action == "restart"
        assert action.attempt == attempt
        assert worker.running is True
    assert healing.restart_count("Worker") == 3
    assert worker.starts == 4


def test_restart_recorded_with_attempt() -> None:
    registry, worker, healing, _ = setup()
    crash_and_recover(healing, registry, worker, at=100.0, delay=1.0)
    decision = healing.last_decision
    assert decision is not None
    assert decision.action is Action.RESTART
    assert decision.time_ns == 101_000_000_000
    assert decision.numbers["attempt"] == 1.0
    assert "Worker" in decision.reason
    assert "order book feed lost" in decision.reason
    assert healing.changed == 1


# Escalation.


def test_fourth_failure_trips_ess_once() -> None:
    registry, worker, healing, trips = setup()
    crash_and_recover(healing, registry, worker, at=0.0, delay=1.0)
    crash_and_recover(healing, registry, worker, at=10.0, delay=2.0)
    crash_and_recover(healing, registry, worker, at=20.0, delay=4.0)
    worker.fail(RuntimeError("order book feed lost"))
    (action,) = healing.check(30.0, registry).actions
    assert healing.check(40.0, registry).actions == []
    assert healing.check(700.0, registry).actions == []
    assert action.action == "trip_ess"
    assert action.performed is True
    assert len(trips) == 1
    assert "subsystem Worker failed 4 times within 600 s" in trips[0]
    assert worker.running is False
    assert healing.restart_count("Worker") == 3
    decision = healing.last_decision
    assert decision is not None
    assert decision.action is Action.TRIP


def test_failures_outside_window_not_counted() -> None:
    registry, worker, healing, trips = setup()
    # Failures at 0, 250 and 500 s are restarted. At 750 s the one at 0 s is more than 600 s
    # old, so 3 failures remain in the window: a 3rd restart after 4 s, no trip.
    crash_and_recover(healing, registry, worker, at=0.0, delay=1.0)
    crash_and_recover(healing, registry, worker, at=250.0, delay=2.0)
    crash_and_recover(healing, registry, worker, at=500.0, delay=4.0)
    crash_and_recover(healing, registry, worker, at=750.0, delay=4.0)
    assert trips == []
    assert healing.restart_count("Worker") == 4


def test_safe_profile_action_called() -> None:
    profiles: list[str] = []
    registry = SubsystemRegistry()
    worker = Worker()
    settings = HealingSettings(on_repeated_failure="safe_profile", max_restarts=0)
    healing = SelfHealing(settings, safe_profile=profiles.append)
    registry.register(worker)
    registry.start()
    worker.fail("database locked")
    (action,) = healing.check(5.0, registry).actions
    assert action.action == "safe_profile"
    assert len(profiles) == 1
    assert "failed 1 times within 600 s" in profiles[0]
    assert "database locked" in profiles[0]
    assert healing.last_decision is not None
    assert healing.last_decision.action is Action.MODE_CHANGE


def test_missing_escalation_callable_rejected() -> None:
    with pytest.raises(ConfigurationError, match="no trip callable was given"):
        SelfHealing(HealingSettings())
    with pytest.raises(ConfigurationError, match="no safe_profile callable was given"):
        SelfHealing(HealingSettings(on_repeated_failure="safe_profile"), trip=lambda _: None)


def test_failing_trip_retried_next_check() -> None:
    calls: list[str] = []

    def trip(reason: str) -> None:
        calls.append(reason)
        if len(calls) == 1:
            raise ConnectionError("ESS store unavailable")

    registry = SubsystemRegistry()
    worker = Worker()
    healing = SelfHealing(HealingSettings(max_restarts=0), trip=trip)
    registry.register(worker)
    registry.start()
    worker.fail("feed lost")
    (first,) = healing.check(0.0, registry).actions
    (second,) = healing.check(1.0, registry).actions
    assert first.performed is False
    assert "ESS store unavailable" in first.reason
    assert second.performed is True
    assert len(calls) == 2


def test_reset_resumes_restarts() -> None:
    # One restart is allowed: the failure at 10 s is the 2nd within 600 s and trips the ESS.
    registry, worker, healing, trips = setup(HealingSettings(max_restarts=1))
    crash_and_recover(healing, registry, worker, at=0.0, delay=1.0)
    worker.fail("feed lost")
    (trip,) = healing.check(10.0, registry).actions
    healing.reset("Worker")
    assert healing.check(11.0, registry).actions == []
    (action,) = healing.check(12.0, registry).actions
    assert trip.action == "trip_ess"
    assert len(trips) == 1
    assert action.action == "restart"
    assert action.attempt == 1
    assert worker.running is True


def test_observe_mode_records_without_restarting() -> None:
    registry, worker, healing, _ = setup(HealingSettings(mode=Mode.OBSERVE))
    worker.fail("feed lost")
    healing.check(0.0, registry)
    (action,) = healing.check(1.0, registry).actions
    assert healing.check(2.0, registry).actions == []
    assert action.binding is False
    assert action.performed is False
    assert worker.running is False
    assert worker.starts == 1
    assert healing.last_decision is not None
    assert healing.last_decision.reason.startswith("[observe] not enforced, would restart")


def test_failing_restart_counted_as_failure() -> None:
    class Fragile(Worker):
        def start(self) -> None:
            super().start()
            if self.starts > 1:
                raise OSError("port 8080 in use")

    trips: list[str] = []
    registry = SubsystemRegistry()
    fragile = Fragile()
    healing = SelfHealing(HealingSettings(), trip=trips.append)
    registry.register(fragile)
    registry.start()
    fragile.fail("crashed")
    healing.check(0.0, registry)
    (failed,) = healing.check(1.0, registry).actions
    # The failed restart is the 2nd failure, so the next one waits 2 s.
    assert healing.check(2.5, registry).actions == []
    (second,) = healing.check(3.0, registry).actions
    assert failed.performed is False
    assert "port 8080 in use" in failed.reason
    assert second.attempt == 2
    assert fragile.errors == 3


# Health report.


def test_stale_heartbeat_reported_degraded() -> None:
    registry, worker, healing, _ = setup()
    worker.last_heartbeat = 1_000.0
    assert healing.check(1_060.0, registry).subsystems["Worker"] is Health.HEALTHY
    report = healing.check(1_061.0, registry)
    assert report.subsystems["Worker"] is Health.DEGRADED
    assert report.actions == []
    assert report.healthy is False


def test_report_lists_every_subsystem() -> None:
    registry, _, healing, _ = setup()
    report = healing.check(time.time(), registry)
    assert set(report.subsystems) == {"Worker", "Self-Healing"}
    assert report.healthy is True
    assert healing.seen == 1


def test_failing_dependency_check_reported() -> None:
    registry, _, healing, _ = setup()
    healing.add_dependency_check("exchange", lambda: "exchange ping timed out after 5 s")
    healing.add_dependency_check("database", lambda: None)
    report = healing.check(time.time(), registry)
    assert report.dependencies["exchange"] == "exchange ping timed out after 5 s"
    assert report.dependencies["database"] is None
    assert report.healthy is False


def test_raising_dependency_check_reported() -> None:
    registry, _, healing, _ = setup()

    def broken() -> str | None:
        raise TimeoutError("no answer")

    healing.add_dependency_check("database", broken)
    report = healing.check(0.0, registry)
    assert report.dependencies["database"] == "the check raised TimeoutError: no answer"


def test_duplicate_dependency_check_rejected() -> None:
    _, _, healing, _ = setup()
    healing.add_dependency_check("database", lambda: None)
    with pytest.raises(ConfigurationError, match="'database' is already registered"):
        healing.add_dependency_check("database", lambda: None)


def test_data_freshness_check() -> None:
    clock = [1_000.0]
    last = [940.0]
    check = data_freshness_check(lambda: last[0], 60.0, clock=lambda: clock[0])
    assert check() is None
    clock[0] = 1_001.0
    assert check() == "market data is stale: the last candle is 61 s old, above the limit of 60 s"
    last[0] = math.nan
    assert check() == "no market data has been received yet"


def test_data_freshness_nonpositive_age_rejected() -> None:
    with pytest.raises(ConfigurationError, match="got 0"):
        data_freshness_check(lambda: 0.0, 0.0)


def test_event_bus_check_passes_on_working_bus() -> None:
    bus = EventBus()
    check = event_bus_check(bus)
    assert check() is None
    assert check() is None


def test_event_bus_check_fails_when_nothing_delivered() -> None:
    class DeafBus(EventBus):
        def publish(self, topic: str, event: object) -> None:
            return None

    message = event_bus_check(DeafBus())()
    assert message is not None
    assert message.startswith("the event bus did not deliver a probe event")


def test_settings_reject_cap_below_base() -> None:
    with pytest.raises(ValueError, match="backoff_max"):
        HealingSettings(backoff_base=10.0, backoff_max=5.0)


# Fault injection with a real event loop.


def test_crashed_task_restarted_healthy() -> None:
    registry, worker, healing, trips = setup()
    runs: list[int] = []

    async def feed_loop() -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            raise RuntimeError("websocket closed")
        worker.heartbeat()
        await asyncio.Event().wait()

    async def scenario() -> None:
        crashed = asyncio.Event()
        registry.on_failure(lambda name, error: crashed.set())
        registry.attach_task("Worker", feed_loop)
        await registry.start_tasks()
        await asyncio.wait_for(crashed.wait(), timeout=1.0)

        start = time.time()
        first = healing.check(start, registry)
        second = healing.check(start + 1.0, registry)
        await asyncio.sleep(0)
        task = registry.task("Worker")

        assert first.subsystems["Worker"] is Health.FAILED
        assert first.actions == []
        assert second.actions[0].action == "restart"
        assert task is not None
        assert task.done() is False
        assert worker.health(start + 1.0) is Health.HEALTHY
        await registry.stop_tasks()

    asyncio.run(scenario())
    assert runs == [1, 2]
    assert healing.restart_count("Worker") == 1
    assert trips == []
