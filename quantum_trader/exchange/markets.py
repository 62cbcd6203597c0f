"""Exchange trading rules per market: tick and step sizes, minimums, fees and rounding.

Quantities are truncated down to the market's step, because an exchange never fills more than
was sent. Prices are rounded to the nearest tick. The minimum quantity and notional are checked
on the rounded values, because that is what the exchange itself checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from quantum_trader.core.types import MarketType
from quantum_trader.errors import ConfigurationError

# A ratio within this many steps below a whole number of steps counts as that whole number:
# float division leaves errors of a few ulps (0.3 / 0.1 == 2.9999999999999996), and the
# relative term covers large ratios where one ulp is bigger than the absolute term.
_ABSOLUTE_STEP_TOLERANCE = 1e-9
_RELATIVE_STEP_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Trading rules of one market. Fees are rates (0.001 is 0.1%) on the fill notional."""

    symbol: str
    market_type: MarketType
    tick_size: float
    step_size: float
    min_notional: float
    min_quantity: float
    maker_fee: float
    taker_fee: float
    max_leverage: float = 20.0


@lru_cache(maxsize=256)
def _decimals(increment: float) -> int:
    """Number of decimal places of a tick or step size written in its shortest form."""
    exponent = Decimal(repr(increment)).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _check_increment(value: float, name: str) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a positive finite number, got {value!r}")


def round_price(price: float, tick: float) -> float:
    """Round a price to the nearest multiple of ``tick``, without float residue."""
    _check_increment(tick, "tick size")
    return round(round(price / tick) * tick, _decimals(tick))


def floor_quantity(quantity: float, step: float) -> float:
    """Truncate a quantity down to a multiple of ``step``, without float residue.

    A quantity within a float rounding error below a step boundary counts as on it, so 0.3
    with step 0.1 stays 0.3, while 0.00035999997 with step 0.00001 becomes 0.00035.
    """
    _check_increment(step, "step size")
    ratio = quantity / step
    steps = math.floor(ratio + _ABSOLUTE_STEP_TOLERANCE + abs(ratio) * _RELATIVE_STEP_TOLERANCE)
    return round(steps * step, _decimals(step))


@dataclass(frozen=True, slots=True)
class _KnownMarket:
    tick_size: float
    step_size: float
    min_notional: float
    min_quantity: float


# Snapshot of the Binance exchange filters (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL) of the shipped
# symbols. NOTE: Binance changes these from time to time; a live run should read them from the
# exchange instead.
_SPOT_RULES: dict[str, _KnownMarket] = {
    "BTC/USDT": _KnownMarket(0.01, 0.00001, 5.0, 0.00001),
    "ETH/USDT": _KnownMarket(0.01, 0.0001, 5.0, 0.0001),
    "SOL/USDT": _KnownMarket(0.01, 0.001, 5.0, 0.001),
    "XRP/USDT": _KnownMarket(0.0001, 0.1, 5.0, 0.1),
    "BNB/USDT": _KnownMarket(0.01, 0.001, 5.0, 0.001),
}
_FUTURES_RULES: dict[str, _KnownMarket] = {
    "BTC/USDT": _KnownMarket(0.1, 0.001, 100.0, 0.001),
    "ETH/USDT": _KnownMarket(0.01, 0.001, 20.0, 0.001),
    "SOL/USDT": _KnownMarket(0.01, 1.0, 5.0, 1.0),
    "XRP/USDT": _KnownMarket(0.0001, 0.1, 5.0, 0.1),
    "BNB/USDT": _KnownMarket(0.01, 0.01, 5.0, 0.01),
}
_DEFAULT_MIN_NOTIONAL = 5.0
_PRICE_SIGNIFICANT_DIGITS = 6
_MAX_STEP_VALUE = 0.1


def normalize_symbol(symbol: str) -> str:
    """Map ``XRP/USDT:USDT`` (ccxt futures) and ``XRP_USDT`` (file names) to ``XRP/USDT``."""
    base_quote = symbol.split(":", 1)[0]
    if "/" not in base_quote and "_" in base_quote:
        base_quote = base_quote.replace("_", "/", 1)
    return base_quote.upper()


def derive_increments(reference_price: float) -> tuple[float, float]:
    """Return ``(tick_size, step_size)`` for a market with no known rules.

    The tick keeps about 6 significant digits of the reference price, so 27777.78 gets tick
    0.1. The step is the largest power of ten worth at most 0.1 quote at that price, so
    27777.78 gets step 0.000001, worth 0.028 quote.
    """
    if not reference_price > 0 or not math.isfinite(reference_price):
        raise ConfigurationError(
            f"reference price must be a positive finite number, got {reference_price!r}"
        )
    magnitude = math.floor(math.log10(reference_price))
    tick = 10.0 ** (magnitude - (_PRICE_SIGNIFICANT_DIGITS - 1))
    step = 10.0 ** math.floor(math.log10(_MAX_STEP_VALUE / reference_price))
    return tick, step


def default_market_rules(
    symbol: str,
    market_type: MarketType,
    taker_fee: float,
    maker_fee: float,
    reference_price: float | None = None,
) -> MarketRules:
    """Build the rules of one market from the table of shipped Binance symbols.

    NOTE: a symbol not in the table gets rules derived from ``reference_price`` (see
    ``derive_increments``), a minimum notional of 5 quote and a minimum quantity of one step.
    These are estimates, not the exchange's filters. Raises ConfigurationError for an unknown
    symbol without a reference price.
    """
    table = _SPOT_RULES if market_type is MarketType.SPOT else _FUTURES_RULES
    known = table.get(normalize_symbol(symbol))
    if known is None:
        if reference_price is None:
            raise ConfigurationError(
                f"no market rules are known for {symbol!r}; pass a reference price to derive "
                "tick and step sizes, or use one of " + ", ".join(sorted(table))
            )
        tick, step = derive_increments(reference_price)
        known = _KnownMarket(tick, step, _DEFAULT_MIN_NOTIONAL, step)
    return MarketRules(
        symbol=symbol,
        market_type=market_type,
        tick_size=known.tick_size,
        step_size=known.step_size,
        min_notional=known.min_notional,
        min_quantity=known.min_quantity,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
    )


def check_order_size(quantity: float, price: float, rules: MarketRules) -> str | None:
    """Return why an order of ``quantity`` at ``price`` is too small after rounding, or None.

    The quantity is truncated to the step and the price rounded to the tick first, because the
    exchange checks the minimums on the values it will actually trade.
    """
    if not price > 0 or not math.isfinite(price):
        return f"price {price!r} of {rules.symbol} is not a positive finite number"
    rounded_quantity = floor_quantity(quantity, rules.step_size)
    rounded_price = round_price(price, rules.tick_size)
    if rounded_quantity <= 0 or rounded_quantity < rules.min_quantity:
        return (
            f"quantity {rounded_quantity:.10g} of {rules.symbol} (after truncation to the step "
            f"{rules.step_size:.10g}) is below the minimum quantity {rules.min_quantity:.10g}"
        )
    notional = rounded_quantity * rounded_price
    if notional < rules.min_notional:
        return (
            f"notional {notional:.10g} of {rules.symbol} ({rounded_quantity:.10g} x "
            f"{rounded_price:.10g}, after truncation to the step) is below the minimum "
            f"notional {rules.min_notional:.10g}"
        )
    return None
