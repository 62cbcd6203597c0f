"""MSC AI (meta strategy controller): the account's risk mode and the strategy profiles in use.

At each cadence point the controller reads the account's recent record, the market regime and
each profile's own recent record. It sets a risk mode, which scales the risk per trade, and the
set of active profiles, whose candidates may pass. The inputs (regime, records, account stats,
profile score) are defined in ``quantum_trader.subsystems.meta_inputs`` and re-exported here.

Risk mode, from the last ``lookback_trades`` closed trades and the drawdown from the equity peak
(default thresholds). The defensive rules are checked first:

| mode       | rule                                                                    | scale |
|------------|-------------------------------------------------------------------------|-------|
| defensive  | drawdown >= 0.08, or losing streak >= 5, or (trades >= 10 and PF < 0.8) | 0.5   |
| aggressive | drawdown < 0.03 and trades >= 20 and win rate >= 0.55 and PF >= 1.5     | 1.25  |
| normal     | anything else                                                           | 1.0   |

PF is the profit factor; a record with neither profit nor loss counts as PF 1.0. No risk scale
may exceed 1.5.

Profiles: ``ml_ensemble`` (the AI strategy), ``trend_following`` (the EMA-cross strategy) and
``mean_reversion`` (the mean-reversion strategy). A profile is active when its own last
``lookback_trades`` trades are fewer than ``min_profile_trades`` (too few to judge, so it gets
the benefit of the doubt) or have PF >= ``min_profile_pf``, and it fits the regime:
trend_following needs "trending", mean_reversion needs "ranging", ml_ensemble fits any regime.
When no profile qualifies, the best-scoring one stays active, so some strategy can always trade.
Ties go to the earlier profile in ``MetaSettings.profiles``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quantum_trader.core.types import Trade
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.meta_inputs import (
    RANGING,
    REGIMES,
    TRENDING,
    VOLATILE,
    AccountStats,
    TradeRecord,
    classify_regime,
    profile_score,
    summarise_trades,
)

__all__ = [
    "MEAN_REVERSION",
    "ML_ENSEMBLE",
    "PROFILES",
    "RANGING",
    "REGIMES",
    "TRENDING",
    "TREND_FOLLOWING",
    "VOLATILE",
    "AccountStats",
    "MetaDecision",
    "MetaSettings",
    "MetaStrategyController",
    "RiskMode",
    "TradeRecord",
    "classify_regime",
    "profile_score",
    "summarise_trades",
]

logger = logging.getLogger(__name__)

ML_ENSEMBLE = "ml_ensemble"
TREND_FOLLOWING = "trend_following"
MEAN_REVERSION = "mean_reversion"
PROFILES: tuple[str, ...] = (ML_ENSEMBLE, TREND_FOLLOWING, MEAN_REVERSION)

# The regime each profile needs. A profile missing here fits every regime.
PROFILE_REGIME: dict[str, str] = {TREND_FOLLOWING: TRENDING, MEAN_REVERSION: RANGING}

MAX_RISK_SCALE = 1.5


class RiskMode(StrEnum):
    DEFENSIVE = "defensive"
    NORMAL = "normal"
    AGGRESSIVE = "aggressive"


class MetaSettings(BaseModel):
    """Settings of MSC AI. The module docstring gives the rule table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(24, ge=1, le=10_000, description="Candles between two evaluations.")
    lookback_trades: int = Field(30, ge=1, le=10_000, description="Closed trades judged.")
    profiles: tuple[str, ...] = Field(PROFILES, min_length=1, description="Profiles in use.")
    record_days: float | None = Field(
        30.0,
        gt=0,
        le=3650,
        description="Only trades closed in the last this many days count toward a profile's "
        "record, so a profile switched off for a poor record gets another chance later. "
        "None counts every trade.",
    )
    defensive_drawdown: float = Field(0.08, gt=0, lt=1)
    defensive_losing_streak: int = Field(5, ge=1, le=1_000)
    defensive_min_trades: int = Field(10, ge=1, le=10_000)
    defensive_profit_factor: float = Field(0.8, ge=0, le=10)
    aggressive_max_drawdown: float = Field(0.03, ge=0, lt=1)
    aggressive_min_trades: int = Field(20, ge=1, le=10_000)
    aggressive_win_rate: float = Field(0.55, gt=0, le=1)
    aggressive_profit_factor: float = Field(1.5, gt=0, le=100)
    defensive_risk_scale: float = Field(0.5, gt=0, le=MAX_RISK_SCALE)
    normal_risk_scale: float = Field(1.0, gt=0, le=MAX_RISK_SCALE)
    aggressive_risk_scale: float = Field(1.25, gt=0, le=MAX_RISK_SCALE)
    min_profile_pf: float = Field(0.9, ge=0, le=10, description="Profit factor to stay active.")
    min_profile_trades: int = Field(10, ge=1, le=10_000, description="Trades before judging.")
    trending_efficiency: float = Field(
        0.3, gt=0, le=1, description="Trend floor of classify_regime."
    )

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, profiles: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in profiles if p not in PROFILES]
        if unknown or len(set(profiles)) != len(profiles):
            raise ValueError(
                f"profiles {list(profiles)} must be distinct names from {list(PROFILES)}"
            )
        return profiles

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> MetaSettings:
        if self.aggressive_max_drawdown >= self.defensive_drawdown:
            raise ValueError(
                f"aggressive_max_drawdown={self.aggressive_max_drawdown} must be below "
                f"defensive_drawdown={self.defensive_drawdown}"
            )
        if self.aggressive_profit_factor <= self.defensive_profit_factor:
            raise ValueError(
                f"aggressive_profit_factor={self.aggressive_profit_factor} must exceed "
                f"defensive_profit_factor={self.defensive_profit_factor}"
            )
        scales = (self.defensive_risk_scale, self.normal_risk_scale, self.aggressive_risk_scale)
        if not scales[0] <= scales[1] <= scales[2]:
            raise ValueError(
                f"risk scales defensive={scales[0]}, normal={scales[1]}, aggressive={scales[2]} "
                "must not decrease from defensive to aggressive"
            )
        return self

    def risk_scale_of(self, mode: RiskMode) -> float:
        """Return the risk scale of ``mode``."""
        if mode is RiskMode.DEFENSIVE:
            return self.defensive_risk_scale
        if mode is RiskMode.AGGRESSIVE:
            return self.aggressive_risk_scale
        return self.normal_risk_scale


