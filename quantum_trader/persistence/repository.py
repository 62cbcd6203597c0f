"""Read and write the trading state: orders, fills, positions, trades, equity and decisions.

Domain types carry times as integer nanoseconds since the epoch (UTC); the database stores
timezone-aware UTC datetimes. The conversion happens only here. Datetimes keep microseconds, so
the last three digits of a nanosecond time are dropped; candle times are whole seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from quantum_trader.core.types import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Trade,
)
from quantum_trader.engine.decisions import Action, Decision
from quantum_trader.errors import ConfigurationError
from quantum_trader.persistence.database import Database
from quantum_trader.persistence.models import (
    DecisionRow,
    EquitySnapshotRow,
    EssStateRow,
    FillRow,
    LiveAnchorRow,
    LiveCandleRow,
    ModelRegistryRow,
    OperatorCommandRow,
    OrderRow,
    PositionRow,
    ReplayProgressRow,
    SubsystemModeRow,
    TradeRow,
)

logger = logging.getLogger(__name__)

_ESS_ROW_ID = 1
_PROGRESS_ROW_ID = 1
_ANCHOR_ROW_ID = 1
PRICE_AND_VOLUME = ("open", "high", "low", "close", "volume")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Columns that a later save of the same client_order_id may change.
_ORDER_MUTABLE_COLUMNS = ("status", "filled_quantity", "reject_reason", "updated_at")


def ns_to_datetime(time_ns: int) -> datetime:
    """Convert nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    # Integer arithmetic: a float timestamp would round away microseconds.
    return _EPOCH + timedelta(microseconds=time_ns // 1000)


def datetime_to_ns(value: datetime) -> int:
    """Convert an aware datetime to nanoseconds since the epoch."""
    return int(pd.Timestamp(value).value)


def _timestamp_to_datetime(value: pd.Timestamp) -> datetime:
    # A naive Timestamp in a Trade is taken as UTC, the engine's only zone.
    stamp = value.tz_localize(UTC) if value.tzinfo is None else value.tz_convert(UTC)
    result: datetime = stamp.to_pydatetime()
    return result


def _order_values(order: Order, now: datetime) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "quantity": order.quantity,
        "price": order.price,
        "stop_price": order.stop_price,
        "reduce_only": order.reduce_only,
        "tag": order.tag,
        "leverage": order.leverage,
        "stop_distance": order.stop_distance,
        "take_profit_distance": order.take_profit_distance,
        "status": order.status.value,
        "filled_quantity": order.filled_quantity,
        "reject_reason": order.reject_reason,
        "created_at": ns_to_datetime(order.created_ns),
        "updated_at": now,
    }


def _order_from_row(row: OrderRow) -> Order:
    return Order(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=OrderSide(row.side),
        type=OrderType(row.type),
        quantity=row.quantity,
        created_ns=datetime_to_ns(row.created_at),
        price=row.price,
        stop_price=row.stop_price,
        reduce_only=row.reduce_only,
        tag=row.tag,
        leverage=row.leverage,
        stop_distance=row.stop_distance,
        take_profit_distance=row.take_profit_distance,
        status=OrderStatus(row.status),
        filled_quantity=row.filled_quantity,
        reject_reason=row.reject_reason,
    )


def _position_row(position: Position) -> PositionRow:
    return PositionRow(
        symbol=position.symbol,
        side=int(position.side),
        quantity=position.quantity,
        entry_price=position.entry_price,
        entry_at=ns_to_datetime(position.entry_ns),
        leverage=position.leverage,
        margin=position.margin,
        liquidation_price=position.liquidation_price,
        fees_paid=position.fees_paid,
        funding_paid=position.funding_paid,
        stop_price=position.stop_price,
        take_profit_price=position.take_profit_price,
    )


def _position_from_row(row: PositionRow) -> Position:
    return Position(
        symbol=row.symbol,
        side=PositionSide(row.side),
        quantity=row.quantity,
        entry_price=row.entry_price,
        entry_ns=datetime_to_ns(row.entry_at),
        leverage=row.leverage,
        margin=row.margin,
        liquidation_price=row.liquidation_price,
        fees_paid=row.fees_paid,
        funding_paid=row.funding_paid,
        stop_price=row.stop_price,
        take_profit_price=row.take_profit_price,
    )


def _trade_row(trade: Trade) -> TradeRow:
    return TradeRow(
        symbol=trade.symbol,
        side=int(trade.side),
        entry_time=_timestamp_to_datetime(trade.entry_time),
        entry_price=trade.entry_price,
        exit_time=_timestamp_to_datetime(trade.exit_time),
        exit_price=trade.exit_price,
        quantity=trade.quantity,
        fees=trade.fees,
        funding=trade.funding,
        pnl=trade.pnl,
        pnl_ratio=trade.pnl_ratio,
        leverage=trade.leverage,
        exit_reason=trade.exit_reason.value,
        entry_tag=trade.entry_tag,
        extra=dict(trade.extra),
    )


