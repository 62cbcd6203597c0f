"""The decision log: every approval, resize, veto and trip, with its reason and numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    SIGNAL = "signal"
    APPROVE = "approve"
    RESIZE = "resize"
    VETO = "veto"
    REJECT = "reject"
    TRIP = "trip"
    RESET = "reset"
    SUBMIT = "submit"
    # A subsystem switched its own policy, such as MSC AI's risk mode or active strategy set.
    MODE_CHANGE = "mode_change"
    # Self-Healing restarted a failed subsystem.
    RESTART = "restart"


@dataclass(slots=True)
class Decision:
    """One subsystem's verdict on one candidate (or on the account, for the ESS).

    Not frozen because a frozen dataclass is several times slower to create, and a backtest
    records one per candidate; treat instances as read-only.
    """

    time_ns: int
    symbol: str
    subsystem: str
    action: Action
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


class DecisionLog:
    """An append-only list of decisions with counts per subsystem and action."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    def record(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for decision in self.decisions:
            per_action = table.setdefault(decision.subsystem, {})
            per_action[decision.action.value] = per_action.get(decision.action.value, 0) + 1
        return table
