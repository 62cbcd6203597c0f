"""AI-HFOS (hedge fund operating system): the supervisor that sets the global mode and directives.

At each cadence point AI-HFOS reads a ``SystemSnapshot`` (every subsystem's health, the ESS
state, the account's drawdown and daily loss, recent results and MSC AI's risk mode) and sets a
global mode. The mode's ``Directives`` bind the Orchestrator Policy, the sizing and the balancer
on the next cycle: AI-HFOS never touches a candidate itself.

Rules, default thresholds. Every rule is checked and the most conservative mode met wins
(critical, then safe, then normal, then aggressive), so MSC AI asking for aggressive while a
subsystem is degraded gives safe:

| mode       | rule (any one of them)                                                        |
|------------|-------------------------------------------------------------------------------|
| critical   | ESS halted (or an unknown ESS state), a safety subsystem (ESS, Trading        |
|            | Mathematician, AELM) failed, drawdown >= 0.12, or failed subsystems >= 3      |
| safe       | ESS reducing, drawdown >= 0.06, daily loss >= 0.03, at least 1 subsystem      |
|            | failed or degraded, MSC AI defensive (or an unknown MSC AI risk mode), or a   |
|            | drawdown or daily loss that is not a number in [0, 1]                         |
| aggressive | all of: MSC AI aggressive, drawdown < 0.02, no subsystem failed or degraded,  |
|            | profit factor >= 1.5, win rate >= 0.5, ensemble hit rate None or >= 0.5       |
| normal     | anything else                                                                 |

The unhealthy count is the larger of ``failed_subsystems`` (as Self-Healing counts them) and the
number of ``health`` entries that are failed or degraded, so one failure reported by both counts
once. A stopped subsystem counts as neither healthy nor unhealthy: it was switched off or, in a
backtest, never started.

Directives per mode (``floor`` is ``confidence_floor``, the normal minimum confidence):

| mode       | size_scale | confidence_floor       | leverage_cap | max_positions |
|------------|------------|------------------------|--------------|---------------|
| critical   | 0          | floor + 0.04           | 1            | 0             |
| safe       | 0.5        | floor + 0.04           | 1            | 2             |
| normal     | 1.0        | floor                  | 3            | 5             |
| aggressive | 1.25       | floor                  | 3            | 5             |

No size scale may exceed 1.5.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.subsystems.base import Health, Mode, Subsystem
from quantum_trader.subsystems.meta_strategy import RiskMode

__all__ = [
    "ESS_STATES",
    "MAX_SIZE_SCALE",
    "Directives",
    "GlobalMode",
    "HedgeFundOS",
    "HfosSettings",
    "SystemSnapshot",
    "collect_health",
]

logger = logging.getLogger(__name__)

MAX_SIZE_SCALE = 1.5
# The ESS trading states: "reducing" blocks entries but lets positions close.
ESS_STATES: tuple[str, ...] = ("active", "reducing", "halted")
UNHEALTHY = (Health.FAILED, Health.DEGRADED)
RISK_MODES = frozenset(mode.value for mode in RiskMode)


class GlobalMode(StrEnum):
    SAFE = "safe"
    NORMAL = "normal"
    AGGRESSIVE = "aggressive"
    CRITICAL = "critical"


# Higher is more conservative; the most conservative mode met wins.
SEVERITY: dict[GlobalMode, int] = {
    GlobalMode.AGGRESSIVE: 0,
    GlobalMode.NORMAL: 1,
    GlobalMode.SAFE: 2,
    GlobalMode.CRITICAL: 3,
}


class HfosSettings(BaseModel):
    """Settings of AI-HFOS. The module docstring gives the rule and directive tables.

    ``confidence_floor`` must match the strategy's entry confidence (``model.entry_confidence``),
    because the Orchestrator Policy takes the larger of the two as its minimum confidence and
    the safe raise would otherwise be lost.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(24, ge=1, le=10_000, description="Candles between two evaluations.")
    safety_subsystems: tuple[str, ...] = Field(
        ("ESS", "Trading Mathematician", "AELM"),
        description="Short names whose failure makes the mode critical.",
    )
    critical_drawdown: float = Field(0.12, gt=0, le=1, description="Drawdown from the peak.")
    critical_failed_subsystems: int = Field(3, ge=1, le=100)
    safe_drawdown: float = Field(0.06, gt=0, le=1)
    safe_daily_loss: float = Field(0.03, gt=0, le=1, description="Loss since the day's start.")
    safe_unhealthy_subsystems: int = Field(1, ge=1, le=100)
    aggressive_max_drawdown: float = Field(0.02, ge=0, le=1)
    aggressive_profit_factor: float = Field(1.5, gt=0, le=100)
    aggressive_win_rate: float = Field(0.5, ge=0, le=1)
    aggressive_hit_rate: float = Field(0.5, ge=0, le=1, description="Min ensemble hit rate.")
    confidence_floor: float = Field(0.56, ge=0.5, lt=1, description="Normal minimum confidence.")
    safe_confidence_raise: float = Field(0.04, ge=0, lt=0.5)
    safe_size_scale: float = Field(0.5, gt=0, le=1)
    aggressive_size_scale: float = Field(1.25, ge=1, le=MAX_SIZE_SCALE)
    # 20 repeats config.HARD_MAX_LEVERAGE, not imported because config imports subsystem settings.
    leverage_cap: float = Field(3.0, ge=1, le=20)
    safe_leverage_cap: float = Field(1.0, ge=1, le=20)
    max_positions: int = Field(5, ge=1, le=200)
    safe_max_positions: int = Field(2, ge=0, le=200)

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> HfosSettings:
        ordered = (
            ("aggressive_max_drawdown", "safe_drawdown"),
            ("safe_drawdown", "critical_drawdown"),
            ("safe_leverage_cap", "leverage_cap"),
            ("safe_max_positions", "max_positions"),
        )
        for low_name, high_name in ordered:
            low, high = getattr(self, low_name), getattr(self, high_name)
            if low > high:
                raise ValueError(f"{low_name}={low} must not exceed {high_name}={high}")
        if self.confidence_floor + self.safe_confidence_raise >= 1:
            raise ValueError(
                f"confidence_floor={self.confidence_floor} plus safe_confidence_raise="
                f"{self.safe_confidence_raise} must stay below 1; lower one of them"
            )
        return self


