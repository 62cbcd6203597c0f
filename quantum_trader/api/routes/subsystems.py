"""Changing a subsystem's mode."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status

from quantum_trader.api.auth import ApiKey
from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import ModeRequest, ModeResponse
from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/subsystems", tags=["subsystems"], dependencies=[ApiKey])


@router.post("/{short_name}/mode")
async def set_mode(short_name: str, request: ModeRequest, trader: Trader) -> ModeResponse:
    """Set the configured mode. The integration stage may cap the effective mode."""
    registry = trader.registry
    if short_name not in registry.subsystems:
        known = ", ".join(registry.subsystems)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no subsystem is named {short_name!r}; use one of: {known}",
        )
    try:
        effective = trader.set_mode(short_name, request.mode)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return ModeResponse(
        short_name=short_name,
        configured_mode=registry.configured_mode(short_name),
        effective_mode=effective,
    )
