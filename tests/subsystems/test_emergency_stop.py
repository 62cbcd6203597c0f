"""Emergency Stop System: daily loss, drawdown, manual trips, the latch and persistence."""

from __future__ import annotations

import json
import logging

import pytest

from quantum_trader.config import EmergencyStopSettings
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.emergency_stop import EmergencyStop

HOUR_NS = 3_600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
# 2024-09-14 00:00 UTC
DAY0_NS = 1_726_272_000 * 1_000_000_000


def make_ess() -> EmergencyStop:
    return EmergencyStop(EmergencyStopSettings(max_daily_loss=0.05, max_drawdown=0.15))


def test_daily_loss_trips_on_same_day() -> None:
    # (10000 - 9499) / 10000 = 5.01%, at or above the 5% limit.
    ess = make_ess()
    assert ess.on_equity(DAY0_NS, 10_000.0) is None
    event = ess.on_equity(DAY0_NS + 5 * HOUR_NS, 9_499.0)
    assert event is not None
    assert event.reason == "daily_loss"
    assert event.time_ns == DAY0_NS + 5 * HOUR_NS
    assert event.numbers["loss"] == pytest.approx(0.0501)
    assert event.numbers["start_of_day_equity"] == 10_000.0
    assert ess.state == "halted"
    assert not ess.allows_entries()
    assert ess.trip is event


def test_daily_loss_just_below_limit_does_not_trip() -> None:
    # (10000 - 9501) / 10000 = 4.99%.
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    assert ess.on_equity(DAY0_NS + HOUR_NS, 9_501.0) is None
    assert ess.state == "active"
    assert ess.allows_entries()


def test_daily_loss_at_exact_limit_trips() -> None:
    # (10000 - 9500) / 10000 = 5.00% exactly; the limit is inclusive.
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    event = ess.on_equity(DAY0_NS + HOUR_NS, 9_500.0)
    assert event is not None
    assert event.reason == "daily_loss"


def test_drawdown_trips_over_several_days() -> None:
    # One value per day, so each day starts at its own value and the daily loss is 0; the
    # drawdown from the peak 10000 is 4%, 8%, 12%, then (10000 - 8500) / 10000 = 15% at 8500.
    ess = make_ess()
    for day, equity in enumerate([10_000.0, 9_600.0, 9_200.0, 8_800.0]):
        assert ess.on_equity(DAY0_NS + day * DAY_NS, equity) is None
    event = ess.on_equity(DAY0_NS + 4 * DAY_NS, 8_500.0)
    assert event is not None
    assert event.reason == "drawdown"
    assert event.numbers["peak_equity"] == 10_000.0
    assert event.numbers["loss"] == pytest.approx(0.15)


def test_drawdown_with_small_daily_losses() -> None:
    # Each day opens at the previous close and loses 400, 400, 400, 300: daily losses of
    # 4%, 4.17%, 4.35%, 3.41%, all below 5%; the drawdown reaches 15% at 8500 on day 4.
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    closes = [10_000.0, 9_600.0, 9_200.0, 8_800.0]
    for day in range(1, 4):
        ess.on_equity(DAY0_NS + day * DAY_NS, closes[day - 1])
        assert ess.on_equity(DAY0_NS + day * DAY_NS + HOUR_NS, closes[day]) is None
    ess.on_equity(DAY0_NS + 4 * DAY_NS, 8_800.0)
    event = ess.on_equity(DAY0_NS + 4 * DAY_NS + HOUR_NS, 8_500.0)
    assert event is not None
    assert event.reason == "drawdown"


def test_day_start_is_first_equity() -> None:
    # Day 1 starts at 9600 (its first value), so 9200 later that day is a 4.17% daily loss,
    # not 8% measured from the previous day's 10000.
    ess = make_ess()
    ess.on_equity(DAY0_NS + 23 * HOUR_NS, 10_000.0)
    ess.on_equity(DAY0_NS + DAY_NS, 9_600.0)
    assert ess.on_equity(DAY0_NS + DAY_NS + 6 * HOUR_NS, 9_200.0) is None
    assert ess.state == "active"


def test_midnight_starts_new_day() -> None:
    # 10000 at 23:00, 9400 at 00:00 next day: the new day starts at 9400, no daily-loss trip.
    ess = make_ess()
    ess.on_equity(DAY0_NS + 23 * HOUR_NS, 10_000.0)
    assert ess.on_equity(DAY0_NS + DAY_NS, 9_400.0) is None


def test_recovery_does_not_untrip() -> None:
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    ess.on_equity(DAY0_NS + HOUR_NS, 9_000.0)
    assert ess.on_equity(DAY0_NS + 2 * HOUR_NS, 12_000.0) is None
    assert ess.state == "halted"
    assert ess.trip is not None
    assert ess.trip.reason == "daily_loss"