@dataclass(frozen=True, slots=True)
class SystemSnapshot:
    """AI-HFOS's inputs at one cadence point.

    ``health`` maps short names to health states. ``drawdown`` (from the equity peak) and
    ``daily_loss`` (since the start of the UTC day) are fractions of equity. ``msc_risk_mode``
    is a ``RiskMode`` value. ``recent_profit_factor`` may be infinite (no loss) and
    ``ensemble_hit_rate`` is None without an ML ensemble or before enough predictions resolved.
    """

    health: Mapping[str, Health] = field(default_factory=dict)
    ess_state: str = "active"
    drawdown: float = 0.0
    daily_loss: float = 0.0
    recent_win_rate: float = 0.0
    recent_profit_factor: float = 1.0
    ensemble_hit_rate: float | None = None
    msc_risk_mode: str = RiskMode.NORMAL.value
    failed_subsystems: int = 0
    open_positions: int = 0


@dataclass(frozen=True, slots=True)
class Directives:
    """The global mode and the limits it sets for the next cycle.

    ``binding`` is True only in enforced mode; the policy layer ignores non-binding directives.
    """

    global_mode: GlobalMode
    confidence_floor: float
    size_scale: float
    leverage_cap: float
    max_positions: int
    reason: str = ""
    binding: bool = False

    def limits(self) -> tuple[GlobalMode, float, float, float, int]:
        """Return the mode and the four limits, without the reason and the binding flag."""
        return (
            self.global_mode,
            self.confidence_floor,
            self.size_scale,
            self.leverage_cap,
            self.max_positions,
        )


def collect_health(subsystems: Iterable[Subsystem], now: float | None = None) -> dict[str, Health]:
    """Return the health of each subsystem keyed by its short name, for a ``SystemSnapshot``."""
    return {subsystem.short_name: subsystem.health(now) for subsystem in subsystems}