@dataclass(frozen=True, slots=True)
class MetaDecision:
    """One evaluation: the risk mode and its scale, the active profiles and their scores.

    ``binding`` is True only in enforced mode. Unless it is True, the pipeline must neither veto
    nor rescale on this decision.
    """

    risk_mode: RiskMode
    risk_scale: float
    active_profiles: frozenset[str]
    scores: dict[str, float] = field(default_factory=dict)
    binding: bool = False
    reason: str = ""


class MetaStrategyController(Subsystem):
    """MSC AI: sets the risk mode and the active profiles at each cadence point.

    Call ``update`` at each cadence point, then for every candidate ``allows`` once (this
    counts it as seen) and, for a candidate that passes, ``scale_risk`` on its risk per trade.
    Before the first ``update`` the mode is normal and every profile in the settings is active.
    """

    name = "meta strategy controller"
    short_name = "MSC AI"

    def __init__(self, settings: MetaSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self._evaluated = False
        self._decision = MetaDecision(
            RiskMode.NORMAL,
            settings.normal_risk_scale,
            frozenset(settings.profiles),
            dict.fromkeys(settings.profiles, 0.5),
            self.binding,
            "not evaluated yet: normal mode, every profile active",
        )

    @property
    def decision(self) -> MetaDecision:
        """The latest decision (the initial one before the first ``update``)."""
        return self._decision

    def update(
        self,
        time_ns: int,
        account: AccountStats,
        regime: str,
        profile_trades: Mapping[str, Sequence[Trade]],
    ) -> MetaDecision:
        """Evaluate the rules and return the new decision. Off mode returns the current one.

        ``profile_trades`` maps a profile to its closed trades, oldest first. A missing profile
        has no trades. A decision is recorded on the first evaluation and whenever the risk
        mode or the active set changes. Raises ConfigurationError on an unknown regime or
        profile name.
        """
        if regime not in REGIMES:
            raise ConfigurationError(f"regime {regime!r} is unknown; use one of {list(REGIMES)}")
        unknown = sorted(set(profile_trades) - set(PROFILES))
        if unknown:
            raise ConfigurationError(f"profiles {unknown} are unknown; use {list(PROFILES)}")
        if not self.active:
            return self._decision

        settings = self.settings
        mode, mode_reason = self._risk_mode(account)
        records = {
            profile: summarise_trades(profile_trades.get(profile, ())[-settings.lookback_trades :])
            for profile in settings.profiles
        }
        scores = {p: profile_score(r, settings.min_profile_trades) for p, r in records.items()}
        active, notes = self._activate(regime, records, scores)
        reason = f"{mode} mode: {mode_reason}; regime {regime}; " + "; ".join(notes)
        decision = MetaDecision(
            mode, settings.risk_scale_of(mode), active, scores, self.binding, reason
        )

        previous = self._decision
        switched = (previous.risk_mode, previous.active_profiles) != (mode, active)
        if switched or not self._evaluated:
            self._record_change(time_ns, decision, account)
        self._decision = decision
        self._evaluated = True
        self.heartbeat()
        return decision

    def allows(self, time_ns: int, symbol: str, profile: str) -> bool:
        """Return whether a candidate of ``profile`` on ``symbol`` may pass.

        Enforced, only active profiles pass, and a blocked candidate is counted and recorded
        as a veto. In observe or advisory mode every candidate passes, and the would-be veto
        is recorded as an approval. Off, every candidate passes uncounted.
        """
        if profile not in PROFILES:
            raise ConfigurationError(f"profile {profile!r} is unknown; use {list(PROFILES)}")
        if not self.active:
            return True
        self.seen += 1
        decision = self._decision
        if profile in decision.active_profiles:
            return True

        active = ", ".join(sorted(decision.active_profiles))
        reason = f"profile {profile} is not active in {decision.risk_mode} mode (active: {active})"
        if self.binding:
            self.vetoed += 1
            self.record(time_ns, symbol, Action.VETO, f"entry vetoed: {reason}")
            return False
        self.record(time_ns, symbol, Action.APPROVE, f"not enforced, would veto: {reason}")
        return True

    def risk_scale(self) -> float:
        """Return the factor on the risk per trade: the mode's scale when enforced, else 1.0."""
        return self._decision.risk_scale if self.binding else 1.0

    def scale_risk(self, time_ns: int, symbol: str, risk: float) -> float:
        """Scale ``risk`` by ``risk_scale()``, and count and record a resize.

        In observe or advisory mode ``risk`` comes back unchanged, and a scale other than 1 is
        recorded as an approval that names the scale it would apply.
        """
        if not (math.isfinite(risk) and risk >= 0):
            raise ConfigurationError(f"risk {risk} is invalid; pass a finite fraction >= 0")
        scale = self._decision.risk_scale
        if not self.active or scale == 1.0:
            return risk

        numbers = {"risk": risk, "risk_scale": scale, "scaled_risk": risk * scale}
        mode = self._decision.risk_mode
        if self.binding:
            self.changed += 1
            self.record(
                time_ns, symbol, Action.RESIZE, f"risk scaled by {scale:g} in {mode} mode", numbers
            )
            return risk * scale
        reason = f"not enforced, would scale risk by {scale:g} in {mode} mode"
        self.record(time_ns, symbol, Action.APPROVE, reason, numbers)
        return risk

    def _risk_mode(self, account: AccountStats) -> tuple[RiskMode, str]:
        s = self.settings
        pf = account.judged_profit_factor
        if account.drawdown >= s.defensive_drawdown:
            return RiskMode.DEFENSIVE, (
                f"drawdown {account.drawdown:.2%} >= {s.defensive_drawdown:.2%}"
            )
        if account.losing_streak >= s.defensive_losing_streak:
            return RiskMode.DEFENSIVE, (
                f"losing streak {account.losing_streak} >= {s.defensive_losing_streak}"
            )
        if account.trades >= s.defensive_min_trades and pf < s.defensive_profit_factor:
            return RiskMode.DEFENSIVE, (
                f"profit factor {pf:.2f} < {s.defensive_profit_factor:g} over "
                f"{account.trades} trades"
            )
        if (
            account.drawdown < s.aggressive_max_drawdown
            and account.trades >= s.aggressive_min_trades
            and account.win_rate >= s.aggressive_win_rate
            and pf >= s.aggressive_profit_factor
        ):
            return RiskMode.AGGRESSIVE, (
                f"drawdown {account.drawdown:.2%}, win rate {account.win_rate:.2%} and profit "
                f"factor {pf:.2f} over {account.trades} trades"
            )
        return RiskMode.NORMAL, "no defensive or aggressive rule met"

    def _activate(
        self, regime: str, records: Mapping[str, TradeRecord], scores: Mapping[str, float]
    ) -> tuple[frozenset[str], list[str]]:
        s = self.settings
        active: list[str] = []
        notes: list[str] = []
        for profile in s.profiles:
            record = records[profile]
            needed = PROFILE_REGIME.get(profile)
            pf = record.judged_profit_factor
            if needed is not None and needed != regime:
                notes.append(f"{profile} inactive: needs a {needed} regime")
            elif record.trades >= s.min_profile_trades and pf < s.min_profile_pf:
                notes.append(
                    f"{profile} inactive: profit factor {pf:.2f} < {s.min_profile_pf:g} over "
                    f"{record.trades} trades"
                )
            else:
                active.append(profile)
        if not active:
            # max() keeps the first of equal scores, so ties go to the earlier profile.
            best = max(s.profiles, key=lambda profile: scores[profile])
            active.append(best)
            notes.append(f"{best} kept active with the best score {scores[best]:.3f}")
        notes.append(f"active: {', '.join(sorted(active))}")
        return frozenset(active), notes

    def _record_change(self, time_ns: int, decision: MetaDecision, account: AccountStats) -> None:
        numbers = {
            "risk_scale": decision.risk_scale,
            "drawdown": account.drawdown,
            "win_rate": account.win_rate,
            "losing_streak": float(account.losing_streak),
            "trades": float(account.trades),
        }
        if account.profit_factor is not None and math.isfinite(account.profit_factor):
            numbers["profit_factor"] = account.profit_factor
        numbers.update({f"score_{p}": score for p, score in decision.scores.items()})
        self.record(time_ns, "*", Action.MODE_CHANGE, decision.reason, numbers)
        logger.info("MSC AI at %d ns (%s): %s", time_ns, self.mode, decision.reason)