def _fill_row(fill: Fill) -> FillRow:
    return FillRow(
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side.value,
        price=fill.price,
        quantity=fill.quantity,
        fee=fill.fee,
        liquidity=fill.liquidity.value,
        time=ns_to_datetime(fill.time_ns),
        tag=fill.tag,
    )


def _decision_row(decision: Decision) -> DecisionRow:
    return DecisionRow(
        time=ns_to_datetime(decision.time_ns),
        symbol=decision.symbol,
        subsystem=decision.subsystem,
        action=decision.action.value,
        reason=decision.reason,
        numbers=dict(decision.numbers),
    )


@dataclass(frozen=True)
class LiveAnchor:
    """The timeline of a live paper run: its exchange, market, timeframe and symbols, the open
    time of its first candle and the open time from which it trades (both ns UTC)."""

    exchange: str
    market_type: str
    timeframe: str
    symbols: tuple[str, ...]
    first_open_ns: int
    trade_from_ns: int


@dataclass
class JournalStep:
    """What one replay step adds: new rows, orders whose state changed, and the progress."""

    time_ns: int
    orders: list[Order]
    fills: list[Fill]
    trades: list[Trade]
    decisions: list[Decision]
    positions: list[Position] | None
    equity: float
    drawdown: float
    ess_state: dict[str, Any] | None
    progress: dict[str, int]


