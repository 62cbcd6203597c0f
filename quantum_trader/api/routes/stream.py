"""WebSocket stream of the trader's events as JSON: candles, signals, orders, fills, decisions
and subsystem health changes."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from quantum_trader.api.deps import get_trader
from quantum_trader.paper.trader import EVENT_TOPICS

logger = logging.getLogger(__name__)

router = APIRouter(tags=["stream"])

# Maximum events queued for a slow client. Newer events are dropped beyond that.
QUEUE_SIZE = 1000


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def event_message(topic: str, event: Any) -> str:
    """Encode one bus event as a JSON object with ``topic`` and ``data``."""
    data = (
        dataclasses.asdict(event)
        if dataclasses.is_dataclass(event) and not isinstance(event, type)
        else event
    )
    return json.dumps({"topic": topic, "data": data}, default=_jsonable)


@router.websocket("/stream")
async def stream(websocket: WebSocket) -> None:
    """Forward every event published after the client connected (see ``EVENT_TOPICS``)."""
    trader = get_trader(websocket)
    await websocket.accept()
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
    dropped = 0

    def forward(topic: str) -> Any:
        def handler(event: Any) -> None:
            nonlocal dropped
            try:
                queue.put_nowait(event_message(topic, event))
            except asyncio.QueueFull:
                dropped += 1

        return handler

    handlers = {topic: forward(topic) for topic in EVENT_TOPICS}
    for topic, handler in handlers.items():
        trader.subscribe(topic, handler)
    # A pending receive raises WebSocketDisconnect as soon as the client disconnects.
    disconnected = asyncio.ensure_future(websocket.receive_text())
    try:
        while True:
            message = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                {message, disconnected}, return_when=asyncio.FIRST_COMPLETED
            )
            if disconnected in done:
                if disconnected.exception() is not None:
                    message.cancel()
                    break
                # A message from the client is ignored, and the next receive is awaited.
                disconnected = asyncio.ensure_future(websocket.receive_text())
            if message in done:
                await websocket.send_text(message.result())
            else:
                message.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        disconnected.cancel()
        for topic, handler in handlers.items():
            trader.unsubscribe(topic, handler)
        if dropped:
            logger.warning("A stream client fell behind, so %d events were dropped.", dropped)
