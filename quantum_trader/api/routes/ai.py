"""Status of the AI subsystems, the integration stage, AI-HFOS's directives and the ESS."""

from __future__ import annotations

from fastapi import APIRouter

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import (
    AIStatusResponse,
    DirectivesModel,
    EmergencyStopModel,
    MarketDataModel,
    SubsystemModel,
    iso_from_ns,
)

router = APIRouter(prefix="/ai", tags=["ai"])


@router.get("/status")
async def ai_status(trader: Trader) -> AIStatusResponse:
    """Return every subsystem's mode and health, the stage, the global mode and the ESS."""
    subsystems = [
        SubsystemModel(
            name=row.name,
            short_name=row.short_name,
            mode=row.mode,
            health=row.health,
            last_heartbeat=row.last_heartbeat,
            last_decision=row.last_decision,
        )
        for row in trader.subsystem_status()
    ]
    directives = trader.directives()
    emergency_stop = trader.session.emergency_stop
    trip = emergency_stop.trip
    state = trader.status()
    return AIStatusResponse(
        subsystems=subsystems,
        integration_stage=trader.registry.stage.value,
        global_risk_mode=DirectivesModel(
            global_mode=str(directives.global_mode),
            confidence_floor=directives.confidence_floor,
            size_scale=directives.size_scale,
            leverage_cap=directives.leverage_cap,
            max_positions=directives.max_positions,
            binding=directives.binding,
            reason=directives.reason,
        ),
        emergency_stop=EmergencyStopModel(
            state=emergency_stop.state,
            trip_reason=None if trip is None else trip.reason,
            trip_detail=None if trip is None else trip.detail,
            tripped_at=None if trip is None else iso_from_ns(trip.time_ns),
        ),
        market_data=MarketDataModel(
            source=state.source,
            exchange=state.exchange,
            data_age_seconds=state.data_age_seconds,
            data_age_limit_seconds=state.data_age_limit_seconds,
            last_poll_error=state.last_poll_error,
            rebuild_seconds=state.rebuild_seconds,
        ),
        market_time=None if state.market_time_ns is None else iso_from_ns(state.market_time_ns),
        step=state.step,
        steps=state.steps,
        finished=state.finished,
    )
