"""The equity curve."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import ListLimit, Trader, newest
from quantum_trader.api.schemas import EquityPoint, iso_from_ns

router = APIRouter(prefix="/equity", tags=["trading"])


@router.get("")
async def equity_curve(trader: Trader, limit: ListLimit = None) -> list[EquityPoint]:
    """Return the equity at the close of each processed candle time, or of the newest
    ``limit`` ones, oldest first."""
    points = newest(trader.equity(), limit)
    return [EquityPoint(time=iso_from_ns(t), equity=value) for t, value in points]
