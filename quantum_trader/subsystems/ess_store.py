"""The emergency stop's trip record and stored state: the JSON format and the file.

Writes are atomic. The state goes to a temporary file in the same folder, which is flushed,
fsynced and then renamed over the old file. A crash therefore leaves either the old or the new
state on disk, never a mix. A file that cannot be read raises ConfigurationError and is never
replaced by a fresh active state, because it may record a trip that is still in force.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

# Version 1 had no trigger windows, no trip actions and no "reducing" state. It still loads.
STATE_FORMAT_VERSION = 2

TripReason = Literal[
    "daily_loss", "drawdown", "manual", "stop_loss_burst", "execution_errors", "stale_data"
]
TripAction = Literal["halt_entries", "cancel_open_orders", "flatten_positions"]
TradingState = Literal["active", "reducing", "halted"]
_TRIP_REASONS: tuple[str, ...] = get_args(TripReason)
_TRIP_ACTIONS: tuple[str, ...] = get_args(TripAction)
_TRADING_STATES: tuple[str, ...] = get_args(TradingState)


@dataclass(frozen=True, slots=True)
class TripEvent:
    """One trip: when (ns, UTC), why, the deciding numbers, a sentence and the actions.

    ``actions`` are for the engine to apply: ``halt_entries`` (no new position),
    ``cancel_open_orders`` (cancel open orders that are not reduce-only, so protective stops
    and targets stay) and, with ``flatten_on_trip``, ``flatten_positions``.
    """

    time_ns: int
    reason: TripReason
    numbers: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    actions: tuple[TripAction, ...] = ("halt_entries", "cancel_open_orders")


@dataclass(frozen=True, slots=True)
class EssSnapshot:
    """Everything the emergency stop keeps between calls, in the stored form."""

    state: TradingState
    day: int | None
    day_start_equity: float
    peak_equity: float
    last_equity: float | None
    stop_loss_times_ns: tuple[int, ...]
    execution_outcomes: tuple[bool, ...]
    trip: TripEvent | None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-compatible form, with ``state`` for people who read the file."""
        trip = self.trip
        return {
            "version": STATE_FORMAT_VERSION,
            "state": self.state,
            "day": self.day,
            "day_start_equity": self.day_start_equity,
            "peak_equity": self.peak_equity,
            "last_equity": self.last_equity,
            "stop_loss_times_ns": list(self.stop_loss_times_ns),
            "execution_outcomes": list(self.execution_outcomes),
            "trip": None if trip is None else _trip_to_dict(trip),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], default_actions: tuple[TripAction, ...]
    ) -> EssSnapshot:
        """Parse format version 1 or 2. A trip stored without actions gets ``default_actions``.

        Raises ConfigurationError when a key is missing, or the version, a value, the trip
        reason or an action is invalid, or the state contradicts the trip.
        """
        version = data.get("version")
        if version not in (1, STATE_FORMAT_VERSION):
            raise ConfigurationError(
                f"stored ESS state has version {version!r}, expected {STATE_FORMAT_VERSION}; "
                "reset the ESS state or upgrade Quantum Trader"
            )
        try:
            trip = _trip_from_dict(data["trip"], default_actions)
            state = data.get("state", "active" if trip is None else "halted")
            _check_state(state, trip)
            day = data["day"]
            last = data["last_equity"]
            return cls(
                state=state,
                day=None if day is None else int(day),
                day_start_equity=float(data["day_start_equity"]),
                peak_equity=float(data["peak_equity"]),
                last_equity=None if last is None else float(last),
                stop_loss_times_ns=tuple(int(t) for t in data.get("stop_loss_times_ns", [])),
                execution_outcomes=tuple(bool(ok) for ok in data.get("execution_outcomes", [])),
                trip=trip,
            )
        except KeyError as exc:
            raise ConfigurationError(
                f"stored ESS state is missing the key {exc.args[0]!r}; reset the ESS state"
            ) from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"stored ESS state has an invalid value: {exc}") from exc


def _trip_to_dict(trip: TripEvent) -> dict[str, Any]:
    return {
        "time_ns": trip.time_ns,
        "reason": trip.reason,
        "numbers": dict(trip.numbers),
        "detail": trip.detail,
        "actions": list(trip.actions),
    }


def _trip_from_dict(
    data: Mapping[str, Any] | None, default_actions: tuple[TripAction, ...]
) -> TripEvent | None:
    if data is None:
        return None
    reason = data["reason"]
    if reason not in _TRIP_REASONS:
        raise ConfigurationError(
            f"stored ESS trip has the unknown reason {reason!r}; expected one of "
            f"{', '.join(_TRIP_REASONS)}"
        )
    actions = tuple(data.get("actions", default_actions))
    unknown = [action for action in actions if action not in _TRIP_ACTIONS]
    if unknown:
        raise ConfigurationError(
            f"stored ESS trip has the unknown actions {unknown}; expected some of "
            f"{', '.join(_TRIP_ACTIONS)}"
        )
    numbers = {str(key): float(value) for key, value in data["numbers"].items()}
    detail = str(data.get("detail", ""))
    return TripEvent(int(data["time_ns"]), reason, numbers, detail, actions)


def _check_state(state: Any, trip: TripEvent | None) -> None:
    if state not in _TRADING_STATES:
        raise ConfigurationError(
            f"stored ESS state {state!r} is unknown; expected one of {', '.join(_TRADING_STATES)}"
        )
    if (state == "active") != (trip is None):
        found = "no trip" if trip is None else f"a {trip.reason} trip"
        raise ConfigurationError(f"stored ESS state is {state!r} but it has {found}")


def invalid_state_error(path: Path, problem: str) -> ConfigurationError:
    """Build the error for a state file that cannot be used, naming the file and the fix."""
    return ConfigurationError(
        f"ESS state file {path} is invalid: {problem}. Inspect it first, because it may record "
        "a trip that is still in force: repair it, or delete it only once you accept that the "
        "emergency stop starts active."
    )


class EssStateStore:
    """Stores one emergency stop's ``to_dict`` output as JSON at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any] | None:
        """Read the stored state, or return None when the file does not exist.

        Raises ConfigurationError naming the file when it cannot be read, is not UTF-8 JSON
        or does not contain a JSON object.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(
                f"could not read the ESS state file {self.path}: {exc}; check the path and "
                "its permissions"
            ) from exc
        except UnicodeDecodeError as exc:
            raise invalid_state_error(self.path, f"it is not UTF-8 text ({exc})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid_state_error(self.path, f"it is not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            found = type(data).__name__
            raise invalid_state_error(self.path, f"it contains a JSON {found}, not an object")
        return data

    def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` atomically (temporary file, fsync, rename, fsync of the folder).

        Raises ConfigurationError naming the file when the folder cannot be written.
        """
        folder = self.path.parent
        text = json.dumps(state, indent=2, sort_keys=True)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                dir=folder, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise _write_error(self.path, exc) from exc
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            Path(temporary).replace(self.path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise _write_error(self.path, exc) from exc
        _fsync_folder(folder)
        logger.debug("Saved the ESS state (%s) to %s.", state.get("state"), self.path)


def _write_error(path: Path, exc: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"could not write the ESS state to {path}: {exc}. Make the folder writable or point "
        "the state file elsewhere; until then a restart would not know about a trip."
    )


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; POSIX only, because Windows cannot open a folder."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
