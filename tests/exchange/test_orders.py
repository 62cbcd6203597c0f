"""Idempotent order submission against a mock exchange that times out."""

from __future__ import annotations

from typing import Any

import pytest

from quantum_trader.core.types import OrderSide, OrderType
from quantum_trader.errors import ConfigurationError, OrderRejected, TemporaryError
from quantum_trader.exchange.orders import OrderRequest, submit_idempotent


class MockExchange:
    """Stores orders by client id; the scripted failures apply to successive create_order calls.

    ``"accept_then_timeout"`` books the order and then raises a timeout to the caller,
    ``"timeout"`` raises before booking, ``"reject"`` raises OrderRejected.
    """

    def __init__(
        self, script: list[str] | None = None, lookup_failures: int = 0, history: bool = True
    ) -> None:
        self.script = list(script or [])
        self.lookup_failures = lookup_failures
        self.history = history
        self.orders: dict[str, dict[str, Any]] = {}
        self.position = 0.0
        self.create_calls = 0
        self.lookup_calls = 0

    def create_order(
        self,
        symbol: str,
        side: str,
        type: str,
        quantity: float,
        price: float | None,
        client_order_id: str,
    ) -> dict[str, Any]:
        self.create_calls += 1
        action = self.script.pop(0) if self.script else "accept"
        if action == "reject":
            raise OrderRejected("insufficient balance", client_order_id=client_order_id)
        if action == "timeout":
            raise TemporaryError("request timed out")
        order = {"clientOrderId": client_order_id, "symbol": symbol, "amount": quantity}
        self.orders[client_order_id] = order
        self.position += quantity if side == "buy" else -quantity
        if action == "accept_then_timeout":
            raise TemporaryError("request timed out after the exchange accepted the order")
        return order

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> dict[str, Any] | None:
        self.lookup_calls += 1
        if self.lookup_failures > 0:
            self.lookup_failures -= 1
            raise TemporaryError("lookup timed out")
        return self.orders.get(client_order_id) if self.history else None

    def fetch_position(self, symbol: str) -> float:
        return self.position


REQUEST = OrderRequest("BTC/USDT", OrderSide.BUY, OrderType.MARKET, 1.0, "abc")


def no_sleep(seconds: float) -> None:
    return None


def test_timeout_after_accept_creates_one_order() -> None:
    exchange = MockExchange(["accept_then_timeout"])
    result = submit_idempotent(exchange, REQUEST, max_retries=3, sleep=no_sleep)
    assert result["clientOrderId"] == "abc"
    assert len(exchange.orders) == 1
    assert exchange.create_calls == 1
    assert exchange.position == 1.0


def test_timeout_before_accept_retries_with_same_id() -> None:
    exchange = MockExchange(["timeout", "timeout"])
    result = submit_idempotent(exchange, REQUEST, max_retries=3, sleep=no_sleep)
    assert result["clientOrderId"] == "abc"
    assert exchange.create_calls == 3
    assert list(exchange.orders) == ["abc"]
    assert exchange.position == 1.0


def test_rejection_is_terminal() -> None:
    exchange = MockExchange(["reject"])
    with pytest.raises(OrderRejected, match="insufficient balance"):
        submit_idempotent(exchange, REQUEST, max_retries=3, sleep=no_sleep)
    assert exchange.create_calls == 1
    assert exchange.orders == {}


def test_failed_lookup_sends_nothing() -> None:
    # The lookup fails once after the timeout: no second create until a lookup succeeds.
    exchange = MockExchange(["accept_then_timeout"], lookup_failures=1)
    result = submit_idempotent(exchange, REQUEST, max_retries=3, sleep=no_sleep)
    assert result["clientOrderId"] == "abc"
    assert exchange.create_calls == 1
    assert exchange.lookup_calls == 2


def test_gives_up_after_retries() -> None:
    exchange = MockExchange(["timeout"] * 4)
    delays: list[float] = []
    with pytest.raises(TemporaryError, match="unconfirmed after 3 retries"):
        submit_idempotent(exchange, REQUEST, max_retries=3, backoff_s=0.5, sleep=delays.append)
    assert exchange.create_calls == 4
    assert delays == [0.5, 1.0, 2.0, 4.0]


def test_fill_found_by_position_change() -> None:
    # The venue keeps no closed-order history: the position change of 1 shows the fill.
    exchange = MockExchange(["accept_then_timeout"], history=False)
    result = submit_idempotent(exchange, REQUEST, max_retries=3, sleep=no_sleep)
    assert result["filled"] == 1.0
    assert exchange.create_calls == 1
    assert exchange.position == 1.0


def test_negative_retries_rejected() -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        submit_idempotent(MockExchange(), REQUEST, max_retries=-1, sleep=no_sleep)
