"""Results of the Trading Mathematician: an approved size or a rejection with its reason."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SizingDecision:
    """An approved size. Distances are absolute prices from the entry.

    ``risk_amount`` is ``quantity x stop_distance`` in the quote currency, before fees and
    slippage. ``margin`` is the notional over the leverage (the notional itself on spot).
    ``risk_share`` is the share of equity the sizing method meant to risk, before caps and
    rounding. For stake sizing it is the share the unrounded stake would risk. ``binding`` is
    False when the Trading Mathematician is advisory.
    """

    quantity: float
    notional: float
    stop_distance: float
    take_profit_distance: float
    leverage: float
    risk_amount: float
    reason: str
    margin: float = 0.0
    entry_fee: float = 0.0
    risk_share: float = 0.0
    binding: bool = True

    @property
    def numbers(self) -> dict[str, float]:
        """The decision's numbers, for the decision log."""
        return {
            "quantity": self.quantity,
            "notional": self.notional,
            "stop_distance": self.stop_distance,
            "take_profit_distance": self.take_profit_distance,
            "leverage": self.leverage,
            "risk_amount": self.risk_amount,
            "margin": self.margin,
            "entry_fee": self.entry_fee,
            "risk_share": self.risk_share,
        }


@dataclass(frozen=True, slots=True)
class SizingRejection:
    """A trade that cannot be sized, with the reason and the numbers that decided it."""

    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    binding: bool = True


SizingResult = SizingDecision | SizingRejection


def format_number(value: float) -> str:
    """Format a number with up to 8 decimals and no trailing zeros (9.722223, 10, 10.0000008)."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
