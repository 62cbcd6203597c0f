"""An in-process publish/subscribe event bus.

Handlers run synchronously in subscription order. A failing handler is logged with the topic
and does not stop the other handlers or the publisher, so one broken observer cannot halt
trading. Publishers can ask ``has_subscribers`` first to skip building events nobody reads.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[[Any], None]


class EventBus:
    """Topic-based fan-out of events to handlers."""

    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self.handler_errors = 0

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        handlers = self._handlers.get(topic, [])
        if handler in handlers:
            handlers.remove(handler)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._handlers.get(topic))

    def publish(self, topic: str, event: Any) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(event)
            except Exception:
                self.handler_errors += 1
                logger.exception("Event handler %r failed on topic %s", handler, topic)
