"""Redis mirroring of the paper trader, against the Redis server on loopback (skipped without)."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from quantum_trader.config import Settings
from quantum_trader.paper.trader import PaperTrader

REDIS_URL = "redis://127.0.0.1:6379/15"
DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason=f"no Redis server at {REDIS_URL}")
def test_fills_and_policy_reach_redis() -> None:
    """Every fill of 1000 replayed candles is one entry of the fill stream; the policy is set."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"qt-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data={
            "datadir": DATADIR,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
        service={"redis_url": REDIS_URL, "redis_prefix": prefix},
    )
    trader = PaperTrader(settings)
    trader.prepare()
    trader.start()
    try:
        for _ in range(1000):
            trader.step()
        fills = len(trader.session.exchange.fills)
        stream = client.xrange(f"{prefix}:fill")
        assert fills > 0
        assert len(stream) == fills
        assert json.loads(stream[0][1]["data"])["client_order_id"]
        policy = client.get(f"{prefix}:policy")
        assert policy is not None
        assert "allow_new_trades" in json.loads(policy)
    finally:
        trader.stop()
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
