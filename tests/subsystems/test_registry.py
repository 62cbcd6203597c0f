"""The subsystem registry: start order, rollback, stage caps, modes, status and task supervision."""

from __future__ import annotations

import asyncio
import logging

import pytest

from quantum_trader.engine.decisions import Action
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Health, Mode, Subsystem
from quantum_trader.subsystems.registry import (
    IntegrationStage,
    SubsystemRegistry,
    SubsystemStartError,
)


class Probe(Subsystem):
    """A subsystem that appends its start and stop to a shared journal."""

    def __init__(
        self,
        short_name: str,
        journal: list[str] | None = None,
        mode: Mode = Mode.ENFORCED,
        fail_start: bool = False,
        fail_stop: bool = False,
    ) -> None:
        super().__init__(mode, 1)
        self.short_name = short_name
        self.journal = journal if journal is not None else []
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("exchange credentials missing")
        super().start()
        self.journal.append(f"start {self.short_name}")

    def stop(self) -> None:
        self.journal.append(f"stop {self.short_name}")
        if self.fail_stop:
            raise RuntimeError("socket already closed")
        super().stop()


def registry_of(*names: str, journal: list[str] | None = None) -> SubsystemRegistry:
    registry = SubsystemRegistry()
    for name in names:
        registry.register(Probe(name, journal))
    return registry


# Registration and order.


def test_register_duplicate_name_rejected() -> None:
    registry = registry_of("Ranker")
    with pytest.raises(ConfigurationError, match="'Ranker' is already registered"):
        registry.register(Probe("Ranker"))


def test_register_unknown_dependency_rejected() -> None:
    registry = registry_of("Ranker")
    with pytest.raises(ConfigurationError, match=r"depends on \['Universe'\]"):
        registry.register(Probe("Policy"), depends_on=["Ranker", "Universe"])
    assert "Policy" not in registry.subsystems


def test_register_self_dependency_rejected() -> None:
    registry = SubsystemRegistry()
    with pytest.raises(ConfigurationError, match="'Policy' depends on itself"):
        registry.register(Probe("Policy"), depends_on=["Policy"])


def test_add_dependency_cycle_rejected() -> None:
    registry = SubsystemRegistry()
    registry.register(Probe("A"))
    registry.register(Probe("B"), depends_on=["A"])
    registry.register(Probe("C"), depends_on=["B"])
    with pytest.raises(ConfigurationError, match="cyclic dependency A -> C -> B -> A"):
        registry.add_dependency("A", "C")


def test_start_order_dependencies_then_registration() -> None:
    # D and C are registered first but depend on B, so B must come before both of them;
    # A has no dependency and was registered before B, so A leads.
    registry = registry_of("D", "C", "A", "B")
    registry.add_dependency("D", "B")
    registry.add_dependency("C", "B")
    assert registry.start_order() == ["A", "B", "D", "C"]


def test_start_and_stop_in_dependency_order() -> None:
    journal: list[str] = []
    registry = registry_of("Universe", "Ranker", journal=journal)
    registry.add_dependency("Universe", "Ranker")
    registry.start()
    registry.stop()
    assert journal == ["start Ranker", "start Universe", "stop Universe", "stop Ranker"]


def test_failed_start_rolls_back() -> None:
    journal: list[str] = []
    registry = registry_of("Universe", "Ranker", journal=journal)
    broken = Probe("AELM", journal, fail_start=True)
    registry.register(broken)
    registry.register(Probe("PAL", journal))
    with pytest.raises(SubsystemStartError, match="AELM failed to start") as caught:
        registry.start()
    assert caught.value.name == "AELM"
    assert caught.value.reason == "exchange credentials missing"
    assert isinstance(caught.value, ConfigurationError)
    assert journal == ["start Universe", "start Ranker", "stop Ranker", "stop Universe"]
    assert broken.health() is Health.FAILED
    assert registry.get("PAL").health() is Health.STOPPED


def test_failing_stop_does_not_block_others(caplog: pytest.LogCaptureFixture) -> None:
    journal: list[str] = []
    registry = SubsystemRegistry()
    registry.register(Probe("A", journal))
    registry.register(Probe("B", journal, fail_stop=True))
    registry.register(Probe("C", journal))
    registry.start()
    with caplog.at_level(logging.ERROR):
        registry.stop()
    assert journal[3:] == ["stop C", "stop B", "stop A"]
    assert registry.get("A").running is False
    assert registry.get("C").running is False
    assert "Subsystem B failed to stop" in caplog.text


def test_get_unknown_name_lists_registered() -> None:
    registry = registry_of("Ranker")
    with pytest.raises(ConfigurationError, match="registered subsystems: Ranker"):
        registry.get("Rnaker")


# Integration stage: one row per stage of the table in the module docstring.

SAFETY = "ESS"
MATH = "Trading Mathematician"
AMPLIFIER = "PAL"
DIRECTIVES = "AI-HFOS"
ORDINARY = "PBA"

