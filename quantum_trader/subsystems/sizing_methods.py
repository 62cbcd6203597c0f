"""Share of equity at risk per trade for the risk-based sizing methods.

- ``risk``: ``risk_per_trade``.
- ``volatility``: ``risk_per_trade x clip(target_volatility / volatility, min_scale, max_scale)``,
  where ``volatility`` is the realised per-candle standard deviation of log returns. A missing,
  non-finite or non-positive volatility falls back to ``risk_per_trade``, because a flat or
  unknown market gives no basis for raising the risk.
- ``kelly``: from the pnl ratios of the last ``kelly_window`` closed trades (non-finite ones
  skipped), the win rate ``p`` (pnl ratio > 0) and the payoff ratio ``b`` (mean win over mean
  loss, losses being pnl ratio < 0) give the full Kelly fraction ``f* = p - (1 - p) / b``. The
  share is ``min(kelly_fraction x f*, max_kelly_risk)``. With fewer than ``kelly_min_trades``
  trades, ``risk_per_trade`` applies. ``f* <= 0`` means no edge, and the trade is rejected.

The caller's risk scale (the risk mode's multiplier) multiplies the share of every method, after
the Kelly cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from quantum_trader.config import RiskSettings
from quantum_trader.core.types import Trade


@dataclass(frozen=True, slots=True)
class KellyEstimate:
    """The Kelly inputs and result over the trades read.

    ``payoff_ratio`` is infinite when no trade lost and 0 when none won. ``full_kelly`` is then
    ``win_rate`` or -1 respectively. With no win the formula tends to minus infinity, and -1
    keeps the logged numbers finite.
    """

    trades: int
    win_rate: float
    payoff_ratio: float
    full_kelly: float


@dataclass(frozen=True, slots=True)
class RiskShare:
    """The share of equity to risk, or ``rejection`` set when the method finds no edge."""

    share: float
    note: str
    numbers: dict[str, float] = field(default_factory=dict)
    rejection: str | None = None


def full_kelly(win_rate: float, payoff_ratio: float) -> float:
    """Return the full Kelly fraction ``p - (1 - p) / b``, which is ``p`` for an infinite ``b``."""
    if payoff_ratio <= 0:
        return -1.0
    return win_rate - (1.0 - win_rate) / payoff_ratio


def estimate_kelly(trades: Sequence[Trade], window: int) -> KellyEstimate:
    """Estimate the win rate, payoff ratio and full Kelly fraction of the last ``window`` trades.

    ``trades`` are closed trades, oldest first. Trades with a non-finite pnl ratio are skipped,
    so fewer than ``window`` may count.
    """
    ratios = [trade.pnl_ratio for trade in trades[-window:] if math.isfinite(trade.pnl_ratio)]
    if not ratios:
        return KellyEstimate(0, 0.0, 0.0, -1.0)
    wins = [ratio for ratio in ratios if ratio > 0]
    losses = [-ratio for ratio in ratios if ratio < 0]
    win_rate = len(wins) / len(ratios)
    if not wins:
        payoff_ratio = 0.0
    elif not losses:
        payoff_ratio = math.inf
    else:
        payoff_ratio = (math.fsum(wins) / len(wins)) / (math.fsum(losses) / len(losses))
    return KellyEstimate(len(ratios), win_rate, payoff_ratio, full_kelly(win_rate, payoff_ratio))


def volatility_scale(target: float, realised: float, min_scale: float, max_scale: float) -> float:
    """Return ``clip(target / realised, min_scale, max_scale)`` for a positive realised value."""
    return min(max(target / realised, min_scale), max_scale)


def choose_risk_share(
    risk: RiskSettings,
    risk_scale: float,
    recent_trades: Sequence[Trade] | None,
    volatility: float | None,
) -> RiskShare:
    """Choose the share of equity at risk for ``risk.sizing`` (rules in the module docstring)."""
    base = risk.risk_per_trade
    if risk.sizing == "volatility":
        share = _volatility_share(risk, volatility)
    elif risk.sizing == "kelly":
        share = _kelly_share(risk, recent_trades or ())
    else:
        share = RiskShare(base, f"risk_per_trade {base:.2%}")
    if share.rejection is not None or risk_scale == 1.0:
        return share
    scaled = share.share * risk_scale
    note = f"{share.note}, times risk scale {risk_scale:g} = {scaled:.4%}"
    return RiskShare(scaled, note, {**share.numbers, "risk_scale": risk_scale})


def _volatility_share(risk: RiskSettings, volatility: float | None) -> RiskShare:
    base = risk.risk_per_trade
    if volatility is None or not (math.isfinite(volatility) and volatility > 0):
        return RiskShare(
            base, f"realised volatility {volatility!r} unknown, so risk_per_trade {base:.2%}"
        )
    scale = volatility_scale(
        risk.target_volatility, volatility, risk.volatility_min_scale, risk.volatility_max_scale
    )
    share = base * scale
    note = (
        f"risk_per_trade {base:.2%} x volatility scale {scale:.4g} (target "
        f"{risk.target_volatility:.4%} over realised {volatility:.4%}, clipped to "
        f"[{risk.volatility_min_scale:g}, {risk.volatility_max_scale:g}]) = {share:.4%}"
    )
    numbers = {"volatility": volatility, "volatility_scale": scale}
    return RiskShare(share, note, numbers)


def _kelly_share(risk: RiskSettings, trades: Sequence[Trade]) -> RiskShare:
    base = risk.risk_per_trade
    estimate = estimate_kelly(trades, risk.kelly_window)
    numbers = {"kelly_trades": float(estimate.trades)}
    if estimate.trades < risk.kelly_min_trades:
        note = (
            f"Kelly needs {risk.kelly_min_trades} closed trades and has {estimate.trades}, so "
            f"risk_per_trade {base:.2%}"
        )
        return RiskShare(base, note, numbers)

    numbers["win_rate"] = estimate.win_rate
    numbers["full_kelly"] = estimate.full_kelly
    if math.isfinite(estimate.payoff_ratio):
        numbers["payoff_ratio"] = estimate.payoff_ratio
    summary = (
        f"win rate {estimate.win_rate:.4g} and payoff ratio {estimate.payoff_ratio:.4g} over "
        f"{estimate.trades} trades give full Kelly {estimate.full_kelly:.4g}"
    )
    if estimate.full_kelly <= 0:
        return RiskShare(0.0, summary, numbers, rejection=f"no edge: {summary}; no order")

    fractional = risk.kelly_fraction * estimate.full_kelly
    share = min(fractional, risk.max_kelly_risk)
    numbers["kelly_share"] = share
    note = f"{summary}; {risk.kelly_fraction:g} of it is {fractional:.4%}"
    if share < fractional:
        note += f", capped at max_kelly_risk {risk.max_kelly_risk:.2%}"
    return RiskShare(share, note, numbers)