def test_second_breach_keeps_first_trip() -> None:
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    first = ess.on_equity(DAY0_NS + HOUR_NS, 9_000.0)
    assert ess.on_equity(DAY0_NS + DAY_NS, 8_000.0) is None
    assert ess.trip is first


def test_reset_needs_authoriser() -> None:
    ess = make_ess()
    ess.trip_manual(DAY0_NS, "exchange outage")
    with pytest.raises(ConfigurationError, match="authorised"):
        ess.reset(DAY0_NS + HOUR_NS, "  ")
    assert ess.state == "halted"


def test_reset_restarts_peak_at_current_equity() -> None:
    ess = make_ess()
    for day, equity in enumerate([10_000.0, 9_600.0, 9_200.0, 8_800.0, 8_500.0]):
        ess.on_equity(DAY0_NS + day * DAY_NS, equity)
    assert ess.state == "halted"

    ess.reset(DAY0_NS + 4 * DAY_NS + HOUR_NS, authorised_by="risk officer")
    assert ess.state == "active"
    assert ess.trip is None
    # 8400 is 16% below the old peak 10000 but only 1.2% below the new peak 8500.
    assert ess.on_equity(DAY0_NS + 5 * DAY_NS, 8_400.0) is None
    # Peak 8500: 7300 is 14.1% down, 7200 is 15.3% down.
    for day, equity in enumerate([8_100.0, 7_700.0, 7_300.0], start=6):
        assert ess.on_equity(DAY0_NS + day * DAY_NS, equity) is None
    event = ess.on_equity(DAY0_NS + 9 * DAY_NS, 7_200.0)
    assert event is not None
    assert event.reason == "drawdown"
    assert event.numbers["peak_equity"] == 8_500.0


def test_reset_restarts_start_of_day() -> None:
    # Without the restart, 9450 would be 5.5% below the day's start of 10000 and trip again.
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    ess.on_equity(DAY0_NS + HOUR_NS, 9_499.0)
    ess.reset(DAY0_NS + 2 * HOUR_NS, authorised_by="alice")
    assert ess.on_equity(DAY0_NS + 3 * HOUR_NS, 9_450.0) is None


def test_manual_trip() -> None:
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    event = ess.trip_manual(DAY0_NS + HOUR_NS, "exchange outage")
    assert event.reason == "manual"
    assert event.detail == "exchange outage"
    assert event.numbers["equity"] == 10_000.0
    assert not ess.allows_entries()


def test_manual_trip_needs_reason() -> None:
    with pytest.raises(ConfigurationError, match="reason"):
        make_ess().trip_manual(DAY0_NS, "")


def test_manual_trip_while_halted_keeps_first(caplog: pytest.LogCaptureFixture) -> None:
    ess = make_ess()
    ess.on_equity(DAY0_NS, 10_000.0)
    first = ess.on_equity(DAY0_NS + HOUR_NS, 9_000.0)
    with caplog.at_level(logging.WARNING, logger="quantum_trader.subsystems.emergency_stop"):
        second = ess.trip_manual(DAY0_NS + 2 * HOUR_NS, "operator")
    assert second is first
    assert "already halted" in caplog.text


def test_round_trip_keeps_latch() -> None:
    settings = EmergencyStopSettings()
    ess = EmergencyStop(settings)
    ess.on_equity(DAY0_NS, 10_000.0)
    ess.on_equity(DAY0_NS + HOUR_NS, 9_000.0)
    stored = json.loads(json.dumps(ess.to_dict()))

    assert stored["state"] == "halted"
    restored = EmergencyStop.from_dict(stored, settings)
    assert restored.state == "halted"
    assert restored.trip == ess.trip
    assert restored.on_equity(DAY0_NS + 2 * HOUR_NS, 11_000.0) is None
    assert restored.state == "halted"


def test_round_trip_keeps_references() -> None:
    # Peak 10000 and the day's start survive the restart: 9499 on the same day still trips.
    settings = EmergencyStopSettings()
    ess = EmergencyStop(settings)
    ess.on_equity(DAY0_NS, 10_000.0)
    restored = EmergencyStop.from_dict(ess.to_dict(), settings)
    event = restored.on_equity(DAY0_NS + HOUR_NS, 9_499.0)
    assert event is not None
    assert event.reason == "daily_loss"


def test_from_dict_missing_key() -> None:
    stored = make_ess().to_dict()
    del stored["peak_equity"]
    with pytest.raises(ConfigurationError, match="peak_equity"):
        EmergencyStop.from_dict(stored, EmergencyStopSettings())


def test_from_dict_wrong_version() -> None:
    stored = make_ess().to_dict()
    stored["version"] = 99
    with pytest.raises(ConfigurationError, match="version 99"):
        EmergencyStop.from_dict(stored, EmergencyStopSettings())


def test_nan_equity_raises() -> None:
    with pytest.raises(ValueError, match="NaN"):
        make_ess().on_equity(DAY0_NS, float("nan"))