STAGE_TABLE = [
    (IntegrationStage.OBSERVATION, SAFETY, Mode.OBSERVE),
    (IntegrationStage.OBSERVATION, MATH, Mode.OBSERVE),
    (IntegrationStage.OBSERVATION, AMPLIFIER, Mode.OBSERVE),
    (IntegrationStage.OBSERVATION, DIRECTIVES, Mode.OBSERVE),
    (IntegrationStage.OBSERVATION, ORDINARY, Mode.OBSERVE),
    (IntegrationStage.PARTIAL, SAFETY, Mode.ENFORCED),
    (IntegrationStage.PARTIAL, MATH, Mode.ENFORCED),
    (IntegrationStage.PARTIAL, AMPLIFIER, Mode.ADVISORY),
    (IntegrationStage.PARTIAL, DIRECTIVES, Mode.ADVISORY),
    (IntegrationStage.PARTIAL, ORDINARY, Mode.ADVISORY),
    (IntegrationStage.COORDINATION, SAFETY, Mode.ENFORCED),
    (IntegrationStage.COORDINATION, MATH, Mode.ENFORCED),
    (IntegrationStage.COORDINATION, AMPLIFIER, Mode.ADVISORY),
    (IntegrationStage.COORDINATION, DIRECTIVES, Mode.ADVISORY),
    (IntegrationStage.COORDINATION, ORDINARY, Mode.ENFORCED),
    (IntegrationStage.AUTONOMY, SAFETY, Mode.ENFORCED),
    (IntegrationStage.AUTONOMY, MATH, Mode.ENFORCED),
    (IntegrationStage.AUTONOMY, AMPLIFIER, Mode.ENFORCED),
    (IntegrationStage.AUTONOMY, DIRECTIVES, Mode.ENFORCED),
    (IntegrationStage.AUTONOMY, ORDINARY, Mode.ENFORCED),
]


@pytest.mark.parametrize(("stage", "name", "expected"), STAGE_TABLE)
def test_stage_caps_enforced_subsystem(stage: IntegrationStage, name: str, expected: Mode) -> None:
    registry = registry_of(SAFETY, MATH, AMPLIFIER, DIRECTIVES, ORDINARY)
    registry.set_stage(stage)
    assert registry.effective_mode(name) is expected
    assert registry.get(name).mode is expected


def test_stage_never_raises_configured_mode() -> None:
    registry = SubsystemRegistry(stage=IntegrationStage.PARTIAL)
    registry.register(Probe(SAFETY, mode=Mode.OBSERVE))
    registry.register(Probe(ORDINARY, mode=Mode.OFF))
    assert registry.effective_mode(SAFETY) is Mode.OBSERVE
    assert registry.effective_mode(ORDINARY) is Mode.OFF


def test_raising_stage_restores_configured_mode() -> None:
    registry = registry_of(ORDINARY)
    registry.set_stage(IntegrationStage.OBSERVATION)
    assert registry.get(ORDINARY).mode is Mode.OBSERVE
    registry.set_stage("autonomy")
    assert registry.get(ORDINARY).mode is Mode.ENFORCED
    assert registry.configured_mode(ORDINARY) is Mode.ENFORCED


def test_safety_set_configurable() -> None:
    registry = SubsystemRegistry(stage=IntegrationStage.PARTIAL, safety_subsystems={"AELM"})
    registry.register(Probe("AELM"))
    registry.register(Probe(SAFETY))
    assert registry.effective_mode("AELM") is Mode.ENFORCED
    assert registry.effective_mode(SAFETY) is Mode.ADVISORY


def test_overlapping_name_sets_rejected() -> None:
    with pytest.raises(ConfigurationError, match="one of the two sets"):
        SubsystemRegistry(safety_subsystems={"PAL"}, autonomy_only_subsystems={"PAL"})


def test_invalid_stage_rejected() -> None:
    registry = SubsystemRegistry()
    with pytest.raises(ConfigurationError, match="invalid integration stage 'live'"):
        registry.set_stage("live")


# Modes.


def test_set_mode_records_change() -> None:
    registry = registry_of(ORDINARY)
    registry.set_stage(IntegrationStage.PARTIAL)
    effective = registry.set_mode(ORDINARY, "observe")
    subsystem = registry.get(ORDINARY)
    assert effective is Mode.OBSERVE
    assert subsystem.mode is Mode.OBSERVE
    assert registry.configured_mode(ORDINARY) is Mode.OBSERVE
    decision = subsystem.last_decision
    assert decision is not None
    assert decision.action is Action.MODE_CHANGE
    assert "from enforced to observe" in decision.reason