class TradingRepository:
    """Typed reads and writes of the trading tables; each call is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_step(self, step: JournalStep) -> None:
        """Write everything one replay step produced in a single transaction.

        A crash therefore leaves either the whole step or none of it, so a restart that replays
        up to the stored progress never appends a fill, trade or decision twice.
        """
        with self.db.session() as session:
            for order in step.orders:
                session.execute(self._order_upsert(order))
            session.add_all(_fill_row(fill) for fill in step.fills)
            session.add_all(_trade_row(trade) for trade in step.trades)
            session.add_all(_decision_row(decision) for decision in step.decisions)
            if step.positions is not None:
                session.execute(delete(PositionRow))
                session.add_all(_position_row(position) for position in step.positions)
            session.add(
                EquitySnapshotRow(
                    time=ns_to_datetime(step.time_ns), equity=step.equity, drawdown=step.drawdown
                )
            )
            now = datetime.now(UTC)
            if step.ess_state is not None:
                ess = session.get(EssStateRow, _ESS_ROW_ID)
                if ess is None:
                    session.add(EssStateRow(id=_ESS_ROW_ID, state=step.ess_state, updated_at=now))
                else:
                    ess.state = step.ess_state
                    ess.updated_at = now
            progress = session.get(ReplayProgressRow, _PROGRESS_ROW_ID)
            if progress is None:
                progress = ReplayProgressRow(id=_PROGRESS_ROW_ID, updated_at=now)
                session.add(progress)
            progress.step = step.progress["step"]
            progress.orders = step.progress["orders"]
            progress.fills = step.progress["fills"]
            progress.trades = step.progress["trades"]
            progress.decisions = step.progress["decisions"]
            progress.updated_at = now

    def load_progress(self) -> dict[str, int] | None:
        """Return the stored replay progress (step and journaled counts), or None."""
        with self.db.session() as session:
            row = session.get(ReplayProgressRow, _PROGRESS_ROW_ID)
            if row is None:
                return None
            return {
                "step": row.step,
                "orders": row.orders,
                "fills": row.fills,
                "trades": row.trades,
                "decisions": row.decisions,
            }

    def count_rows(self) -> dict[str, int]:
        """Return the number of stored orders, fills, trades and decisions (for checks after
        restart)."""
        with self.db.session() as session:
            return {
                "orders": session.query(OrderRow).count(),
                "fills": session.query(FillRow).count(),
                "trades": session.query(TradeRow).count(),
                "decisions": session.query(DecisionRow).count(),
            }

    def _order_upsert(self, order: Order) -> Any:
        """Build the insert-or-update of ``order`` keyed on its client order id."""
        values = _order_values(order, datetime.now(UTC))
        dialect = self.db.engine.dialect.name
        if dialect == "sqlite":
            statement: Any = sqlite.insert(OrderRow).values(values)
        elif dialect == "postgresql":
            statement = postgresql.insert(OrderRow).values(values)
        else:
            raise ConfigurationError(
                f"Database dialect {dialect!r} is not supported: use SQLite or PostgreSQL."
            )
        update = {name: statement.excluded[name] for name in _ORDER_MUTABLE_COLUMNS}
        return statement.on_conflict_do_update(index_elements=["client_order_id"], set_=update)

    def save_order(self, order: Order) -> None:
        """Insert ``order``, or update the status and fill of the row with its client_order_id.

        A second save never creates a second row; the symbol, side, prices and creation time
        of the first save are kept.
        """
        statement = self._order_upsert(order)
        with self.db.session() as session:
            session.execute(statement)

    def save_fill(self, fill: Fill) -> None:
        """Append one execution."""
        with self.db.session() as session:
            session.add(_fill_row(fill))

    def save_trade(self, trade: Trade) -> None:
        """Append one closed round trip."""
        with self.db.session() as session:
            session.add(_trade_row(trade))

    def replace_positions(self, positions: Iterable[Position]) -> None:
        """Replace every stored position with ``positions`` in one transaction.

        Raises ConfigurationError when two positions share a symbol.
        """
        rows = [_position_row(position) for position in positions]
        symbols = [row.symbol for row in rows]
        if len(set(symbols)) != len(symbols):
            raise ConfigurationError(
                f"Positions {symbols} repeat a symbol: keep one open position per symbol."
            )
        with self.db.session() as session:
            session.execute(delete(PositionRow))
            session.add_all(rows)

    def save_equity(self, time_ns: int, equity: float, drawdown: float) -> None:
        """Append an equity snapshot; ``drawdown`` is a share of peak equity."""
        row = EquitySnapshotRow(time=ns_to_datetime(time_ns), equity=equity, drawdown=drawdown)
        with self.db.session() as session:
            session.add(row)

    def save_decisions(self, decisions: Iterable[Decision]) -> None:
        """Append decisions in the order given."""
        with self.db.session() as session:
            session.add_all(_decision_row(decision) for decision in decisions)

    def load_decisions(self) -> list[Decision]:
        """Return every stored decision in insertion order."""
        with self.db.session() as session:
            rows = session.scalars(select(DecisionRow).order_by(DecisionRow.id)).all()
            return [
                Decision(
                    time_ns=datetime_to_ns(row.time),
                    symbol=row.symbol,
                    subsystem=row.subsystem,
                    action=Action(row.action),
                    reason=row.reason,
                    numbers=dict(row.numbers),
                )
                for row in rows
            ]

    def load_open_positions(self) -> list[Position]:
        """Return the stored positions sorted by symbol."""
        with self.db.session() as session:
            rows = session.scalars(select(PositionRow).order_by(PositionRow.symbol)).all()
            return [_position_from_row(row) for row in rows]

    def load_orders(self, status: OrderStatus | None = None) -> list[Order]:
        """Return the stored orders, optionally only those with ``status``, oldest first."""
        query = select(OrderRow).order_by(OrderRow.created_at, OrderRow.id)
        if status is not None:
            query = query.where(OrderRow.status == status.value)
        with self.db.session() as session:
            return [_order_from_row(row) for row in session.scalars(query).all()]

    def orders_by_client_id(self, client_order_ids: Iterable[str]) -> dict[str, Order]:
        """Return the stored orders among ``client_order_ids``; unknown ids are left out."""
        ids = list(client_order_ids)
        if not ids:
            return {}
        query = select(OrderRow).where(OrderRow.client_order_id.in_(ids))
        with self.db.session() as session:
            rows = session.scalars(query).all()
            return {row.client_order_id: _order_from_row(row) for row in rows}

    def save_ess_state(self, state: Mapping[str, Any]) -> None:
        """Store the emergency stop's ``to_dict`` output, replacing the previous state."""
        with self.db.session() as session:
            row = session.get(EssStateRow, _ESS_ROW_ID)
            now = datetime.now(UTC)
            if row is None:
                session.add(EssStateRow(id=_ESS_ROW_ID, state=dict(state), updated_at=now))
            else:
                row.state = dict(state)
                row.updated_at = now

    def load_ess_state(self) -> dict[str, Any] | None:
        """Return the stored emergency stop state, or None when none was saved."""
        with self.db.session() as session:
            row = session.get(EssStateRow, _ESS_ROW_ID)
            return None if row is None else dict(row.state)

    def save_mode(self, short_name: str, mode: str) -> None:
        """Store the mode of the subsystem ``short_name``, replacing its previous mode."""
        now = datetime.now(UTC)
        with self.db.session() as session:
            query = select(SubsystemModeRow).where(SubsystemModeRow.short_name == short_name)
            row = session.scalars(query).one_or_none()
            if row is None:
                session.add(SubsystemModeRow(short_name=short_name, mode=mode, updated_at=now))
            else:
                row.mode = mode
                row.updated_at = now

    def load_modes(self) -> dict[str, str]:
        """Return the stored mode of each subsystem, keyed by short name."""
        with self.db.session() as session:
            rows = session.scalars(select(SubsystemModeRow)).all()
            return {row.short_name: row.mode for row in rows}

    def save_live_anchor(self, anchor: LiveAnchor) -> None:
        """Store where the live run's candles and trading begin; an existing anchor is kept."""
        with self.db.session() as session:
            if session.get(LiveAnchorRow, _ANCHOR_ROW_ID) is not None:
                return
            session.add(
                LiveAnchorRow(
                    id=_ANCHOR_ROW_ID,
                    exchange=anchor.exchange,
                    market_type=anchor.market_type,
                    timeframe=anchor.timeframe,
                    symbols=",".join(anchor.symbols),
                    first_open=ns_to_datetime(anchor.first_open_ns),
                    trade_from=ns_to_datetime(anchor.trade_from_ns),
                    created_at=datetime.now(UTC),
                )
            )

    def load_live_anchor(self) -> LiveAnchor | None:
        """Return the stored live anchor, or None when this database has none."""
        with self.db.session() as session:
            row = session.get(LiveAnchorRow, _ANCHOR_ROW_ID)
            if row is None:
                return None
            return LiveAnchor(
                exchange=row.exchange,
                market_type=row.market_type,
                timeframe=row.timeframe,
                symbols=tuple(row.symbols.split(",")),
                first_open_ns=datetime_to_ns(row.first_open),
                trade_from_ns=datetime_to_ns(row.trade_from),
            )

    def save_live_candles(self, candles: Mapping[str, pd.DataFrame]) -> int:
        """Store the candles later than each symbol's newest stored one, in one transaction.

        Each frame has the columns of a validated candle frame. Returns the rows written.
        """
        written = 0
        with self.db.session() as session:
            for symbol, frame in candles.items():
                query = select(func.max(LiveCandleRow.open_time)).where(
                    LiveCandleRow.symbol == symbol
                )
                newest = session.scalar(query)
                fresh = frame if newest is None else frame[frame["date"] > pd.Timestamp(newest)]
                values = zip(
                    fresh["date"].tolist(),
                    *(fresh[c].to_numpy(dtype="float64").tolist() for c in PRICE_AND_VOLUME),
                    fresh["synthetic"].to_numpy(dtype=bool).tolist(),
                    strict=True,
                )
                session.add_all(
                    LiveCandleRow(
                        symbol=symbol,
                        open_time=_timestamp_to_datetime(date),
                        open=open_,
                        high=high,
                        low=low,
                        close=close,
                        volume=volume,
                        synthetic=synthetic,
                    )
                    for date, open_, high, low, close, volume, synthetic in values
                )
                written += len(fresh)
        return written

    def load_live_candles(self, symbol: str) -> pd.DataFrame:
        """Return the stored candles of ``symbol``, oldest first, as a validated candle frame."""
        query = (
            select(LiveCandleRow)
            .where(LiveCandleRow.symbol == symbol)
            .order_by(LiveCandleRow.open_time)
        )
        with self.db.session() as session:
            rows = session.scalars(query).all()
            records = [
                (row.open_time, row.open, row.high, row.low, row.close, row.volume, row.synthetic)
                for row in rows
            ]
        columns = ["date", "open", "high", "low", "close", "volume", "synthetic"]
        frame = pd.DataFrame(records, columns=columns)
        frame["date"] = pd.to_datetime(frame["date"], utc=True).astype("datetime64[ns, UTC]")
        frame["synthetic"] = frame["synthetic"].astype(bool)
        for column in columns[1:6]:
            frame[column] = frame[column].astype("float64")
        return frame

    def save_command(self, step: int, kind: str, payload: Mapping[str, Any]) -> None:
        """Store a command applied before step ``step``."""
        with self.db.session() as session:
            session.add(
                OperatorCommandRow(
                    step=step, kind=kind, payload=dict(payload), created_at=datetime.now(UTC)
                )
            )

    def load_commands(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Return the stored commands as (step, kind, payload), in the order they were applied."""
        query = select(OperatorCommandRow).order_by(OperatorCommandRow.id)
        with self.db.session() as session:
            return [(row.step, row.kind, dict(row.payload)) for row in session.scalars(query)]

    def register_model(self, path: str, timeframe: str, metrics: Mapping[str, float]) -> int:
        """Record a trained model file and return its registry id."""
        row = ModelRegistryRow(
            path=path, timeframe=timeframe, created_at=datetime.now(UTC), metrics=dict(metrics)
        )
        with self.db.session() as session:
            session.add(row)
            session.flush()
            model_id = row.id
        logger.info("Model %s (%s) registered with id %d.", path, timeframe, model_id)
        return model_id
