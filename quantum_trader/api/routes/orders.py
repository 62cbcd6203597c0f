"""Submitted orders."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import ListLimit, Trader, newest
from quantum_trader.api.schemas import OrderModel

router = APIRouter(prefix="/orders", tags=["trading"])


@router.get("")
async def list_orders(trader: Trader, limit: ListLimit = None) -> list[OrderModel]:
    """Return every order submitted so far, or the newest ``limit`` of them, oldest first."""
    return [OrderModel.of(order) for order in newest(trader.orders(), limit)]
