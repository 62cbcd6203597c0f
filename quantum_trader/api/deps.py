"""Dependencies and request helpers shared by the routers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from quantum_trader.paper.trader import PaperTrader

T = TypeVar("T")

MAX_LIST_LIMIT = 10_000


def get_trader(connection: HTTPConnection) -> PaperTrader:
    """Return the trader the lifespan started, or raise 503 before it has started."""
    trader: PaperTrader | None = getattr(connection.app.state, "trader", None)
    if trader is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the trader is not started")
    return trader


Trader = Annotated[PaperTrader, Depends(get_trader)]

ListLimit = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_LIST_LIMIT,
        description=f"Return only the newest N items, oldest first (1 to {MAX_LIST_LIMIT}). "
        "Default: all.",
    ),
]


def newest(items: Sequence[T], limit: int | None) -> list[T]:
    """Return the last ``limit`` of ``items`` (all of them when ``limit`` is None), in order."""
    if limit is None:
        return list(items)
    return list(items[-limit:])


def invalid_request(
    location: tuple[str | int, ...], message: str, value: object
) -> RequestValidationError:
    """Build a 422 error for a check that the request models cannot express.

    The app's validation handler formats it like the model checks, as ``query.since: ...``.
    """
    return RequestValidationError(
        [{"type": "value_error", "loc": location, "msg": message, "input": value}]
    )
