"""Response and request models of the HTTP API. Times are ISO 8601 strings in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from quantum_trader.core.types import Order, Position, Trade
from quantum_trader.engine.decisions import Decision
from quantum_trader.subsystems.base import Health, Mode


def iso_from_ns(time_ns: int) -> str:
    """Format nanoseconds since the epoch as ISO 8601 UTC."""
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat()


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessResponse(BaseModel):
    ready: bool
    problems: list[str]


class SubsystemModel(BaseModel):
    name: str
    short_name: str
    mode: Mode
    health: Health
    last_heartbeat: str | None
    last_decision: str | None


class DirectivesModel(BaseModel):
    global_mode: str
    confidence_floor: float
    size_scale: float
    leverage_cap: float
    max_positions: int
    binding: bool
    reason: str


class EmergencyStopModel(BaseModel):
    state: str
    trip_reason: str | None
    trip_detail: str | None
    tripped_at: str | None


class MarketDataModel(BaseModel):
    source: str = Field(description="replay: the shipped candles; live: the exchange's candles.")
    exchange: str | None = Field(description="ccxt exchange id of a live feed.")
    data_age_seconds: float | None = Field(
        description="Replay: seconds since the last step. Live: seconds since the newest candle "
        "closed."
    )
    data_age_limit_seconds: float = Field(description="Older data makes the service not ready.")
    last_poll_error: str | None = Field(description="Why the latest poll failed, if it did.")
    rebuild_seconds: float | None = Field(
        description="Live: seconds the latest rebuild of signals and session took."
    )


class AIStatusResponse(BaseModel):
    subsystems: list[SubsystemModel]
    integration_stage: str
    global_risk_mode: DirectivesModel
    emergency_stop: EmergencyStopModel
    market_data: MarketDataModel
    market_time: str | None
    step: int
    steps: int
    finished: bool


class ProfileSignalModel(BaseModel):
    entry: int = Field(description="+1 open long, -1 open short, 0 nothing.")
    exit: bool
    confidence: float | None


class SignalResponse(BaseModel):
    symbol: str
    time: str = Field(description="Open time of the candle whose close decided the signal.")
    profiles: dict[str, ProfileSignalModel]
    votes: dict[str, float | None] = Field(description="Per-model probability of an up move.")


class TradeModel(BaseModel):
    symbol: str
    side: str
    entry_time: str
    entry_price: float
    exit_time: str
    exit_price: float
    quantity: float
    fees: float
    funding: float
    pnl: float
    pnl_ratio: float
    leverage: float
    exit_reason: str
    entry_tag: str

    @classmethod
    def of(cls, trade: Trade) -> TradeModel:
        return cls(
            symbol=trade.symbol,
            side=trade.side.name.lower(),
            entry_time=trade.entry_time.isoformat(),
            entry_price=trade.entry_price,
            exit_time=trade.exit_time.isoformat(),
            exit_price=trade.exit_price,
            quantity=trade.quantity,
            fees=trade.fees,
            funding=trade.funding,
            pnl=trade.pnl,
            pnl_ratio=trade.pnl_ratio,
            leverage=trade.leverage,
            exit_reason=trade.exit_reason.value,
            entry_tag=trade.entry_tag,
        )


class PositionModel(BaseModel):
    symbol: str
    side: str
    quantity: float
    entry_price: float
    entry_time: str
    leverage: float
    stop_price: float | None
    take_profit_price: float | None
    liquidation_price: float | None

    @classmethod
    def of(cls, position: Position) -> PositionModel:
        return cls(
            symbol=position.symbol,
            side=position.side.name.lower(),
            quantity=position.quantity,
            entry_price=position.entry_price,
            entry_time=iso_from_ns(position.entry_ns),
            leverage=position.leverage,
            stop_price=position.stop_price,
            take_profit_price=position.take_profit_price,
            liquidation_price=position.liquidation_price,
        )


class OrderModel(BaseModel):
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: float
    created: str
    price: float | None
    stop_price: float | None
    reduce_only: bool
    status: str
    filled_quantity: float
    reject_reason: str | None
    tag: str

    @classmethod
    def of(cls, order: Order) -> OrderModel:
        return cls(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side.value,
            type=order.type.value,
            quantity=order.quantity,
            created=iso_from_ns(order.created_ns),
            price=order.price,
            stop_price=order.stop_price,
            reduce_only=order.reduce_only,
            status=order.status.value,
            filled_quantity=order.filled_quantity,
            reject_reason=order.reject_reason,
            tag=order.tag,
        )


class EquityPoint(BaseModel):
    time: str
    equity: float


class DecisionModel(BaseModel):
    time: str
    symbol: str
    subsystem: str
    action: str
    reason: str
    numbers: dict[str, float]

    @classmethod
    def of(cls, decision: Decision) -> DecisionModel:
        return cls(
            time=iso_from_ns(decision.time_ns),
            symbol=decision.symbol,
            subsystem=decision.subsystem,
            action=decision.action.value,
            reason=decision.reason,
            numbers=decision.numbers,
        )


class ModeRequest(BaseModel):
    mode: Mode


class ModeResponse(BaseModel):
    short_name: str
    configured_mode: Mode
    effective_mode: Mode


class TripRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ResetRequest(BaseModel):
    authorised_by: str = Field(min_length=1, max_length=200)
