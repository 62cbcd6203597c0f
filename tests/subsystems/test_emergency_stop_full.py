"""Emergency Stop System: stop-loss bursts, execution errors, stale data, trading states, trip
actions, recorded decisions and the state file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from quantum_trader.config import EmergencyStopSettings
from quantum_trader.core.types import ExitReason
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.emergency_stop import EmergencyStop, TripEvent
from quantum_trader.subsystems.ess_store import EssStateStore

SECOND_NS = 1_000_000_000
HOUR_NS = 3_600 * SECOND_NS
# 2024-09-14 00:00 UTC
DAY0_NS = 1_726_272_000 * SECOND_NS


def make_ess(**overrides: Any) -> EmergencyStop:
    return EmergencyStop(EmergencyStopSettings(**overrides))


def stop_losses(ess: EmergencyStop, hours: list[float]) -> list[TripEvent | None]:
    return [ess.on_trade_closed(DAY0_NS + round(h * HOUR_NS), ExitReason.STOP_LOSS) for h in hours]


def attempts(ess: EmergencyStop, outcomes: str) -> list[TripEvent | None]:
    """Feed order attempts, one character each: "." succeeded, "x" failed."""
    return [ess.on_execution(DAY0_NS + i * SECOND_NS, c == ".") for i, c in enumerate(outcomes)]


# Subsystem contract


def test_ess_is_enforced_subsystem() -> None:
    ess = make_ess()
    assert isinstance(ess, Subsystem)
    assert ess.short_name == "ESS"
    assert ess.mode is Mode.ENFORCED
    assert ess.binding
    assert ess.cadence == 1


def test_ess_rejects_lower_mode() -> None:
    with pytest.raises(ConfigurationError, match="enforced"):
        EmergencyStop(EmergencyStopSettings(), mode=Mode.OBSERVE)
    ess = make_ess()
    with pytest.raises(ConfigurationError, match="enforced"):
        ess.mode = Mode.OFF
    assert ess.mode is Mode.ENFORCED


def test_every_evaluation_beats_heartbeat() -> None:
    ess = make_ess()
    assert ess.last_heartbeat is None
    calls: list[Callable[[], object]] = [
        lambda: ess.on_equity(DAY0_NS, 10_000.0),
        lambda: ess.on_trade_closed(DAY0_NS, ExitReason.TAKE_PROFIT),
        lambda: ess.on_execution(DAY0_NS, True),
        lambda: ess.on_market_data(DAY0_NS, DAY0_NS + SECOND_NS),
    ]
    for call in calls:
        ess.last_heartbeat = None
        call()
        assert ess.last_heartbeat is not None


# Stop-loss burst (default: 4 exits within 6 h)


def test_fourth_stop_loss_at_window_edge_trips() -> None:
    # Exits at 0, 1, 3 and 6 h: the four span 6 h, which equals the window. Bounds count.
    ess = make_ess()
    assert stop_losses(ess, [0, 1, 3]) == [None, None, None]
    event = ess.on_trade_closed(DAY0_NS + 6 * HOUR_NS, ExitReason.STOP_LOSS)
    assert event is not None
    assert event.reason == "stop_loss_burst"
    assert event.time_ns == DAY0_NS + 6 * HOUR_NS
    assert event.numbers["stop_losses"] == 4.0
    assert event.numbers["span_hours"] == 6.0
    assert event.numbers["window_hours"] == 6.0
    assert ess.state == "halted"


def test_stop_loss_burst_just_outside_window() -> None:
    # The fourth exit 1 ns after 6 h: the span is 6 h + 1 ns, over the window.
    ess = make_ess()
    stop_losses(ess, [0, 1, 3])
    assert ess.on_trade_closed(DAY0_NS + 6 * HOUR_NS + 1, ExitReason.STOP_LOSS) is None
    assert ess.state == "active"


def test_three_stop_losses_do_not_trip() -> None:
    ess = make_ess()
    assert stop_losses(ess, [0, 0.5, 1]) == [None, None, None]
    assert ess.state == "active"


def test_other_exits_do_not_count() -> None:
    ess = make_ess()
    stop_losses(ess, [0, 1, 2])
    for reason in (ExitReason.TAKE_PROFIT, ExitReason.EXIT_SIGNAL, ExitReason.EMERGENCY_STOP):
        assert ess.on_trade_closed(DAY0_NS + 3 * HOUR_NS, reason) is None
    assert ess.state == "active"


def test_liquidation_counts_towards_burst() -> None:
    ess = make_ess()
    stop_losses(ess, [0, 1, 2])
    event = ess.on_trade_closed(DAY0_NS + 3 * HOUR_NS, ExitReason.LIQUIDATION)
    assert event is not None
    assert event.reason == "stop_loss_burst"


def test_exit_reason_given_as_text() -> None:
    ess = make_ess()
    for hour in range(3):
        assert ess.on_trade_closed(DAY0_NS + hour * HOUR_NS, "stop_loss") is None
    assert ess.on_trade_closed(DAY0_NS + 3 * HOUR_NS, "stop_loss") is not None


def test_old_stop_losses_leave_window() -> None:
    # 0, 2, 4, 7 h span 7 h: no trip. At 8 h the latest four are 2, 4, 7, 8 h: a 6 h span.
    ess = make_ess()
    assert stop_losses(ess, [0, 2, 4, 7]) == [None, None, None, None]
    event = ess.on_trade_closed(DAY0_NS + 8 * HOUR_NS, ExitReason.STOP_LOSS)
    assert event is not None
    assert event.numbers["span_hours"] == 6.0


def test_stop_loss_burst_settings() -> None:
    # Two exits within one hour: 30 minutes apart trips, 61 minutes apart does not.
    ess = make_ess(stop_loss_burst_count=2, stop_loss_burst_hours=1.0)
    assert stop_losses(ess, [0, 61 / 60]) == [None, None]
    event = ess.on_trade_closed(DAY0_NS + round(1.5 * HOUR_NS), ExitReason.STOP_LOSS)
    assert event is not None
    assert event.numbers["span_hours"] == pytest.approx(29 / 60)


def test_stop_loss_burst_off() -> None:
    ess = make_ess(stop_loss_burst_count=None)
    assert stop_losses(ess, [0.1 * i for i in range(10)]) == [None] * 10
    assert ess.state == "active"


# Execution errors (default: share >= 30% over the latest 20 attempts, from 10 attempts on)


def test_error_share_at_limit_trips() -> None:
    # 7 successes, then failures: 1/8 = 12.5%, 2/9 = 22.2%, then 3/10 = 30% trips.
    ess = make_ess()
    results = attempts(ess, ".......xxx")
    assert results[:9] == [None] * 9
    event = results[9]
    assert event is not None
    assert ess.trip is event
    assert event.reason == "execution_errors"
    assert event.numbers["errors"] == 3.0
    assert event.numbers["attempts"] == 10.0
    assert event.numbers["error_rate"] == 0.3
    assert event.numbers["limit"] == 0.3


def test_error_share_below_limit() -> None:
    # 2 failures in 10 attempts: 20%.
    ess = make_ess()
    assert attempts(ess, "........xx") == [None] * 10
    assert ess.state == "active"


def test_errors_before_min_attempts() -> None:
    # 9 failures in 9 attempts are below the 10 attempts needed. The 10th gives 9/10 = 90%.
    ess = make_ess()
    assert attempts(ess, "xxxxxxxxx") == [None] * 9
    event = ess.on_execution(DAY0_NS + 10 * SECOND_NS, True)
    assert event is not None
    assert event.numbers["error_rate"] == 0.9


def test_old_attempts_leave_window() -> None:
    # 15 successes then 5 failures: 5/20 = 25%. One more failure pushes the first success
    # out: 6 failures in the latest 20 = 30%.
    ess = make_ess()
    assert attempts(ess, "." * 15 + "xxxxx") == [None] * 20
    event = ess.on_execution(DAY0_NS + 21 * SECOND_NS, False)
    assert event is not None
    assert event.numbers["errors"] == 6.0
    assert event.numbers["attempts"] == 20.0


def test_execution_error_trigger_off() -> None:
    ess = make_ess(max_error_rate=None)
    assert attempts(ess, "x" * 25) == [None] * 25
    assert ess.state == "active"


def test_min_attempts_above_window_rejected() -> None:
    with pytest.raises(ValidationError, match="min_error_attempts"):
        EmergencyStopSettings(min_error_attempts=30, error_window=20)


# Stale market data (default: 900 s)


def test_data_at_max_age_does_not_trip() -> None:
    ess = make_ess()
    assert ess.on_market_data(DAY0_NS, DAY0_NS + 900 * SECOND_NS) is None
    assert ess.state == "active"


def test_data_older_than_max_age_trips() -> None:
    ess = make_ess()
    now = DAY0_NS + 900 * SECOND_NS + 1
    event = ess.on_market_data(DAY0_NS, now)
    assert event is not None
    assert event.reason == "stale_data"
    assert event.time_ns == now
    assert event.numbers["age_seconds"] == pytest.approx(900.000000001)
    assert event.numbers["limit_seconds"] == 900.0


def test_stale_data_custom_limit() -> None:
    ess = make_ess(max_data_age_seconds=120.0)
    assert ess.on_market_data(DAY0_NS, DAY0_NS + 120 * SECOND_NS) is None
    assert ess.on_market_data(DAY0_NS, DAY0_NS + 121 * SECOND_NS) is not None


def test_stale_data_trigger_off() -> None:
    ess = make_ess(max_data_age_seconds=None)
    assert ess.on_market_data(DAY0_NS, DAY0_NS + 24 * HOUR_NS) is None


# Trading states and trip actions


def test_active_allows_every_order() -> None:
    ess = make_ess()
    assert ess.state == "active"
    assert ess.allows_entries()
    assert ess.allows_order(reduce_only=False)
    assert ess.allows_order(reduce_only=True)


def test_default_trip_blocks_every_order() -> None:
    ess = make_ess()
    event = ess.trip_manual(DAY0_NS, "exchange outage")
    assert event.actions == ("halt_entries", "cancel_open_orders")
    assert ess.state == "halted"
    assert not ess.allows_entries()
    assert not ess.allows_order(reduce_only=False)
    assert not ess.allows_order(reduce_only=True)


def test_reduce_on_trip_passes_reduce_only() -> None:
    ess = make_ess(reduce_on_trip=True)
    event = ess.trip_manual(DAY0_NS, "exchange outage")
    assert event.actions == ("halt_entries", "cancel_open_orders")
    assert ess.state == "reducing"
    assert not ess.allows_entries()
    assert not ess.allows_order(reduce_only=False)
    assert ess.allows_order(reduce_only=True)


def test_flatten_on_trip_passes_closing_orders() -> None:
    ess = make_ess(flatten_on_trip=True)
    event = ess.trip_manual(DAY0_NS, "exchange outage")
    assert event.actions == ("halt_entries", "cancel_open_orders", "flatten_positions")
    assert ess.state == "halted"
    assert not ess.allows_order(reduce_only=False)
    assert ess.allows_order(reduce_only=True)


def test_flatten_wins_over_reduce() -> None:
    ess = make_ess(flatten_on_trip=True, reduce_on_trip=True)
    ess.trip_manual(DAY0_NS, "exchange outage")
    assert ess.state == "halted"


def test_equity_trip_carries_actions() -> None:
    ess = make_ess(flatten_on_trip=True)
    ess.on_equity(DAY0_NS, 10_000.0)
    event = ess.on_equity(DAY0_NS + HOUR_NS, 9_500.0)
    assert event is not None
    assert "flatten_positions" in event.actions


def test_gate_counts_seen_and_vetoed() -> None:
    ess = make_ess()
    ess.allows_entries()
    assert ess.counters() == {"seen": 1, "changed": 0, "vetoed": 0}
    ess.trip_manual(DAY0_NS, "exchange outage")
    ess.allows_entries()
    ess.allows_order(reduce_only=False)
    ess.allows_order(reduce_only=True)
    assert ess.counters() == {"seen": 4, "changed": 0, "vetoed": 3}


def test_trip_is_latched_against_other_triggers() -> None:
    ess = make_ess()
    first = ess.trip_manual(DAY0_NS, "exchange outage")
    assert stop_losses(ess, [1, 2, 3, 4]) == [None] * 4
    assert attempts(ess, "x" * 10) == [None] * 10
    assert ess.on_market_data(DAY0_NS, DAY0_NS + HOUR_NS) is None
    assert ess.trip is first


# Decisions and resets


def test_trip_and_reset_are_recorded() -> None:
    log = DecisionLog()
    ess = EmergencyStop(EmergencyStopSettings(), log=log)
    ess.trip_manual(DAY0_NS, "exchange outage")
    ess.reset(DAY0_NS + 2 * HOUR_NS, "alice")
    trip, reset = log.decisions
    assert trip.subsystem == "ESS"
    assert trip.action is Action.TRIP
    assert trip.symbol == "*"
    assert "exchange outage" in trip.reason
    assert reset.action is Action.RESET
    assert "alice" in reset.reason
    assert "manual" in reset.reason
    assert reset.numbers["tripped_hours"] == 2.0


def test_reset_of_active_ess_is_recorded() -> None:
    ess = make_ess()
    ess.reset(DAY0_NS, "alice")
    assert len(ess.log.decisions) == 1
    assert ess.log.decisions[0].action is Action.RESET
    assert "not tripped" in ess.log.decisions[0].reason


def test_reset_clears_stop_loss_window() -> None:
    ess = make_ess()
    stop_losses(ess, [0, 1, 2, 3])
    ess.reset(DAY0_NS + 4 * HOUR_NS, "alice")
    assert ess.on_trade_closed(DAY0_NS + 5 * HOUR_NS, ExitReason.STOP_LOSS) is None
    assert ess.state == "active"


def test_reset_clears_error_window() -> None:
    ess = make_ess()
    attempts(ess, "x" * 10)
    assert ess.trip is not None
    ess.reset(DAY0_NS + HOUR_NS, "alice")
    assert ess.on_execution(DAY0_NS + 2 * HOUR_NS, False) is None
    assert ess.state == "active"


# Stored state


def test_round_trip_keeps_reducing_trip() -> None:
    settings = EmergencyStopSettings(reduce_on_trip=True)
    ess = EmergencyStop(settings)
    ess.trip_manual(DAY0_NS, "exchange outage")
    restored = EmergencyStop.from_dict(json.loads(json.dumps(ess.to_dict())), settings)
    assert restored.state == "reducing"
    assert restored.trip == ess.trip


def test_round_trip_keeps_trigger_windows() -> None:
    settings = EmergencyStopSettings()
    ess = EmergencyStop(settings)
    stop_losses(ess, [0, 1, 2])
    attempts(ess, "........x")
    restored = EmergencyStop.from_dict(json.loads(json.dumps(ess.to_dict())), settings)
    # The fourth stop-loss within 6 h trips, so the three earlier ones came back.
    assert restored.on_trade_closed(DAY0_NS + 3 * HOUR_NS, ExitReason.STOP_LOSS) is not None
    other = EmergencyStop.from_dict(json.loads(json.dumps(ess.to_dict())), settings)
    # 8 successes and 1 failure came back: a 10th attempt that fails makes 2/10 = 20%.
    assert other.on_execution(DAY0_NS + HOUR_NS, False) is None
    # An 11th that fails makes 3/11 = 27.3%, a 12th 4/12 = 33.3%, which trips.
    assert other.on_execution(DAY0_NS + HOUR_NS, False) is None
    assert other.on_execution(DAY0_NS + HOUR_NS, False) is not None


def test_version_one_state_loads() -> None:
    stored = {
        "version": 1,
        "state": "halted",
        "day": 19_980,
        "day_start_equity": 10_000.0,
        "peak_equity": 10_000.0,
        "last_equity": 9_000.0,
        "trip": {"time_ns": DAY0_NS, "reason": "manual", "numbers": {}, "detail": "outage"},
    }
    ess = EmergencyStop.from_dict(stored, EmergencyStopSettings(flatten_on_trip=True))
    assert ess.state == "halted"
    assert ess.trip is not None
    assert ess.trip.detail == "outage"
    assert ess.trip.actions == ("halt_entries", "cancel_open_orders", "flatten_positions")


def test_state_contradicting_trip_rejected() -> None:
    ess = make_ess()
    ess.trip_manual(DAY0_NS, "exchange outage")
    stored = ess.to_dict()
    stored["state"] = "active"
    with pytest.raises(ConfigurationError, match="'active' but it has a manual trip"):
        EmergencyStop.from_dict(stored, EmergencyStopSettings())


def test_unknown_trip_action_rejected() -> None:
    ess = make_ess()
    ess.trip_manual(DAY0_NS, "exchange outage")
    stored = ess.to_dict()
    stored["trip"]["actions"] = ["halt_entries", "sell_everything"]
    with pytest.raises(ConfigurationError, match="sell_everything"):
        EmergencyStop.from_dict(stored, EmergencyStopSettings())


def test_store_keeps_trip_across_restart(tmp_path: Path) -> None:
    path = tmp_path / "ess.json"
    settings = EmergencyStopSettings()
    first = EmergencyStop(settings)
    first.attach_store(EssStateStore(path))
    first.on_equity(DAY0_NS, 10_000.0)
    trip = first.on_equity(DAY0_NS + HOUR_NS, 9_000.0)

    restarted = EmergencyStop(settings)
    restarted.attach_store(EssStateStore(path))
    assert restarted.state == "halted"
    assert restarted.trip == trip
    assert restarted.trip is not None
    assert restarted.trip.reason == "daily_loss"
    # Recovered equity does not lift the restored trip.
    assert restarted.on_equity(DAY0_NS + 2 * HOUR_NS, 12_000.0) is None
    assert restarted.state == "halted"

    with pytest.raises(ConfigurationError, match="authorised"):
        restarted.reset(DAY0_NS + 3 * HOUR_NS, "")
    assert json.loads(path.read_text())["state"] == "halted"

    restarted.reset(DAY0_NS + 3 * HOUR_NS, "risk officer")
    stored = json.loads(path.read_text())
    assert stored["state"] == "active"
    assert stored["trip"] is None


def test_attach_writes_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ess.json"
    make_ess().attach_store(EssStateStore(path))
    assert json.loads(path.read_text())["state"] == "active"


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    ess = make_ess()
    ess.attach_store(EssStateStore(tmp_path / "ess.json"))
    ess.trip_manual(DAY0_NS, "exchange outage")
    ess.reset(DAY0_NS + HOUR_NS, "alice")
    assert [p.name for p in tmp_path.iterdir()] == ["ess.json"]


def test_corrupt_store_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "ess.json"
    path.write_text('{"version": 2, "state": "hal')
    ess = make_ess()
    with pytest.raises(ConfigurationError, match="not valid JSON") as error:
        ess.attach_store(EssStateStore(path))
    assert str(path) in str(error.value)
    assert "delete it only once you accept" in str(error.value)
    # The file is left for a person to inspect, not replaced by an active state.
    assert path.read_text() == '{"version": 2, "state": "hal'


def test_store_file_with_list_raises(tmp_path: Path) -> None:
    path = tmp_path / "ess.json"
    path.write_text("[]")
    with pytest.raises(ConfigurationError, match="JSON list, not an object"):
        make_ess().attach_store(EssStateStore(path))


def test_store_file_with_bad_state_raises(tmp_path: Path) -> None:
    path = tmp_path / "ess.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(ConfigurationError, match="version 99") as error:
        make_ess().attach_store(EssStateStore(path))
    assert str(path) in str(error.value)


def test_attach_keeps_in_memory_trip(tmp_path: Path) -> None:
    path = tmp_path / "ess.json"
    make_ess().attach_store(EssStateStore(path))
    ess = make_ess()
    ess.trip_manual(DAY0_NS, "exchange outage")
    ess.attach_store(EssStateStore(path))
    assert ess.state == "halted"
    assert json.loads(path.read_text())["state"] == "halted"


def test_unreadable_store_fails_on_attach(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="could not read the ESS state file"):
        make_ess().attach_store(EssStateStore(blocker / "ess.json"))


def test_unwritable_store_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="could not write the ESS state") as error:
        EssStateStore(blocker / "ess.json").save(make_ess().to_dict())
    assert str(blocker / "ess.json") in str(error.value)


class FailingStore(EssStateStore):
    """Saves until ``failing`` is set, then raises as an unwritable folder would."""

    failing = False

    def save(self, state: Any) -> None:
        if self.failing:
            raise ConfigurationError("could not write the ESS state")
        super().save(state)


def test_failed_save_keeps_trip_on_reset(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "ess.json")
    ess = make_ess()
    ess.attach_store(store)
    trip = ess.trip_manual(DAY0_NS, "exchange outage")
    store.failing = True
    with pytest.raises(ConfigurationError, match="could not write"):
        ess.reset(DAY0_NS + HOUR_NS, "alice")
    assert ess.state == "halted"
    assert ess.trip == trip
    assert json.loads((tmp_path / "ess.json").read_text())["state"] == "halted"


def test_failed_save_keeps_new_trip(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "ess.json")
    ess = make_ess()
    ess.attach_store(store)
    store.failing = True
    with pytest.raises(ConfigurationError, match="could not write"):
        ess.trip_manual(DAY0_NS, "exchange outage")
    assert ess.state == "halted"
