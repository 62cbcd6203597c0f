"""The subsystem base: health follows the running flag, the heartbeat age and failures."""

from __future__ import annotations

import pytest

from quantum_trader.subsystems.base import Health, Mode, Subsystem


def test_new_subsystem_is_stopped() -> None:
    assert Subsystem(Mode.ENFORCED, 1).health() is Health.STOPPED


def test_started_subsystem_healthy_until_heartbeat_ages() -> None:
    subsystem = Subsystem(Mode.ENFORCED, 1)
    subsystem.start()
    assert subsystem.last_heartbeat is not None
    beat = subsystem.last_heartbeat
    assert subsystem.health(now=beat + 60.0) is Health.HEALTHY
    assert subsystem.health(now=beat + 60.5) is Health.DEGRADED


def test_failure_reports_failed_with_error() -> None:
    subsystem = Subsystem(Mode.ENFORCED, 1)
    subsystem.start()
    subsystem.fail(RuntimeError("feed lost"))
    assert subsystem.health() is Health.FAILED
    assert subsystem.last_error == "feed lost"
    assert subsystem.errors == 1


def test_cadence_below_one_rejected() -> None:
    with pytest.raises(ValueError, match="cadence must be at least 1"):
        Subsystem(Mode.ENFORCED, 0)
