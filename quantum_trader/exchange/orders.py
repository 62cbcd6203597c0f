"""Idempotent order submission with retries, for any exchange client.

A timeout after ``create_order`` does not tell whether the order reached the exchange. Sending
it again blindly can trade twice. So after every temporary error this module first looks the
order up by its client order id, in open orders and then in closed ones. It sends the order
again, with the same client order id, only when the exchange confirms that it does not exist.
When the lookup itself fails, it sends nothing and tries the lookup again after the backoff.
An ``OrderRejected`` error (insufficient balance, invalid quantity) is terminal and never
retried.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from quantum_trader.core.types import OrderSide, OrderType
from quantum_trader.errors import ConfigurationError, OrderRejected, TemporaryError

logger = logging.getLogger(__name__)

# A position change within this share of the order quantity counts as the order's fill.
_POSITION_MATCH_TOLERANCE = 1e-9


class ExchangeClient(Protocol):
    """Exchange client interface used by ``submit_idempotent``; order dicts use ccxt's keys."""

    def create_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: float,
        price: float | None,
        client_order_id: str,
    ) -> dict[str, Any]:
        """Send an order; raise TemporaryError on a timeout, OrderRejected on a rejection."""
        ...

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        """Return the order with this client order id, searching open then closed orders."""
        ...

    def fetch_position(self, symbol: str) -> float:
        """Return the signed position size of ``symbol`` in base units (negative = short)."""
        ...


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to send. ``client_order_id`` must be unique per order and stable across retries."""

    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    client_order_id: str
    price: float | None = None


def submit_idempotent(
    client: ExchangeClient,
    request: OrderRequest,
    max_retries: int = 3,
    backoff_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Send ``request``, retrying temporary errors without a duplicate, and return the order dict.

    The backoff doubles after each attempt (``backoff_s``, ``2 * backoff_s``, ...). Raises
    OrderRejected at once on a rejection. Raises TemporaryError when the order is still
    unconfirmed after ``max_retries`` retries, so the caller must look it up by the client order
    id before sending it again.
    """
    _check_retry_policy(max_retries, backoff_s)
    position_before = _position_or_none(client, request.symbol)
    send = True
    for attempt in range(max_retries + 1):
        if send:
            try:
                return _create(client, request, attempt, max_retries)
            except TemporaryError:
                pass  # _create logged it; look the order up before any retry
        sleep(backoff_s * 2**attempt)
        try:
            found = _find_existing(client, request, position_before)
        except TemporaryError as exc:
            logger.warning(
                "Lookup of order %s failed: %s. Sending nothing until a lookup succeeds.",
                request.client_order_id,
                exc,
            )
            send = False
            continue
        if found is not None:
            return found
        send = True
    raise TemporaryError(
        f"order {request.client_order_id} on {request.symbol} is unconfirmed after "
        f"{max_retries} retries; look it up by client order id {request.client_order_id} "
        "before sending it again"
    )


def _check_retry_policy(max_retries: int, backoff_s: float) -> None:
    if max_retries < 0 or not backoff_s >= 0 or not math.isfinite(backoff_s):
        raise ConfigurationError(
            f"max_retries must be >= 0 and backoff_s a finite number >= 0, got "
            f"max_retries={max_retries}, backoff_s={backoff_s}"
        )


def _create(
    client: ExchangeClient, request: OrderRequest, attempt: int, max_retries: int
) -> dict[str, Any]:
    try:
        return client.create_order(
            request.symbol,
            request.side.value,
            request.type.value,
            request.quantity,
            request.price,
            request.client_order_id,
        )
    except OrderRejected as exc:
        logger.warning(
            "Order %s on %s was rejected, not retrying: %s",
            request.client_order_id,
            request.symbol,
            exc.reason,
        )
        raise
    except TemporaryError as exc:
        logger.warning(
            "Order %s on %s failed with a temporary error (attempt %d of %d): %s. "
            "Looking it up by client order id before any retry.",
            request.client_order_id,
            request.symbol,
            attempt + 1,
            max_retries + 1,
            exc,
        )
        raise


def _find_existing(
    client: ExchangeClient, request: OrderRequest, position_before: float | None
) -> dict[str, Any] | None:
    """Return the order if the exchange has it, by client order id or by the position change."""
    found = client.fetch_order_by_client_id(request.symbol, request.client_order_id)
    if found is not None:
        logger.info(
            "Order %s on %s exists on the exchange after the timeout; not sending it again.",
            request.client_order_id,
            request.symbol,
        )
        return found

    if position_before is None:
        return None
    # NOTE: some venues drop filled market orders from the closed-order history quickly; a
    # position change of exactly the order quantity then shows the fill. Another trade on the
    # same symbol in the meantime would mislead this check.
    change = client.fetch_position(request.symbol) - position_before
    expected = request.side.sign * request.quantity
    if abs(change - expected) > _POSITION_MATCH_TOLERANCE * request.quantity:
        return None
    logger.info(
        "Order %s on %s is not in the order history, but the position changed by %g; "
        "counting it as filled.",
        request.client_order_id,
        request.symbol,
        change,
    )
    return _filled_order(request)


def _filled_order(request: OrderRequest) -> dict[str, Any]:
    """Return a ccxt-style dict of ``request`` as filled, when only the position shows the fill."""
    return {
        "clientOrderId": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side.value,
        "type": request.type.value,
        "amount": request.quantity,
        "filled": request.quantity,
        "status": "closed",
        "info": {"reconciled_from": "position"},
    }


def _position_or_none(client: ExchangeClient, symbol: str) -> float | None:
    try:
        return client.fetch_position(symbol)
    except TemporaryError as exc:
        logger.warning(
            "Position of %s is unavailable before sending an order (%s); reconciliation will "
            "rely on the order history only.",
            symbol,
            exc,
        )
        return None
