"""MSC AI inputs: the market regime, trade records, account stats and the profile score.

A win has pnl > 0 and a loss pnl < 0. A break-even trade is neither. The profit factor (PF) is
gross profit over gross loss: infinite with profits and no loss, and None with neither, which
the rules read as 1.0 (break-even).

Profile score, in [0, 1]: with ``n`` trades, win rate ``w`` and profit factor ``pf``,
``quality = (pf / (1 + pf) + w) / 2`` (an infinite PF counts as 1) and
``score = 0.5 + (quality - 0.5) x n / (n + k)`` with ``k`` the prior trades
(``min_profile_trades``). A profile without trades scores the neutral 0.5, and the score moves
towards its record's quality as trades accumulate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from quantum_trader.core.types import Trade
from quantum_trader.errors import ConfigurationError, SkipCycle

TRENDING = "trending"
RANGING = "ranging"
VOLATILE = "volatile"
REGIMES: tuple[str, ...] = (TRENDING, RANGING, VOLATILE)

NEUTRAL_PROFIT_FACTOR = 1.0


def classify_regime(
    efficiency_ratio: float,
    volatility: float,
    vol_high: float,
    trending_efficiency: float = 0.3,
) -> str:
    """Classify the market as "volatile", "trending" or "ranging", checked in that order.

    Volatile when ``volatility > vol_high``: in that state stops sized for normal swings are hit
    by noise, so neither rule profile fits even along a trend. Trending when
    ``efficiency_ratio >= trending_efficiency`` (the efficiency ratio is the net move over the
    sum of the absolute moves, 0..1). Ranging otherwise. Raises SkipCycle on a NaN input (an
    indicator still warming up) and ConfigurationError on a value out of its range.
    """
    if math.isnan(efficiency_ratio) or math.isnan(volatility):
        raise SkipCycle(
            f"regime unknown: efficiency ratio {efficiency_ratio} or volatility {volatility} is "
            "NaN; wait until both indicators have warmed up"
        )
    if not 0.0 <= efficiency_ratio <= 1.0:
        raise ConfigurationError(
            f"efficiency ratio {efficiency_ratio} is outside [0, 1]; pass |net move| / sum of "
            "|moves|"
        )
    if volatility < 0 or not vol_high > 0:
        raise ConfigurationError(
            f"volatility {volatility} must be >= 0 and vol_high {vol_high} > 0; pass both in "
            "the same unit, for example the standard deviation of returns"
        )
    if not 0.0 < trending_efficiency <= 1.0:
        raise ConfigurationError(
            f"trending_efficiency {trending_efficiency} is outside (0, 1]; use a value such as 0.3"
        )
    if volatility > vol_high:
        return VOLATILE
    if efficiency_ratio >= trending_efficiency:
        return TRENDING
    return RANGING


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """Win rate, profit factor and losing streak (consecutive losses at the end) of trades.

    A win has pnl > 0 and a loss pnl < 0. A break-even trade is neither, so it ends a losing
    streak. ``profit_factor`` is gross profit over gross loss: ``math.inf`` with profits and no
    loss, None with neither profit nor loss.
    """

    trades: int = 0
    win_rate: float = 0.0
    profit_factor: float | None = None
    losing_streak: int = 0

    def __post_init__(self) -> None:
        valid = (
            0 <= self.losing_streak <= self.trades
            and 0.0 <= self.win_rate <= 1.0
            and (self.profit_factor is None or self.profit_factor >= 0.0)
        )
        if not valid:
            raise ConfigurationError(
                f"trade record {self} is invalid; use 0 <= losing_streak <= trades, a win rate "
                "in [0, 1] and a profit factor >= 0 or None"
            )

    @property
    def judged_profit_factor(self) -> float:
        """The profit factor the rules read: None counts as 1.0 (break-even)."""
        return NEUTRAL_PROFIT_FACTOR if self.profit_factor is None else self.profit_factor


def summarise_trades(trades: Sequence[Trade]) -> TradeRecord:
    """Summarise ``trades``, given in the order they closed (oldest first)."""
    pnls = [trade.pnl for trade in trades]
    if any(math.isnan(pnl) for pnl in pnls):
        raise ConfigurationError("a trade has a NaN pnl; repair the trade list")
    profit = sum(p for p in pnls if p > 0)
    loss = -sum(p for p in pnls if p < 0)
    if loss > 0:
        profit_factor: float | None = profit / loss
    else:
        profit_factor = math.inf if profit > 0 else None

    streak = 0
    for pnl in reversed(pnls):
        if pnl >= 0:
            break
        streak += 1
    wins = sum(1 for p in pnls if p > 0)
    win_rate = wins / len(pnls) if pnls else 0.0
    return TradeRecord(len(pnls), win_rate, profit_factor, streak)


@dataclass(frozen=True, slots=True)
class AccountStats(TradeRecord):
    """The account's recent trade record and its drawdown from the equity peak (0..1)."""

    drawdown: float = 0.0

    def __post_init__(self) -> None:
        TradeRecord.__post_init__(self)
        if not 0.0 <= self.drawdown <= 1.0:
            raise ConfigurationError(f"drawdown {self.drawdown} is outside [0, 1]")

    @classmethod
    def from_trades(
        cls,
        trades: Sequence[Trade],
        equity_peak: float,
        equity_now: float,
        lookback: int | None = None,
    ) -> AccountStats:
        """Build the stats of the last ``lookback`` trades (all when None), oldest first.

        The drawdown is ``(peak - now) / peak`` with ``peak = max(equity_peak, equity_now)``,
        so a peak that misses the current candle gives a drawdown of 0, not a negative one.
        """
        if not equity_peak > 0 or not equity_now >= 0:
            raise ConfigurationError(
                f"equity peak {equity_peak} must be > 0 and equity {equity_now} >= 0; pass the "
                "account equity in the quote currency"
            )
        if lookback is not None and lookback < 1:
            raise ConfigurationError(f"lookback={lookback} is invalid; use None or >= 1")
        record = summarise_trades(trades[-lookback:] if lookback is not None else trades)
        peak = max(equity_peak, equity_now)
        drawdown = (peak - equity_now) / peak
        return cls(
            record.trades, record.win_rate, record.profit_factor, record.losing_streak, drawdown
        )


def profile_score(record: TradeRecord, prior_trades: int) -> float:
    """Score a profile's record in [0, 1] by the formula in the module docstring."""
    if prior_trades < 1:
        raise ConfigurationError(f"prior_trades={prior_trades} is invalid; use an integer >= 1")
    pf = record.judged_profit_factor
    pf_part = 1.0 if math.isinf(pf) else pf / (1.0 + pf)
    quality = (pf_part + record.win_rate) / 2.0
    weight = record.trades / (record.trades + prior_trades)
    return 0.5 + (quality - 0.5) * weight
