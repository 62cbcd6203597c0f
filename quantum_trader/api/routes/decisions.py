"""The decision log, filtered by symbol and time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import DecisionModel

router = APIRouter(prefix="/decisions", tags=["trading"])


def _to_ns(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    # A time without a zone is read as UTC, the zone of every time in this system.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


@router.get("")
async def list_decisions(
    trader: Trader,
    symbol: Annotated[str | None, Query(description="Only this symbol, as BTC/USDT.")] = None,
    since: Annotated[datetime | None, Query(description="Earliest time, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Latest time, ISO 8601.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest decisions to return.")] = 100,
) -> list[DecisionModel]:
    """Return the newest ``limit`` decisions matching the filters, oldest first."""
    decisions = trader.decisions(symbol, _to_ns(since), _to_ns(until), limit)
    return [DecisionModel.of(decision) for decision in decisions]
