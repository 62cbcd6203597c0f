"""Universe OS: which markets may be traded at all, re-evaluated every ``cadence`` candles.

Each selection sorts every examined market into one tier:

- ``blacklist``: fails a hard criterion, so the market cannot be traded safely whatever the
  conditions. The price is missing, NaN, zero, negative or below ``min_price``. The tick size is
  missing or not positive, or one tick is more than ``max_tick_pct`` of the price. The history is
  unknown or shorter than ``min_history`` candles. The quote volume over ``window`` candles is
  unknown or below ``min_quote_volume``, because fills and the slippage model are unreliable on a
  thin market.
- ``monitoring``: passes every hard criterion but fails a soft one, which describes current
  conditions. The per-candle volatility is unknown or outside ``[min_volatility,
  max_volatility]``, or the spread is known and above ``max_spread_pct``, or the spread is known
  but invalid (negative or NaN).
- ``core``: the ``core_size`` eligible markets with the largest quote volume (ties broken by
  symbol name).
- ``expansion``: every other eligible market.

Tradable markets are core and expansion. No tier is permanent: a blacklisted market returns when
it passes the criteria at a later selection. A snapshot field that is None, NaN, infinite, zero or
negative does not raise. It blacklists the market, or moves it to monitoring for the volatility
and the spread, with the reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.subsystems.base import Mode, Subsystem
from quantum_trader.subsystems.market_stats import MarketSnapshot

logger = logging.getLogger(__name__)


class Tier(StrEnum):
    CORE = "core"
    EXPANSION = "expansion"
    MONITORING = "monitoring"
    BLACKLIST = "blacklist"


TRADABLE_TIERS = frozenset({Tier.CORE, Tier.EXPANSION})


class UniverseSettings(BaseModel):
    """Universe OS settings. Prices and volumes are in quote currency, shares are fractions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(24, ge=1, le=100_000, description="Candles between two selections.")
    window: int = Field(288, ge=2, le=100_000, description="Candles in the volume window.")
    min_quote_volume: float = Field(
        1e6, ge=0, description="Minimum quote volume summed over the window."
    )
    min_history: int = Field(500, ge=1, description="Minimum candles of history.")
    min_price: float = Field(1e-6, gt=0, description="Minimum price in quote currency.")
    max_tick_pct: float = Field(
        0.001, gt=0, le=1, description="Maximum value of one tick as a share of the price."
    )
    min_volatility: float = Field(
        0.0005, ge=0, description="Minimum standard deviation of one-candle log returns."
    )
    max_volatility: float = Field(
        0.05, gt=0, le=10, description="Maximum standard deviation of one-candle log returns."
    )
    max_spread_pct: float = Field(
        0.002, gt=0, le=1, description="Maximum (ask - bid) / mid, checked when known."
    )
    core_size: int = Field(3, ge=0, le=10_000, description="Markets in the core tier.")

    @model_validator(mode="after")
    def _check_band(self) -> UniverseSettings:
        if self.min_volatility >= self.max_volatility:
            raise ValueError(
                f"universe.min_volatility={self.min_volatility} must be below "
                f"universe.max_volatility={self.max_volatility}"
            )
        return self


@dataclass(frozen=True, slots=True)
class UniverseSelection:
    """One selection: the tier and reason of every examined market, and the tradable set.

    ``binding`` is False unless the Universe OS is enforced, and then the pipeline must not drop
    candidates because of this selection.
    """

    time_ns: int
    tiers: dict[str, Tier]
    reasons: dict[str, str]
    tradable: frozenset[str]
    binding: bool


def classify(snapshot: MarketSnapshot, settings: UniverseSettings) -> tuple[Tier | None, str]:
    """Return (BLACKLIST or MONITORING, the failed criteria) or (None, "") for an eligible market.

    Every failed criterion of the deciding kind is listed, joined by "; ".
    """
    hard = _hard_failures(snapshot, settings)
    if hard:
        return Tier.BLACKLIST, "; ".join(hard)
    soft = _soft_failures(snapshot, settings)
    if soft:
        return Tier.MONITORING, "; ".join(soft)
    return None, ""


def _hard_failures(snapshot: MarketSnapshot, settings: UniverseSettings) -> list[str]:
    failures: list[str] = []
    price = _finite_or_none(snapshot.price)
    if price is None:
        failures.append(f"price is missing or not finite ({snapshot.price!r})")
    elif price <= 0:
        failures.append(f"price {price:g} is not positive")
    elif price < settings.min_price:
        failures.append(f"price {price:g} is below min_price {settings.min_price:g}")

    tick = _finite_or_none(snapshot.tick_size)
    if tick is None or tick <= 0:
        failures.append(f"tick size {snapshot.tick_size!r} is missing or not positive")
    elif price is not None and price > 0 and tick / price > settings.max_tick_pct:
        failures.append(
            f"one tick ({tick:g}) is {tick / price:.4%} of the price {price:g}, above "
            f"max_tick_pct {settings.max_tick_pct:.4%}"
        )

    history = _finite_or_none(snapshot.history)
    if history is None:
        failures.append(f"history length {snapshot.history!r} is unknown")
    elif history < settings.min_history:
        failures.append(
            f"history of {history:g} candles is below min_history {settings.min_history}"
        )

    volume = _finite_or_none(snapshot.quote_volume)
    if volume is None:
        failures.append(f"quote volume over {settings.window} candles is unknown")
    elif volume < settings.min_quote_volume:
        failures.append(
            f"quote volume {volume:.6g} is below min_quote_volume {settings.min_quote_volume:g}"
        )
    return failures


