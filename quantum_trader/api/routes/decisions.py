"""The decision log, filtered by symbol and time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from quantum_trader.api.deps import Trader, invalid_request
from quantum_trader.api.schemas import DecisionModel

router = APIRouter(prefix="/decisions", tags=["trading"])

# The symbol of decisions that concern the whole portfolio, such as ESS trips and mode changes.
PORTFOLIO_SYMBOL = "*"


def _to_ns(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    # A time without a zone is read as UTC, the zone of every time in this system.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000) * 1000


def _check_symbol(symbol: str, traded: list[str]) -> None:
    if symbol == PORTFOLIO_SYMBOL or symbol in traded:
        return
    raise invalid_request(
        ("query", "symbol"),
        f"symbol {symbol!r} is not traded; use one of: {', '.join(traded)}, "
        f"or {PORTFOLIO_SYMBOL} for the decisions on the whole portfolio",
        symbol,
    )


@router.get("")
async def list_decisions(
    trader: Trader,
    symbol: Annotated[
        str | None,
        Query(description="Only this traded symbol, as BTC/USDT, or * for portfolio decisions."),
    ] = None,
    since: Annotated[datetime | None, Query(description="Earliest time, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Latest time, ISO 8601.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest decisions to return.")] = 100,
) -> list[DecisionModel]:
    """Return the newest ``limit`` decisions matching the filters, oldest first."""
    if symbol is not None:
        _check_symbol(symbol, trader.symbols)
    since_ns, until_ns = _to_ns(since), _to_ns(until)
    if since_ns is not None and until_ns is not None and since_ns > until_ns:
        raise invalid_request(
            ("query", "until"),
            f"until {until} is earlier than since {since}; pass a time range that ends after "
            "it starts",
            str(until),
        )
    decisions = trader.decisions(symbol, since_ns, until_ns, limit)
    return [DecisionModel.of(decision) for decision in decisions]
