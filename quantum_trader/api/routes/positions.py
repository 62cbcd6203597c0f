"""Open positions."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import PositionModel

router = APIRouter(prefix="/positions", tags=["trading"])


@router.get("")
async def list_positions(trader: Trader) -> list[PositionModel]:
    """Return the open positions."""
    return [PositionModel.of(position) for position in trader.positions()]