def _soft_failures(snapshot: MarketSnapshot, settings: UniverseSettings) -> list[str]:
    failures: list[str] = []
    volatility = _finite_or_none(snapshot.volatility)
    if volatility is None:
        failures.append("volatility is unknown")
    elif volatility < settings.min_volatility:
        failures.append(
            f"volatility {volatility:.6g} is below min_volatility {settings.min_volatility:g}"
        )
    elif volatility > settings.max_volatility:
        failures.append(
            f"volatility {volatility:.6g} is above max_volatility {settings.max_volatility:g}"
        )

    if snapshot.spread is not None:
        spread = _finite_or_none(snapshot.spread)
        if spread is None or spread < 0:
            failures.append(f"spread {snapshot.spread!r} is invalid")
        elif spread > settings.max_spread_pct:
            failures.append(
                f"spread {spread:.4%} is above max_spread_pct {settings.max_spread_pct:.4%}"
            )
    return failures


class UniverseOS(Subsystem):
    """Sorts markets into tiers and, when enforced, vetoes entries on untradable markets.

    Call ``select`` every ``cadence`` candles, at the rows where ``due`` returns True. Between
    selections ``allows`` uses the last one. Counters: ``seen`` counts markets examined by
    ``select``, ``changed`` counts tier changes (a market's first placement and its removal when
    it is missing from a later selection count too), and ``vetoed`` counts entries ``allows``
    blocked while enforced.
    """

    name = "Universe OS"
    short_name = "Universe OS"

    def __init__(self, settings: UniverseSettings, log: DecisionLog | None = None) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self.selection: UniverseSelection | None = None

    def due(self, row: int) -> bool:
        """Return whether candle ``row`` is a selection point (every ``cadence`` rows from 0)."""
        return row % self.cadence == 0

    def select(self, time_ns: int, snapshots: Iterable[MarketSnapshot]) -> UniverseSelection:
        """Sort the markets into tiers, record every tier change and keep the selection.

        A symbol that appears more than once is examined once, at its first snapshot.
        """
        self.heartbeat()
        unique = self._unique(snapshots)
        self.seen += len(unique)

        tiers: dict[str, Tier] = {}
        reasons: dict[str, str] = {}
        eligible: list[MarketSnapshot] = []
        for snapshot in unique.values():
            tier, reason = classify(snapshot, self.settings)
            if tier is None:
                eligible.append(snapshot)
            else:
                tiers[snapshot.symbol], reasons[snapshot.symbol] = tier, reason
        self._place_eligible(eligible, tiers, reasons)
        tiers = {symbol: tiers[symbol] for symbol in unique}

        self._record_changes(time_ns, unique, tiers, reasons)
        tradable = frozenset(s for s, tier in tiers.items() if tier in TRADABLE_TIERS)
        self.selection = UniverseSelection(time_ns, tiers, reasons, tradable, self.binding)
        logger.debug(
            "Universe selection at %d ns: %d of %d markets tradable.",
            time_ns,
            len(tradable),
            len(tiers),
        )
        return self.selection

    def allows(self, symbol: str, time_ns: int) -> bool:
        """Return whether an entry on ``symbol`` may go ahead under the last selection.

        For entries only: never ask it about the exit of an open position. When enforced, an
        untradable symbol is vetoed, counted and recorded. In observe or advisory mode the would-be
        veto is recorded as an approval that names it, and the entry goes ahead.
        """
        if not self.active:
            return True
        selection = self.selection
        if selection is not None and symbol in selection.tradable:
            return True

        if selection is None:
            reason = "no universe selection has been made yet"
        elif symbol not in selection.tiers:
            reason = "the market was not in the last universe selection"
        else:
            reason = f"tier {selection.tiers[symbol]}: {selection.reasons[symbol]}"
        if self.binding:
            self.vetoed += 1
            self.record(time_ns, symbol, Action.VETO, f"entry vetoed: {reason}")
            return False
        self.record(time_ns, symbol, Action.APPROVE, f"not enforced, would veto: {reason}")
        return True

    def _unique(self, snapshots: Iterable[MarketSnapshot]) -> dict[str, MarketSnapshot]:
        unique: dict[str, MarketSnapshot] = {}
        for snapshot in snapshots:
            if snapshot.symbol in unique:
                logger.warning(
                    "Universe OS ignored a second snapshot of %s in one selection.",
                    snapshot.symbol,
                )
                continue
            unique[snapshot.symbol] = snapshot
        return unique

    def _place_eligible(
        self, eligible: list[MarketSnapshot], tiers: dict[str, Tier], reasons: dict[str, str]
    ) -> None:
        # Every eligible market has a finite quote volume: a missing one is a hard failure.
        ranked = sorted(eligible, key=lambda s: (-float(s.quote_volume or 0.0), s.symbol))
        core_size = self.settings.core_size
        for position, snapshot in enumerate(ranked, start=1):
            tier = Tier.CORE if position <= core_size else Tier.EXPANSION
            tiers[snapshot.symbol] = tier
            reasons[snapshot.symbol] = (
                f"eligible, rank {position} of {len(ranked)} by quote volume "
                f"{float(snapshot.quote_volume or 0.0):.6g} (core is the top {core_size})"
            )

    def _record_changes(
        self,
        time_ns: int,
        snapshots: dict[str, MarketSnapshot],
        tiers: dict[str, Tier],
        reasons: dict[str, str],
    ) -> None:
        previous = self.selection.tiers if self.selection is not None else {}
        for symbol, tier in tiers.items():
            before = previous.get(symbol)
            if before is tier:
                continue
            self.changed += 1
            action = Action.APPROVE if tier in TRADABLE_TIERS else Action.REJECT
            origin = before.value if before is not None else "new"
            reason = f"tier {origin} -> {tier.value}: {reasons[symbol]}"
            self.record(time_ns, symbol, action, reason, _numbers(snapshots[symbol]))
        for symbol in previous.keys() - tiers.keys():
            self.changed += 1
            reason = f"tier {previous[symbol].value} -> none: missing from the market data"
            self.record(time_ns, symbol, Action.REJECT, reason)


