"""SQLAlchemy models of the trading database.

Every timestamp column is timezone-aware and stored in UTC. The Alembic revision
``0001_initial`` creates exactly these tables; change both together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Double,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime that always loads as UTC.

    SQLite stores no offset, so values are normalised to UTC on the way in and tagged UTC on
    the way out. Naive datetimes are rejected because their zone is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Named constraints and indexes, so that the hand-written migration and the models agree on
# every name on each database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute as is)
        float: Double(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        dict[str, float]: JSON(),
    }


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float]
    price: Mapped[float | None]
    stop_price: Mapped[float | None]
    reduce_only: Mapped[bool]
    tag: Mapped[str] = mapped_column(String(64))
    leverage: Mapped[float]
    stop_distance: Mapped[float | None]
    take_profit_distance: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), index=True)
    filled_quantity: Mapped[float]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FillRow(Base):
    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No foreign key to orders: an exchange report can arrive before the order row is written.
    client_order_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[float]
    quantity: Mapped[float]
    fee: Mapped[float]
    liquidity: Mapped[str] = mapped_column(String(8))
    time: Mapped[datetime]
    tag: Mapped[str] = mapped_column(String(64))


class PositionRow(Base):
    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    # The sign of the position: 1 long, -1 short.
    side: Mapped[int]
    quantity: Mapped[float]
    entry_price: Mapped[float]
    entry_at: Mapped[datetime]
    leverage: Mapped[float]
    margin: Mapped[float]
    liquidation_price: Mapped[float | None]
    fees_paid: Mapped[float]
    funding_paid: Mapped[float]
    stop_price: Mapped[float | None]
    take_profit_price: Mapped[float | None]


class TradeRow(Base):
    __tablename__ = "trades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[int]
    entry_time: Mapped[datetime]
    entry_price: Mapped[float]
    exit_time: Mapped[datetime]
    exit_price: Mapped[float]
    quantity: Mapped[float]
    fees: Mapped[float]
    funding: Mapped[float]
    pnl: Mapped[float]
    pnl_ratio: Mapped[float]
    leverage: Mapped[float]
    exit_reason: Mapped[str] = mapped_column(String(32))
    entry_tag: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict[str, float]]


class EquitySnapshotRow(Base):
    __tablename__ = "equity_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    equity: Mapped[float]
    drawdown: Mapped[float]


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    subsystem: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, float]]


class EssStateRow(Base):
    """The emergency stop's state; the repository keeps a single row with id 1."""

    __tablename__ = "ess_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ReplayProgressRow(Base):
    """How far a paper replay has got, as counts of what it journaled; one row with id 1."""

    __tablename__ = "replay_progress"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    fills: Mapped[int] = mapped_column(Integer)
    trades: Mapped[int] = mapped_column(Integer)
    decisions: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class LiveAnchorRow(Base):
    """The start of a live paper run's candles and of its trading; one row with id 1.

    A restarted live run fetches its candles from ``first_open`` again, so the replay rebuilds
    the same timeline, and trades only from ``trade_from`` on.
    """

    __tablename__ = "live_anchor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exchange: Mapped[str] = mapped_column(String(40))
    market_type: Mapped[str] = mapped_column(String(16))
    timeframe: Mapped[str] = mapped_column(String(8))
    symbols: Mapped[str] = mapped_column(Text)
    first_open: Mapped[datetime]
    trade_from: Mapped[datetime]
    created_at: Mapped[datetime]


class LiveCandleRow(Base):
    """A candle of a live paper run's timeline, as the trader processed it.

    ``synthetic`` marks a flat candle the trader made up for a symbol that did not deliver one
    in time. A restart rebuilds the timeline from these rows, not from the exchange, which may
    have delivered the real candle since.
    """

    __tablename__ = "live_candles"
    __table_args__ = (UniqueConstraint("symbol", "open_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    open_time: Mapped[datetime]
    open: Mapped[float]
    high: Mapped[float]
    low: Mapped[float]
    close: Mapped[float]
    volume: Mapped[float]
    synthetic: Mapped[bool] = mapped_column(Boolean)


class OperatorCommandRow(Base):
    """A command applied to the paper session between steps (an ESS trip or reset, a mode
    change, a stale-data trip), kept so that a restart applies it before the same step."""

    __tablename__ = "operator_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class SubsystemModeRow(Base):
    __tablename__ = "subsystem_modes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    short_name: Mapped[str] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class ModelRegistryRow(Base):
    __tablename__ = "model_registry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    timeframe: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    metrics: Mapped[dict[str, float]]
