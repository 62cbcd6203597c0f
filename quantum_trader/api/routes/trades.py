"""Closed trades."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import TradeModel

router = APIRouter(prefix="/trades", tags=["trading"])


@router.get("")
async def list_trades(trader: Trader) -> list[TradeModel]:
    """Return the closed trades, oldest first."""
    return [TradeModel.of(trade) for trade in trader.trades()]