def test_set_mode_capped_by_stage() -> None:
    registry = SubsystemRegistry(stage=IntegrationStage.COORDINATION)
    registry.register(Probe(AMPLIFIER, mode=Mode.OBSERVE))
    assert registry.set_mode(AMPLIFIER, Mode.ENFORCED) is Mode.ADVISORY
    registry.set_stage(IntegrationStage.AUTONOMY)
    assert registry.get(AMPLIFIER).mode is Mode.ENFORCED


def test_set_mode_invalid_mode_rejected() -> None:
    registry = registry_of(ORDINARY)
    with pytest.raises(ConfigurationError, match="invalid mode 'loud' for subsystem PBA"):
        registry.set_mode(ORDINARY, "loud")
    assert registry.get(ORDINARY).mode is Mode.ENFORCED


def test_set_mode_unknown_subsystem_rejected() -> None:
    registry = registry_of(ORDINARY)
    with pytest.raises(ConfigurationError, match="no subsystem is registered as 'PIL'"):
        registry.set_mode("PIL", Mode.OFF)


# Status.


def test_status_never_started_reports_stopped() -> None:
    registry = registry_of(ORDINARY)
    (row,) = registry.status()
    assert row.name == "Probe"
    assert row.short_name == ORDINARY
    assert row.mode is Mode.ENFORCED
    assert row.health is Health.STOPPED
    assert row.last_heartbeat is None
    assert row.last_decision is None
    assert row.last_error is None
    assert row.errors == 0
    assert row.counters == {"seen": 0, "changed": 0, "vetoed": 0}


def test_status_reports_heartbeat_decision_and_error() -> None:
    registry = registry_of(ORDINARY, "Ranker")
    registry.start()
    subsystem = registry.get(ORDINARY)
    # 1_700_000_000 s after the epoch is 2023-11-14 22:13:20 UTC.
    subsystem.last_heartbeat = 1_700_000_000.0
    subsystem.record(0, "BTC/USDT", Action.VETO, "gross exposure above 150%")
    subsystem.vetoed = 1
    registry.get("Ranker").fail(RuntimeError("ranking input missing"))
    pba, ranker = registry.status(now=1_700_000_030.0)
    assert pba.health is Health.HEALTHY
    assert pba.last_heartbeat == "2023-11-14T22:13:20+00:00"
    assert pba.last_decision == "[enforced] gross exposure above 150%"
    assert pba.counters["vetoed"] == 1
    assert ranker.health is Health.FAILED
    assert ranker.last_error == "ranking input missing"
    assert ranker.errors == 1


def test_status_stale_heartbeat_degraded() -> None:
    registry = registry_of(ORDINARY)
    registry.start()
    registry.get(ORDINARY).last_heartbeat = 1_000.0
    # 61 s old is beyond the 60 s limit.
    (row,) = registry.status(now=1_061.0)
    assert row.health is Health.DEGRADED


# Task supervision.


def test_task_failure_notifies_listeners() -> None:
    registry = registry_of("Feed")
    failures: list[tuple[str, str]] = []

    async def crash() -> None:
        raise RuntimeError("websocket closed")

    async def scenario() -> None:
        notified = asyncio.Event()

        def listener(name: str, error: BaseException) -> None:
            failures.append((name, str(error)))
            notified.set()

        registry.on_failure(listener)
        registry.attach_task("Feed", crash)
        registry.start()
        await registry.start_tasks()
        await asyncio.wait_for(notified.wait(), timeout=1.0)
        await registry.stop_tasks()

    asyncio.run(scenario())
    feed = registry.get("Feed")
    assert failures == [("Feed", "websocket closed")]
    assert feed.health() is Health.FAILED
    assert feed.last_error == "websocket closed"


def test_stop_tasks_cancels_without_failure() -> None:
    registry = registry_of("Feed")
    failures: list[str] = []
    ran = []

    async def forever() -> None:
        ran.append(True)
        await asyncio.Event().wait()

    async def scenario() -> None:
        registry.on_failure(lambda name, error: failures.append(name))
        registry.attach_task("Feed", forever)
        registry.start()
        await registry.start_tasks()
        await asyncio.sleep(0)
        task = registry.task("Feed")
        await registry.stop_tasks()
        assert task is not None
        assert task.cancelled()

    asyncio.run(scenario())
    assert ran == [True]
    assert failures == []
    assert registry.get("Feed").running is True
    assert registry.task("Feed") is None


def test_task_that_returns_marks_stopped() -> None:
    registry = registry_of("Feed")

    async def finish() -> None:
        return None

    async def scenario() -> None:
        registry.attach_task("Feed", finish)
        registry.start()
        await registry.start_tasks()
        task = registry.task("Feed")
        assert task is not None
        await task
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert registry.get("Feed").health() is Health.STOPPED


def test_attach_task_twice_rejected() -> None:
    registry = registry_of("Feed")

    async def idle() -> None:
        return None

    registry.attach_task("Feed", idle)
    with pytest.raises(ConfigurationError, match="Feed already has a task attached"):
        registry.attach_task("Feed", idle)
