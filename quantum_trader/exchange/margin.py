"""Futures margin arithmetic: liquidation price, leverage safety, funding, fee-aware sizing.

The liquidation model is the simplified isolated one, with no maintenance amount and no fees:
a position is liquidated when its remaining margin falls to the maintenance margin rate ``m``
of the position value. That gives, for entry ``E`` and leverage ``L``,
long ``P = E * (1 - 1/L) / (1 - m)`` and short ``P = E * (1 + 1/L) / (1 + m)``.
"""

from __future__ import annotations

import math

from quantum_trader.core.types import PositionSide
from quantum_trader.errors import ConfigurationError


def _check_margin_inputs(entry: float, leverage: float, maintenance_rate: float) -> None:
    if not entry > 0 or not math.isfinite(entry):
        raise ConfigurationError(f"entry price must be a positive finite number, got {entry!r}")
    if not leverage >= 1 or not math.isfinite(leverage):
        raise ConfigurationError(f"leverage must be a finite number >= 1, got {leverage!r}")
    if not 0 < maintenance_rate < 1:
        raise ConfigurationError(
            f"maintenance margin rate must lie in (0, 1), got {maintenance_rate!r}"
        )


def liquidation_price(
    entry: float, leverage: float, maintenance_rate: float, side: PositionSide
) -> float:
    """Return the isolated-margin liquidation price; 0.0 for a long at 1x (never liquidated).

    Raises ConfigurationError for a non-positive entry, a leverage below 1 or a maintenance
    rate outside (0, 1).
    """
    _check_margin_inputs(entry, leverage, maintenance_rate)
    if side is PositionSide.LONG:
        return max(0.0, entry * (1.0 - 1.0 / leverage) / (1.0 - maintenance_rate))
    return entry * (1.0 + 1.0 / leverage) / (1.0 + maintenance_rate)


def check_leverage(
    entry: float, leverage: float, maintenance_rate: float, side: PositionSide
) -> str | None:
    """Return why ``leverage`` is unsafe, or None when the liquidation price lies past the entry.

    A long is safe only when its liquidation price is strictly below the entry, a short only
    when it is strictly above. Both hold exactly when the leverage is below 1/m.
    """
    price = liquidation_price(entry, leverage, maintenance_rate, side)
    unsafe = price >= entry if side is PositionSide.LONG else price <= entry
    if not unsafe:
        return None
    where = "at or above" if side is PositionSide.LONG else "at or below"
    return (
        f"leverage {leverage:g} is unsafe at maintenance margin rate {maintenance_rate:g}: the "
        f"{side.name.lower()} liquidation price {price:.6g} is {where} the entry {entry:.6g}, "
        f"so the position would be liquidated at once; use a leverage below "
        f"1/m = {1.0 / maintenance_rate:g}"
    )


def funding_cash_flow(side: PositionSide, quantity: float, mark: float, rate: float) -> float:
    """Return the funding cash flow to the account: ``-side * quantity * mark * rate``.

    With a positive rate longs pay and shorts receive, with a negative rate the reverse.
    """
    return -int(side) * quantity * mark * rate


def max_affordable_value(cash: float, fee_rate: float) -> float:
    """Return the largest order value whose value plus fee fits in ``cash``: cash / (1 + fee)."""
    if not cash >= 0 or not math.isfinite(cash):
        raise ConfigurationError(f"cash must be a finite number >= 0, got {cash!r}")
    if not 0 <= fee_rate < 1:
        raise ConfigurationError(f"fee rate must lie in [0, 1), got {fee_rate!r}")
    return cash / (1.0 + fee_rate)
