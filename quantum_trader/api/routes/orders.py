"""Submitted orders."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import OrderModel

router = APIRouter(prefix="/orders", tags=["trading"])


@router.get("")
async def list_orders(trader: Trader) -> list[OrderModel]:
    """Return every order submitted so far, oldest first."""
    return [OrderModel.of(order) for order in trader.orders()]