def snapshots_from_tickers(
    tickers: Iterable[Mapping[str, Any]],
    tick_sizes: Mapping[str, float],
    candle_snapshots: Mapping[str, MarketSnapshot] | None = None,
) -> list[MarketSnapshot]:
    """Build snapshots from ccxt-style tickers ({symbol, last, quoteVolume, bid, ask}).

    ``tick_sizes`` maps a symbol to its price tick in quote currency. In ccxt that is
    ``market["precision"]["price"]`` when the exchange uses the tick-size precision mode. Convert
    a number of decimal places d with 10**-d first. The ticker supplies the price (``last``, else
    ``close``), the quote volume and the spread. ``candle_snapshots`` (by symbol) supplies the
    volatility, the history and the trend statistics, and the quote volume when the ticker has
    none. A missing or malformed field becomes NaN or None, which the selection treats as
    unknown. A ticker without a symbol is skipped with a warning.

    NOTE: a ccxt ticker's ``quoteVolume`` covers the last 24 hours, which equals the default
    288-candle window only on 5m candles. Set ``window`` and ``min_quote_volume`` to match.
    """
    snapshots: list[MarketSnapshot] = []
    for ticker in tickers:
        symbol = ticker.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            logger.warning("Skipped a ticker without a symbol: %r", ticker)
            continue
        base = (candle_snapshots or {}).get(symbol)
        price = _to_float(ticker.get("last"))
        if math.isnan(price):
            price = _to_float(ticker.get("close"))
        quote_volume = _to_float(ticker.get("quoteVolume"))
        if math.isnan(quote_volume) and base is not None and base.quote_volume is not None:
            quote_volume = base.quote_volume
        fields: dict[str, Any] = {
            "symbol": symbol,
            "price": price,
            "tick_size": _to_float(tick_sizes.get(symbol)),
            "quote_volume": quote_volume,
            "spread": _spread(_to_float(ticker.get("bid")), _to_float(ticker.get("ask"))),
        }
        snapshots.append(replace(base, **fields) if base is not None else MarketSnapshot(**fields))
    return snapshots


def _spread(bid: float, ask: float) -> float | None:
    """(ask - bid) / mid, or None when either side is missing, not positive or the book crosses."""
    if not (bid > 0 and ask > 0 and ask >= bid):
        return None
    return (ask - bid) / ((ask + bid) / 2.0)


def _to_float(value: object) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _finite_or_none(value: object) -> float | None:
    number = _to_float(value)
    return number if math.isfinite(number) else None


def _numbers(snapshot: MarketSnapshot) -> dict[str, float]:
    candidates = {
        "price": snapshot.price,
        "tick_size": snapshot.tick_size,
        "quote_volume": snapshot.quote_volume,
        "volatility": snapshot.volatility,
        "spread": snapshot.spread,
        "history": snapshot.history,
    }
    numbers: dict[str, float] = {}
    for key, value in candidates.items():
        number = _finite_or_none(value)
        if number is not None:
            numbers[key] = number
    return numbers
