"""Closed trades."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import ListLimit, Trader, newest
from quantum_trader.api.schemas import TradeModel

router = APIRouter(prefix="/trades", tags=["trading"])


@router.get("")
async def list_trades(trader: Trader, limit: ListLimit = None) -> list[TradeModel]:
    """Return the closed trades, or the newest ``limit`` of them, oldest first."""
    return [TradeModel.of(trade) for trade in newest(trader.trades(), limit)]
