"""Tripping and resetting the Emergency Stop System by hand."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status

from quantum_trader.api.auth import ApiKey
from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import EmergencyStopModel, ResetRequest, TripRequest, iso_from_ns
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.trader import PaperTrader

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/ess", tags=["ess"], dependencies=[ApiKey])


def _state(trader: PaperTrader) -> EmergencyStopModel:
    emergency_stop = trader.session.emergency_stop
    trip = emergency_stop.trip
    return EmergencyStopModel(
        state=emergency_stop.state,
        trip_reason=None if trip is None else trip.reason,
        trip_detail=None if trip is None else trip.detail,
        tripped_at=None if trip is None else iso_from_ns(trip.time_ns),
    )


@router.post("/trip")
async def trip(request: TripRequest, trader: Trader) -> EmergencyStopModel:
    """Halt new entries and cancel pending entry orders."""
    try:
        trader.trip(request.reason)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    logger.warning("ESS tripped through the API: %s", request.reason)
    return _state(trader)


@router.post("/reset")
async def reset(request: ResetRequest, trader: Trader) -> EmergencyStopModel:
    """Lift the trip in force, recording who authorised it."""
    try:
        trader.reset(request.authorised_by)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _state(trader)
