"""Domain types shared by the exchange, the engine, the strategies and the reports.

Times inside the engine are integer nanoseconds since the Unix epoch, UTC, and always refer to a
candle's **open** time unless a field says otherwise. Reports convert them to ISO 8601 strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import pandas as pd

NS_PER_SECOND = 1_000_000_000


class PositionSide(IntEnum):
    """Direction of a position; the value is the sign used in PnL and funding formulas."""

    LONG = 1
    SHORT = -1


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


class MarketType(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    EXIT_SIGNAL = "exit_signal"
    REVERSE_SIGNAL = "reverse_signal"
    LIQUIDATION = "liquidation"
    EMERGENCY_STOP = "emergency_stop"
    END_OF_DATA = "end_of_data"
    POSITION_EXIT = "position_exit"
    POSITION_REDUCE = "position_reduce"
    PARTIAL_TAKE_PROFIT = "partial_take_profit"


@dataclass(slots=True)
class Order:
    """An order as the simulated (or a real) exchange sees it.

    ``price`` is the limit price of a LIMIT order, ``stop_price`` the trigger of a STOP_MARKET
    order. ``tag`` says why the engine sent it (``entry``, ``stop_loss``, ``take_profit``,
    ``exit_signal``, ...). ``reduce_only`` orders can only shrink a position.

    An opening order may carry a bracket: ``stop_distance`` and ``take_profit_distance`` are
    absolute price distances applied from the fill price, so the protective stop and target are
    live from the candle of the fill on.
    """

    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: float
    created_ns: int
    price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    tag: str = ""
    leverage: float = 1.0
    stop_distance: float | None = None
    take_profit_distance: float | None = None
    status: OrderStatus = OrderStatus.OPEN
    filled_quantity: float = 0.0
    reject_reason: str | None = None


@dataclass(slots=True, frozen=True)
class Fill:
    """One execution. ``fee`` is in the quote currency and always non-negative."""

    client_order_id: str
    symbol: str
    side: OrderSide
    price: float
    quantity: float
    fee: float
    liquidity: Liquidity
    time_ns: int
    tag: str = ""


@dataclass(slots=True)
class Position:
    """An open position. ``quantity`` is positive; the direction is ``side``."""

    symbol: str
    side: PositionSide
    quantity: float
    entry_price: float
    entry_ns: int
    leverage: float = 1.0
    margin: float = 0.0
    liquidation_price: float | None = None
    fees_paid: float = 0.0
    funding_paid: float = 0.0
    stop_price: float | None = None
    take_profit_price: float | None = None

    def unrealized_pnl(self, mark: float) -> float:
        return int(self.side) * self.quantity * (mark - self.entry_price)


@dataclass(slots=True, frozen=True)
class Trade:
    """A closed round trip, the row every report and test reads.

    ``pnl`` is net of both fills' fees and of funding. ``pnl_ratio`` is ``pnl`` over the margin
    committed at entry (the notional divided by the leverage); for spot, leverage is 1 and the
    margin is the entry notional.
    """

    symbol: str
    side: PositionSide
    entry_time: pd.Timestamp
    entry_price: float
    exit_time: pd.Timestamp
    exit_price: float
    quantity: float
    fees: float
    funding: float
    pnl: float
    pnl_ratio: float
    leverage: float
    exit_reason: ExitReason
    entry_tag: str = ""
    extra: dict[str, float] = field(default_factory=dict)
