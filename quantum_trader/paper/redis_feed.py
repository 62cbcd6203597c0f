"""Mirror the paper trader's events and policy to Redis, so another process can follow it.

Fills, orders and decisions go to the streams ``<prefix>:fill``, ``<prefix>:order`` and
``<prefix>:decision``; the Orchestrator Policy in force is stored under ``<prefix>:policy``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from quantum_trader.persistence.events import RedisEventPublisher

logger = logging.getLogger(__name__)

TOPICS = ("fill", "order", "decision")


def plain(event: Any) -> dict[str, Any]:
    """Return a dataclass event as a dict of JSON types (enums and timestamps as strings)."""
    is_instance = dataclasses.is_dataclass(event) and not isinstance(event, type)
    data = dataclasses.asdict(event) if is_instance else dict(event)
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return result


class RedisFeed:
    """Publishes bus events to Redis Streams and keeps the policy key current."""

    def __init__(self, url: str, prefix: str = "qt") -> None:
        self.publisher = RedisEventPublisher(url, stream_prefix=prefix)
        self._policy_json: str | None = None
        self.published = 0

    def handler(self, topic: str) -> Any:
        def publish(event: Any) -> None:
            self.publisher.publish(topic, plain(event))
            self.published += 1

        return publish

    def store_policy(self, policy: Any) -> None:
        """Store the policy when it differs from the one stored last."""
        if policy is None:
            return
        data = plain(policy)
        encoded = json.dumps(data, sort_keys=True)
        if encoded != self._policy_json:
            self.publisher.store_policy(data)
            self._policy_json = encoded
