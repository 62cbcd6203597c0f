from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from quantum_trader.config import EmergencyStopSettings
from quantum_trader.core.types import (
    ExitReason,
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
from quantum_trader.paper.journal import Journal
from quantum_trader.persistence.database import Database, default_database_url
from quantum_trader.persistence.models import Base, OrderRow, TradeRow
from quantum_trader.persistence.repository import JournalStep, LiveAnchor, TradingRepository
from quantum_trader.subsystems.emergency_stop import EmergencyStop

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# 2024-01-01 00:00:00 UTC, the open of a candle.
JAN_1_NS = 1_704_067_200 * 1_000_000_000


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    if not _port_open("127.0.0.1", 5432):
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")
    schema = f"qt_test_{uuid.uuid4().hex[:12]}"
    admin = Database(f"{POSTGRES_URL}?connect_timeout=2")
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # any driver error means the service cannot be used
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unusable: {exc}")
    try:
        yield f"{POSTGRES_URL}?connect_timeout=2&options=-csearch_path%3D{schema}"
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = default_database_url(tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


def _order(status: OrderStatus = OrderStatus.OPEN, filled: float = 0.0) -> Order:
    return Order(
        client_order_id="qt-entry-1",
        symbol="BTC/USDT:USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        quantity=0.5,
        created_ns=JAN_1_NS,
        price=42_000.0,
        tag="entry",
        leverage=3.0,
        stop_distance=800.0,
        status=status,
        filled_quantity=filled,
    )


def test_migrated_schema_matches_models(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_twice_is_a_no_op(database: Database) -> None:
    database.upgrade()
    with database.engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0003_live_anchor"


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = Database(default_database_url(tmp_path))
    with db.engine.connect() as connection:
        journal_mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        foreign_keys = connection.execute(text("PRAGMA foreign_keys")).scalar()
    db.dispose()
    assert journal_mode == "wal"
    assert foreign_keys == 1


def test_save_order_twice_keeps_one_row(database: Database) -> None:
    repository = TradingRepository(database)
    repository.save_order(_order())
    repository.save_order(_order(OrderStatus.FILLED, filled=0.5))

    with database.session() as session:
        count = session.scalar(select(func.count()).select_from(OrderRow))
    stored = repository.orders_by_client_id(["qt-entry-1", "unknown"])
    assert count == 1
    assert list(stored) == ["qt-entry-1"]
    assert stored["qt-entry-1"].status is OrderStatus.FILLED
    assert stored["qt-entry-1"].filled_quantity == 0.5
    assert stored["qt-entry-1"].price == 42_000.0
    assert stored["qt-entry-1"].created_ns == JAN_1_NS


def test_load_orders_filters_by_status(database: Database) -> None:
    repository = TradingRepository(database)
    repository.save_order(_order())
    other = _order()
    other.client_order_id = "qt-stop-1"
    other.status = OrderStatus.CANCELED
    repository.save_order(other)

    open_orders = repository.load_orders(OrderStatus.OPEN)
    assert [order.client_order_id for order in open_orders] == ["qt-entry-1"]
    assert len(repository.load_orders()) == 2


def test_decisions_round_trip_with_numbers(database: Database) -> None:
    repository = TradingRepository(database)
    decisions = [
        Decision(JAN_1_NS, "ETH/USDT", "risk", Action.RESIZE, "cap", {"size": 0.25, "cap": 0.1}),
        Decision(JAN_1_NS + 60_000_000_000, "", "ess", Action.TRIP, "max drawdown", {}),
    ]
    repository.save_decisions(decisions)
    assert repository.load_decisions() == decisions


def test_trade_round_trip_keeps_utc_times(database: Database) -> None:
    repository = TradingRepository(database)
    trade = Trade(
        symbol="BTC/USDT",
        side=PositionSide.SHORT,
        entry_time=pd.Timestamp("2024-01-01 00:00", tz="UTC"),
        entry_price=100.0,
        exit_time=pd.Timestamp("2024-01-01 05:00", tz="UTC"),
        exit_price=90.0,
        quantity=2.0,
        fees=0.2,
        funding=0.0,
        pnl=19.8,
        pnl_ratio=0.099,
        leverage=1.0,
        exit_reason=ExitReason.TAKE_PROFIT,
        extra={"mae": 0.03},
    )
    repository.save_trade(trade)
    with database.session() as session:
        row = session.scalars(select(TradeRow)).one()
    assert row.exit_time == pd.Timestamp("2024-01-01 05:00", tz="UTC").to_pydatetime()
    assert row.side == -1
    assert row.extra == {"mae": 0.03}


def test_state_survives_restart(tmp_path: Path) -> None:
    position = Position(
        symbol="BTC/USDT:USDT",
        side=PositionSide.SHORT,
        quantity=0.25,
        entry_price=41_500.5,
        entry_ns=JAN_1_NS,
        leverage=5.0,
        margin=2_075.025,
        liquidation_price=49_000.0,
        fees_paid=4.15,
        stop_price=42_300.0,
    )
    ess = EmergencyStop(EmergencyStopSettings())
    ess.trip_manual(JAN_1_NS, "operator halt")
    halted_state = ess.to_dict()

    first = Database(default_database_url(tmp_path))
    first.upgrade()
    TradingRepository(first).replace_positions([position])
    TradingRepository(first).save_ess_state(halted_state)
    TradingRepository(first).save_mode("ess", "enforced")
    first.dispose()

    restarted = Database(default_database_url(tmp_path))
    restarted.upgrade()
    repository = TradingRepository(restarted)
    assert repository.load_open_positions() == [position]
    assert repository.load_ess_state() == halted_state
    assert EmergencyStop.from_dict(halted_state, EmergencyStopSettings()).state == "halted"
    assert repository.load_modes() == {"ess": "enforced"}
    restarted.dispose()


def test_replace_positions_drops_closed_ones(database: Database) -> None:
    repository = TradingRepository(database)
    btc = Position("BTC/USDT", PositionSide.LONG, 1.0, 100.0, JAN_1_NS)
    eth = Position("ETH/USDT", PositionSide.LONG, 2.0, 10.0, JAN_1_NS)
    repository.replace_positions([btc, eth])
    repository.replace_positions([eth])
    assert repository.load_open_positions() == [eth]


def test_ess_state_is_none_before_first_save(database: Database) -> None:
    assert TradingRepository(database).load_ess_state() is None


def test_register_model_returns_increasing_ids(database: Database) -> None:
    repository = TradingRepository(database)
    first = repository.register_model("models/a.txt", "1h", {"auc": 0.61})
    second = repository.register_model("models/b.txt", "4h", {"auc": 0.58})
    assert second == first + 1


def test_invalid_url_names_the_value() -> None:
    with pytest.raises(ConfigurationError, match="not a url"):
        Database("not a url")


def test_replace_positions_rejects_repeated_symbol(database: Database) -> None:
    btc = Position("BTC/USDT", PositionSide.LONG, 1.0, 100.0, JAN_1_NS)
    with pytest.raises(ConfigurationError, match="repeat a symbol"):
        TradingRepository(database).replace_positions([btc, btc])


def test_record_step_writes_rows_and_progress(database: Database) -> None:
    """One step's order, decision and progress land together; a second step updates the order."""
    repository = TradingRepository(database)
    decision = Decision(JAN_1_NS, "BTC/USDT:USDT", "ESS", Action.VETO, "halted", {"x": 1.0})
    first = JournalStep(
        time_ns=JAN_1_NS,
        orders=[_order()],
        fills=[],
        trades=[],
        decisions=[decision],
        positions=[],
        equity=10_000.0,
        drawdown=0.0,
        ess_state={"state": "active"},
        progress={"step": 1, "orders": 1, "fills": 0, "trades": 0, "decisions": 1},
    )
    repository.record_step(first)
    second = JournalStep(
        time_ns=JAN_1_NS + 3_600_000_000_000,
        orders=[_order(OrderStatus.FILLED, 0.5)],
        fills=[],
        trades=[],
        decisions=[],
        positions=None,
        equity=10_010.0,
        drawdown=0.0,
        ess_state=None,
        progress={"step": 2, "orders": 1, "fills": 0, "trades": 0, "decisions": 1},
    )
    repository.record_step(second)
    assert repository.load_progress() == {
        "step": 2, "orders": 1, "fills": 0, "trades": 0, "decisions": 1,
    }  # fmt: skip
    orders = repository.load_orders()
    assert len(orders) == 1
    assert orders[0].status is OrderStatus.FILLED
    assert repository.count_rows() == {"orders": 1, "fills": 0, "trades": 0, "decisions": 1}
    assert repository.load_ess_state() == {"state": "active"}


def test_live_candles_round_trip_and_skip_stored(database: Database) -> None:
    # Two 1h candles, the second a flat synthetic one; saving them again writes nothing, and a
    # frame with one more candle writes only that one.
    repository = TradingRepository(database)
    times = pd.to_datetime([JAN_1_NS, JAN_1_NS + 3_600 * 10**9], utc=True)
    frame = pd.DataFrame(
        {
            "date": times,
            "open": [100.0, 101.5],
            "high": [102.0, 101.5],
            "low": [99.0, 101.5],
            "close": [101.5, 101.5],
            "volume": [12.5, 0.0],
            "synthetic": [False, True],
        }
    )

    assert repository.save_live_candles({"BTC/USDT": frame}) == 2
    assert repository.save_live_candles({"BTC/USDT": frame}) == 0
    longer = pd.concat([frame, frame.iloc[[1]].assign(date=times[1] + pd.Timedelta(hours=1))])
    assert repository.save_live_candles({"BTC/USDT": longer}) == 1
    loaded = repository.load_live_candles("BTC/USDT")

    assert loaded["date"].tolist() == [*times, times[1] + pd.Timedelta(hours=1)]
    assert loaded["close"].tolist() == [101.5, 101.5, 101.5]
    assert loaded["synthetic"].tolist() == [False, True, True]
    assert str(loaded["date"].dt.tz) == "UTC"
    assert len(repository.load_live_candles("ETH/USDT")) == 0


def test_live_anchor_is_written_once(database: Database) -> None:
    repository = TradingRepository(database)
    # Candle open times; the columns keep microseconds, and candles open on whole seconds.
    hour = 3_600 * 10**9
    first = LiveAnchor("binance", "spot", "1h", ("BTC/USDT", "ETH/USDT"), JAN_1_NS, JAN_1_NS + hour)
    second = LiveAnchor("okx", "spot", "5m", ("SOL/USDT",), JAN_1_NS + hour, JAN_1_NS + 2 * hour)

    assert repository.load_live_anchor() is None
    repository.save_live_anchor(first)
    repository.save_live_anchor(second)

    assert repository.load_live_anchor() == first


def test_commands_load_in_applied_order(database: Database) -> None:
    repository = TradingRepository(database)
    repository.save_command(12, "trip", {"reason": "operator"})
    repository.save_command(12, "reset", {"authorised_by": "alice"})
    repository.save_command(40, "mode", {"short_name": "Universe OS", "mode": "observe"})

    assert repository.load_commands() == [
        (12, "trip", {"reason": "operator"}),
        (12, "reset", {"authorised_by": "alice"}),
        (40, "mode", {"short_name": "Universe OS", "mode": "observe"}),
    ]


def test_postgres_journal_admits_one_trader(postgres_url: str) -> None:
    first = Journal(postgres_url)
    with pytest.raises(ConfigurationError, match="in use by another trader") as caught:
        Journal(postgres_url)
    first.close()  # as the death of its process would
    third = Journal(postgres_url)
    third.close()

    assert "127.0.0.1" in str(caught.value)