def _valid_fraction(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


class HedgeFundOS(Subsystem):
    """AI-HFOS: sets the global mode and the directives at each cadence point.

    Call ``evaluate`` every ``cadence`` candles (where ``due`` returns True) and hand
    ``directives`` to the Orchestrator Policy on the next cycle. Before the first evaluation the
    directives are the normal ones. AI-HFOS judges cycles, not candidates: ``seen`` counts
    evaluations, ``changed`` counts evaluations whose binding directives differ from the
    previous ones, and ``vetoed`` stays 0 because the Orchestrator Policy applies the directives
    and counts its own vetoes. A decision is recorded on the first evaluation and whenever the
    mode or a directive changes.
    """

    name = "AI hedge fund operating system"
    short_name = "AI-HFOS"

    def __init__(self, settings: HfosSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self._evaluated = False
        self._directives = self._directives_for(
            GlobalMode.NORMAL, "not evaluated yet: normal directives"
        )

    @property
    def directives(self) -> Directives:
        """The latest directives (the normal ones before the first ``evaluate``)."""
        return self._directives

    def due(self, step: int) -> bool:
        """Return whether ``step`` is an evaluation point (every ``cadence`` steps from 0)."""
        return step % self.cadence == 0

    def evaluate(self, time_ns: int, snapshot: SystemSnapshot) -> Directives:
        """Apply the rules to ``snapshot`` and return the new directives.

        Off mode returns the current directives unchanged. A bad value in the snapshot never
        raises: it is read in the conservative direction and named in the reason.
        """
        if not self.active:
            return self._directives
        self.heartbeat()
        self.seen += 1

        mode, reason = self._global_mode(snapshot)
        directives = self._directives_for(mode, reason)
        previous = self._directives
        if directives.limits() != previous.limits() or not self._evaluated:
            if self.binding and self._evaluated:
                self.changed += 1
            self._record_change(time_ns, directives, snapshot)
        self._directives = directives
        self._evaluated = True
        return directives

    def _global_mode(self, snapshot: SystemSnapshot) -> tuple[GlobalMode, str]:
        """Return the most conservative mode that any rule meets, with the reasons for it."""
        findings = self._critical_findings(snapshot) + self._safe_findings(snapshot)
        proposal = self._aggressive_reason(snapshot)
        if proposal is not None:
            findings.append((GlobalMode.AGGRESSIVE, proposal))
        if not findings:
            findings.append((GlobalMode.NORMAL, "no critical, safe or aggressive rule met"))

        mode = max((found for found, _ in findings), key=SEVERITY.__getitem__)
        reasons = [text for found, text in findings if found is mode]
        reason = f"{mode} mode: " + "; ".join(reasons)
        if snapshot.msc_risk_mode == RiskMode.AGGRESSIVE and mode is not GlobalMode.AGGRESSIVE:
            reason += "; MSC AI asked for aggressive, but the most conservative mode wins"
        return mode, reason

    def _critical_findings(self, snap: SystemSnapshot) -> list[tuple[GlobalMode, str]]:
        s = self.settings
        found: list[str] = []
        if snap.ess_state == "halted":
            found.append("the ESS is halted")
        elif snap.ess_state not in ESS_STATES:
            found.append(f"ESS state {snap.ess_state!r} is unknown, read as halted")
        failed = [name for name in s.safety_subsystems if snap.health.get(name) == Health.FAILED]
        if failed:
            found.append(f"safety subsystem failed: {', '.join(failed)}")
        if _valid_fraction(snap.drawdown) and snap.drawdown >= s.critical_drawdown:
            found.append(f"drawdown {snap.drawdown:.2%} >= {s.critical_drawdown:.2%}")
        if snap.failed_subsystems >= s.critical_failed_subsystems:
            found.append(
                f"{snap.failed_subsystems} subsystems failed >= {s.critical_failed_subsystems}"
            )
        return [(GlobalMode.CRITICAL, text) for text in found]

    def _safe_findings(self, snap: SystemSnapshot) -> list[tuple[GlobalMode, str]]:
        s = self.settings
        found: list[str] = []
        if snap.ess_state == "reducing":
            found.append("the ESS is reducing positions")
        for label, value in (("drawdown", snap.drawdown), ("daily loss", snap.daily_loss)):
            if not _valid_fraction(value):
                found.append(f"{label} {value} is not a fraction in [0, 1], read as unsafe")
        if _valid_fraction(snap.drawdown) and snap.drawdown >= s.safe_drawdown:
            found.append(f"drawdown {snap.drawdown:.2%} >= {s.safe_drawdown:.2%}")
        if _valid_fraction(snap.daily_loss) and snap.daily_loss >= s.safe_daily_loss:
            found.append(f"daily loss {snap.daily_loss:.2%} >= {s.safe_daily_loss:.2%}")
        unhealthy = self._unhealthy(snap)
        if unhealthy >= s.safe_unhealthy_subsystems:
            found.append(
                f"{unhealthy} subsystems failed or degraded >= {s.safe_unhealthy_subsystems}"
            )
        if snap.msc_risk_mode == RiskMode.DEFENSIVE:
            found.append("MSC AI is defensive")
        elif snap.msc_risk_mode not in RISK_MODES:
            found.append(f"MSC AI risk mode {snap.msc_risk_mode!r} is unknown, read as defensive")
        return [(GlobalMode.SAFE, text) for text in found]

    def _aggressive_reason(self, snap: SystemSnapshot) -> str | None:
        """Return why the aggressive mode is met, or None when any condition fails."""
        s = self.settings
        hit_rate = snap.ensemble_hit_rate
        met = (
            snap.msc_risk_mode == RiskMode.AGGRESSIVE
            and _valid_fraction(snap.drawdown)
            and snap.drawdown < s.aggressive_max_drawdown
            and self._unhealthy(snap) == 0
            and snap.recent_profit_factor >= s.aggressive_profit_factor
            and snap.recent_win_rate >= s.aggressive_win_rate
            and (hit_rate is None or hit_rate >= s.aggressive_hit_rate)
        )
        if not met:
            return None
        return (
            f"MSC AI aggressive, drawdown {snap.drawdown:.2%}, all subsystems healthy, profit "
            f"factor {snap.recent_profit_factor:.2f}, win rate {snap.recent_win_rate:.2%}"
        )

    @staticmethod
    def _unhealthy(snap: SystemSnapshot) -> int:
        reported = sum(1 for health in snap.health.values() if health in UNHEALTHY)
        return max(snap.failed_subsystems, reported)

    def _directives_for(self, mode: GlobalMode, reason: str) -> Directives:
        s = self.settings
        raised = s.confidence_floor + s.safe_confidence_raise
        if mode is GlobalMode.CRITICAL:
            limits = (raised, 0.0, s.safe_leverage_cap, 0)
        elif mode is GlobalMode.SAFE:
            limits = (raised, s.safe_size_scale, s.safe_leverage_cap, s.safe_max_positions)
        elif mode is GlobalMode.AGGRESSIVE:
            limits = (s.confidence_floor, s.aggressive_size_scale, s.leverage_cap, s.max_positions)
        else:
            limits = (s.confidence_floor, 1.0, s.leverage_cap, s.max_positions)
        return Directives(mode, *limits, reason=reason, binding=self.binding)

    def _record_change(self, time_ns: int, directives: Directives, snap: SystemSnapshot) -> None:
        numbers = {
            "size_scale": directives.size_scale,
            "confidence_floor": directives.confidence_floor,
            "leverage_cap": directives.leverage_cap,
            "max_positions": float(directives.max_positions),
            "drawdown": snap.drawdown,
            "daily_loss": snap.daily_loss,
            "win_rate": snap.recent_win_rate,
            "unhealthy_subsystems": float(self._unhealthy(snap)),
            "open_positions": float(snap.open_positions),
        }
        if math.isfinite(snap.recent_profit_factor):
            numbers["profit_factor"] = snap.recent_profit_factor
        if snap.ensemble_hit_rate is not None:
            numbers["ensemble_hit_rate"] = snap.ensemble_hit_rate
        self.record(time_ns, "*", Action.MODE_CHANGE, directives.reason, numbers)

        level = logging.WARNING if directives.global_mode is GlobalMode.CRITICAL else logging.INFO
        logger.log(level, "AI-HFOS at %d ns (%s): %s", time_ns, self.mode, directives.reason)
