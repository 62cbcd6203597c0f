"""Settings and data types of the execution manager (AELM)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.core.types import Order, OrderSide
from quantum_trader.subsystems.base import Mode


class ExecutionSettings(BaseModel):
    """Execution manager settings. Participations are fractions of the average candle volume."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(1, ge=1, le=100_000, description="Candles between two evaluations.")
    limit_participation: float = Field(
        0.001, gt=0, le=1, description="Participation below which a market order is sent."
    )
    slice_participation: float = Field(
        0.01, gt=0, le=1, description="Participation above which the order is sliced."
    )
    max_slices: int = Field(10, ge=1, le=100, description="Max child orders of one decision.")
    prefer_maker: bool = Field(False, description="Mark limit orders post-only.")
    max_slippage_bps: float = Field(
        30.0, gt=0, le=1_000, description="Expected slippage cap of a market order, in bps."
    )
    limit_timeout_candles: int = Field(
        3, ge=1, le=10_000, description="Candles an unfilled limit order may rest."
    )
    max_retries: int = Field(3, ge=0, le=10, description="Retries after a temporary error.")
    retry_backoff_s: float = Field(
        0.5, ge=0, le=60, description="First retry delay in seconds; it doubles on each retry."
    )
    urgent_tags: tuple[str, ...] = Field(
        ("emergency_stop", "stop_loss", "liquidation"),
        description="Order tags (the part before ':') always sent as one market order.",
    )

    @model_validator(mode="after")
    def _check_thresholds(self) -> ExecutionSettings:
        if self.limit_participation > self.slice_participation:
            raise ValueError(
                f"execution.limit_participation={self.limit_participation:g} must not exceed "
                f"execution.slice_participation={self.slice_participation:g}"
            )
        return self


class SlippageParameters(Protocol):
    """The fill model's slippage parameters; ``config.SlippageSettings`` provides them."""

    @property
    def fixed_bps(self) -> float: ...

    @property
    def range_share(self) -> float: ...

    @property
    def volume_impact(self) -> float: ...


class ExecutionStyle(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    POST_ONLY = "post_only"
    SLICED = "sliced"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """An approved order to execute. Distances are absolute prices from the fill price."""

    symbol: str
    side: OrderSide
    quantity: float
    reference_price: float
    reduce_only: bool = False
    tag: str = ""
    stop_distance: float | None = None
    take_profit_distance: float | None = None
    leverage: float = 1.0


@dataclass(frozen=True, slots=True)
class MarketContext:
    """Recent market state, from candles at or before the decision candle.

    ``avg_volume`` is the average candle volume in base units, ``last_range`` the decision
    candle's high minus low, and ``volatility`` a price fraction (such as ATR over close) used
    when the range is unknown.
    """

    avg_volume: float
    last_range: float
    volatility: float = math.nan


@dataclass(frozen=True, slots=True)
class ExecutionPlan:
    """The orders to send for one decision, and why.

    Each order's ``created_ns`` is the candle at whose close it is due. ``expected_slippage_bps``
    is the expected slippage of one market order for the whole quantity (NaN when unknown).
    ``recommended`` is the style the enforced rules choose. It differs from ``style`` only in
    observe and advisory mode, where the plan is the plain market order. ``post_only`` means
    the plan's LIMIT orders should be accepted only as makers.

    NOTE: neither the simulated exchange nor ``ExchangeClient.create_order`` takes a post-only
    flag yet, so a post-only order goes out as a plain limit order and may fill as a taker.
    """

    orders: list[Order]
    style: ExecutionStyle
    expected_slippage_bps: float
    reason: str
    binding: bool
    participation: float = math.nan
    recommended: ExecutionStyle = ExecutionStyle.MARKET
    post_only: bool = False

    def due(self, time_ns: int) -> list[Order]:
        """Return the orders due at or before the candle opened at ``time_ns``."""
        return [order for order in self.orders if order.created_ns <= time_ns]


@dataclass(frozen=True, slots=True)
class TimeoutAction:
    """A limit order canceled for its timeout, and the market order replacing it, if any."""

    canceled: Order
    replacement: Order | None
    reason: str


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """The outcome of ``submit``; ``unconfirmed`` means look the order up before resending."""

    client_order_id: str
    status: Literal["accepted", "rejected", "unconfirmed"]
    reason: str = ""
    response: dict[str, object] = field(default_factory=dict)
