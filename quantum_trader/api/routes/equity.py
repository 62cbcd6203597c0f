"""The equity curve."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import EquityPoint, iso_from_ns

router = APIRouter(prefix="/equity", tags=["trading"])


@router.get("")
async def equity_curve(trader: Trader) -> list[EquityPoint]:
    """Return the equity at the close of each processed candle time."""
    return [EquityPoint(time=iso_from_ns(t), equity=value) for t, value in trader.equity()]
