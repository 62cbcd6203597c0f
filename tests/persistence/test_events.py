from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Iterator

import pytest

from quantum_trader.errors import MissingDependencyError
from quantum_trader.persistence.events import RedisEventPublisher

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def publisher() -> Iterator[RedisEventPublisher]:
    """A publisher with a unique prefix; its keys are deleted after the test."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1.0):
            pass
    except OSError:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    prefix = f"qt_test_{uuid.uuid4().hex[:12]}"
    events = RedisEventPublisher(REDIS_URL, stream_prefix=prefix)
    yield events
    keys = list(events.client.scan_iter(match=f"{prefix}:*"))
    if keys:
        events.client.delete(*keys)
    events.close()


def test_publish_appends_json_to_topic_stream(publisher: RedisEventPublisher) -> None:
    event = {"symbol": "BTC/USDT", "action": "veto", "numbers": {"size": 0.5}}
    entry_id = publisher.publish("decisions", event)

    entries = publisher.client.xrange(f"{publisher.stream_prefix}:decisions")
    assert len(entries) == 1
    assert entries[0][0] == entry_id
    assert json.loads(entries[0][1]["data"]) == event


def test_policy_round_trip(publisher: RedisEventPublisher) -> None:
    policy = {"risk_mode": "defensive", "max_positions": 3, "strategies": ["trend"]}
    publisher.store_policy(policy)
    assert publisher.load_policy() == policy


def test_load_policy_is_none_when_unset(publisher: RedisEventPublisher) -> None:
    assert publisher.load_policy() is None


def test_missing_redis_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingDependencyError) as caught:
        RedisEventPublisher(REDIS_URL)
    assert caught.value.package == "redis"
    assert "publishing events to Redis" in str(caught.value)
