"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection

from quantum_trader.paper.trader import PaperTrader


def get_trader(connection: HTTPConnection) -> PaperTrader:
    """Return the trader the lifespan started, or raise 503 before it has started."""
    trader: PaperTrader | None = getattr(connection.app.state, "trader", None)
    if trader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the trader is not started")
    return trader


Trader = Annotated[PaperTrader, Depends(get_trader)]
