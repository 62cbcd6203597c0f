"""Changes to a running session that do not come from the candles, and how to apply them again.

An operator's ESS trip or reset, a subsystem's mode change and a stale-data trip of a live feed
each change what the following steps decide. The trader logs each one with the number of steps
processed before it, and a replay (a restart from the journal, or a rebuild of a live session)
applies it before the same step. The replay then rebuilds exactly the state that was journaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantum_trader.backtest.runner import TradingSession
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode

COMMAND_KINDS = ("mode", "trip", "reset", "stale_data")


@dataclass(frozen=True, slots=True)
class LoggedCommand:
    """A command applied before step ``step`` (0-based) of the timeline.

    ``payload`` contains its arguments as JSON types: ``mode`` {short_name, mode}, ``trip``
    {reason}, ``reset`` {authorised_by}, ``stale_data`` {newest_ns, now_ns}.
    """

    step: int
    kind: str
    payload: dict[str, Any]

    def apply(self, session: TradingSession) -> None:
        """Apply the command to ``session``."""
        apply_command(session, self.kind, self.payload)


def apply_command(session: TradingSession, kind: str, payload: dict[str, Any]) -> None:
    """Apply one command to ``session`` (see ``LoggedCommand`` for the payloads)."""
    if kind == "mode":
        set_session_mode(session, str(payload["short_name"]), str(payload["mode"]))
    elif kind == "trip":
        trip_session(session, str(payload["reason"]))
    elif kind == "reset":
        reset_session(session, str(payload["authorised_by"]))
    elif kind == "stale_data":
        event = session.emergency_stop.on_market_data(
            int(payload["newest_ns"]), int(payload["now_ns"])
        )
        if event is not None:
            session.pipeline.on_trip(event, session.kernel.clock.now_ns())
    else:
        raise ConfigurationError(
            f"unknown command kind {kind!r} in the journal; expected one of {COMMAND_KINDS}"
        )


def replay(session: TradingSession, steps: int, commands: list[LoggedCommand]) -> None:
    """Step ``session`` through its first ``steps`` candle times, applying ``commands`` where
    they were logged; commands logged at ``steps`` are applied after the last step."""
    by_step: dict[int, list[LoggedCommand]] = {}
    for command in commands:
        by_step.setdefault(command.step, []).append(command)
    for step in range(steps):
        for command in by_step.pop(step, []):
            command.apply(session)
        session.kernel.step(step)
    for command in by_step.pop(steps, []):
        command.apply(session)


def set_session_mode(session: TradingSession, short_name: str, mode: Mode | str) -> Mode:
    """Set a subsystem's configured mode in ``session`` and return its effective mode."""
    if session.stack is None:
        raise ConfigurationError("this session runs without subsystems")
    return session.stack.registry.set_mode(short_name, mode)


def trip_session(session: TradingSession, reason: str) -> None:
    """Trip ``session``'s ESS by hand and cancel its pending entries, as any trip does."""
    now = session.kernel.clock.now_ns()
    was_active = session.emergency_stop.trip is None
    event = session.emergency_stop.trip_manual(now, reason)
    if was_active:
        session.pipeline.on_trip(event, now)


def reset_session(session: TradingSession, authorised_by: str) -> None:
    """Lift ``session``'s ESS trip and restart the equity peak at the current equity."""
    session.emergency_stop.reset(session.kernel.clock.now_ns(), authorised_by)
    equity = session.kernel.equity
    # Without a new peak, the drawdown read by AI-HFOS would keep trading stopped.
    session.pipeline.equity_peak = float(equity[-1]) if len(equity) else session.exchange.cash
