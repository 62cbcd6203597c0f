"""The fill model: at what price an order fills inside one OHLC candle.

Conventions (docs/fill-model.md has worked examples):

- A decision made on candle t executes at the open of candle t+1.
- The path inside a candle is unknown, so the adverse extreme comes first.
- No fill lies outside the candle's [low, high].
- A market order fills at the open, moved against the order by the slippage model below.
- A stop is a market order once it triggers. A long's stop (a sell) fills at min(open, stop),
  a short's stop (a buy) at max(open, stop), so a stop gapped through fills at the open.
- Stop fills get the fixed part of the slippage only (``fixed_bps``), clamped to [low, high].
  The range and volume parts would count the candle's move a second time.
- A take-profit is a limit order: it fills at its limit, or at the open when the candle opens
  beyond the limit (a favourable gap). Limit fills get no slippage.
- When the stop and the take-profit both lie inside one candle, the stop wins (pessimistic).
  A gap at the open settles it instead: the side the open lies beyond fills at the open.

Slippage model, an adverse price offset for a market order of ``quantity`` at ``price``::

    offset = price * fixed_bps / 10_000
           + range_share * (high - low)
           + volume_impact * min(quantity / volume, 1) * (high - low)

A buy fills at ``price + offset``, a sell at ``price - offset``, then clamped to [low, high].
A zero or negative volume counts as full participation (``min(...) = 1``).

All functions take and return plain floats; they run for every candle of every open position.
"""

from __future__ import annotations

from quantum_trader.core.types import ExitReason, PositionSide

_BPS = 1e-4
STOP_LOSS = ExitReason.STOP_LOSS.value
TAKE_PROFIT = ExitReason.TAKE_PROFIT.value


def slippage(
    price: float,
    side_sign: int,
    high: float,
    low: float,
    quantity: float,
    volume: float,
    fixed_bps: float,
    range_share: float,
    volume_impact: float,
) -> float:
    """Return the signed slippage offset: positive for a buy (+1), negative for a sell (-1)."""
    candle_range = high - low
    participation = quantity / volume if volume > 0 else 1.0
    if participation > 1.0:
        participation = 1.0
    offset = (
        price * fixed_bps * _BPS
        + range_share * candle_range
        + volume_impact * participation * candle_range
    )
    return offset if side_sign > 0 else -offset


def _clamp(price: float, high: float, low: float) -> float:
    if price < low:
        return low
    if price > high:
        return high
    return price


def market_fill_price(
    open: float,
    high: float,
    low: float,
    side_sign: int,
    quantity: float,
    volume: float,
    fixed_bps: float,
    range_share: float,
    volume_impact: float,
) -> float:
    """Return the fill price of a market order at the open: slipped adversely, clamped."""
    offset = slippage(
        open, side_sign, high, low, quantity, volume, fixed_bps, range_share, volume_impact
    )
    return _clamp(open + offset, high, low)


def stop_fill_price(
    side_sign: int, trigger: float, open: float, high: float, low: float, fixed_bps: float = 0.0
) -> float | None:
    """Return the fill price of a stop-market order in this candle, or None if not triggered.

    A sell stop (``side_sign`` -1) triggers when the low reaches the trigger and fills at
    min(open, trigger). A buy stop triggers on the high and fills at max(open, trigger).
    """
    if side_sign < 0:
        if low > trigger:
            return None
        price = (open if open < trigger else trigger) * (1.0 - fixed_bps * _BPS)
    else:
        if high < trigger:
            return None
        price = (open if open > trigger else trigger) * (1.0 + fixed_bps * _BPS)
    return _clamp(price, high, low)


def limit_fill_price(
    side_sign: int, limit: float, open: float, high: float, low: float
) -> float | None:
    """Return the fill price of a limit order in this candle, or None if not touched.

    A buy limit fills at the open when the candle opens at or below the limit, else at the
    limit when the low reaches it. A sell limit mirrors this with the high.
    """
    if side_sign > 0:
        if open <= limit:
            return open
        return limit if low <= limit else None
    if open >= limit:
        return open
    return limit if high >= limit else None


def protective_exit(
    position_side: PositionSide,
    stop: float | None,
    take_profit: float | None,
    open: float,
    high: float,
    low: float,
    stop_slippage_bps: float = 0.0,
) -> tuple[float, str] | None:
    """Return ``(price, "stop_loss" | "take_profit")`` when a protective exit fills, else None.

    ``open`` is the first price of the path: the candle open, or the entry fill price on the
    candle of the entry. A gap at the open beyond either level fills that exit at the open;
    otherwise, when both levels lie inside the candle, the stop wins.
    """
    exit_sign = -int(position_side)
    if stop is not None and (open - stop) * exit_sign >= 0:
        price = stop_fill_price(exit_sign, stop, open, high, low, stop_slippage_bps)
        if price is not None:
            return price, STOP_LOSS
    if take_profit is not None and (take_profit - open) * exit_sign >= 0:
        return _clamp(open, high, low), TAKE_PROFIT
    if stop is not None:
        price = stop_fill_price(exit_sign, stop, open, high, low, stop_slippage_bps)
        if price is not None:
            return price, STOP_LOSS
    if take_profit is not None:
        price = limit_fill_price(exit_sign, take_profit, open, high, low)
        if price is not None:
            return price, TAKE_PROFIT
    return None


def liquidation_fill_price(
    position_side: PositionSide, liquidation: float, open: float, high: float, low: float
) -> float | None:
    """Return where a position is liquidated in this candle, or None if the price stays clear.

    A long is liquidated when the low reaches its liquidation price. It closes at that price,
    or at the open when the candle opens beyond it. A short mirrors this with the high.
    """
    if position_side is PositionSide.LONG:
        if low > liquidation:
            return None
        return _clamp(open if open < liquidation else liquidation, high, low)
    if high < liquidation:
        return None
    return _clamp(open if open > liquidation else liquidation, high, low)


def liquidation_comes_first(
    position_side: PositionSide,
    liquidation: float,
    stop: float | None,
    take_profit: float | None,
    path_start: float,
) -> bool:
    """Return True when the liquidation price is reached before the stop or the take-profit.

    That is the case when the path starts beyond the liquidation price, or when no stop lies
    between the path start and the liquidation price and no favourable gap fills the
    take-profit at the path start.
    """
    side = int(position_side)
    if (path_start - liquidation) * side <= 0:
        return True
    if stop is not None and (stop - liquidation) * side > 0:
        return False
    return not (take_profit is not None and (path_start - take_profit) * side >= 0)
