"""Publish engine events to Redis streams and keep the current policy in a Redis key."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from quantum_trader.errors import ConfigurationError, MissingDependencyError

logger = logging.getLogger(__name__)

DEFAULT_STREAM_MAXLEN = 10_000
_CONNECT_TIMEOUT_SECONDS = 5.0


class RedisEventPublisher:
    """Write events with XADD to ``<stream_prefix>:<topic>`` as one JSON field named ``data``.

    Streams are trimmed to about ``maxlen`` entries (approximate trimming, which Redis does in
    whole blocks, so a stream may hold somewhat more). Raises MissingDependencyError when the
    ``redis`` package is not installed.
    """

    def __init__(
        self, url: str, stream_prefix: str = "qt", *, maxlen: int = DEFAULT_STREAM_MAXLEN
    ) -> None:
        try:
            import redis
        except ImportError as exc:
            raise MissingDependencyError("redis", "publishing events to Redis") from exc
        if maxlen <= 0:
            raise ConfigurationError(f"Stream maxlen {maxlen} is invalid: use a positive count.")
        self.stream_prefix = stream_prefix
        self.maxlen = maxlen
        self.client: Any = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS
        )

    def stream_name(self, topic: str) -> str:
        """Return the Redis key of the stream of ``topic``."""
        return f"{self.stream_prefix}:{topic}"

    def publish(self, topic: str, event: Mapping[str, Any]) -> str:
        """Append ``event`` as JSON to the stream of ``topic`` and return the entry id."""
        payload = json.dumps(dict(event), sort_keys=True)
        entry_id: str = self.client.xadd(
            self.stream_name(topic), {"data": payload}, maxlen=self.maxlen, approximate=True
        )
        return entry_id

    def store_policy(self, policy: Mapping[str, Any]) -> None:
        """Store ``policy`` as JSON under ``<stream_prefix>:policy``, replacing the old one."""
        self.client.set(f"{self.stream_prefix}:policy", json.dumps(dict(policy), sort_keys=True))
        logger.info("Policy stored in Redis under %s:policy.", self.stream_prefix)

    def load_policy(self) -> dict[str, Any] | None:
        """Return the stored policy, or None when none was stored.

        Raises ConfigurationError when the key does not contain a JSON object.
        """
        key = f"{self.stream_prefix}:policy"
        raw = self.client.get(key)
        if raw is None:
            return None
        try:
            policy = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"Redis key {key} is not valid JSON: store the policy again with store_policy."
            ) from exc
        if not isinstance(policy, dict):
            raise ConfigurationError(
                f"Redis key {key} contains {type(policy).__name__}, expected a JSON object."
            )
        return policy

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
