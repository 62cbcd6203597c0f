"""The paper trader's journal: each replay step is written to the database in one transaction,
and a restarted trader resumes by replaying the candles up to the stored step.

The decision code is deterministic, so replaying the same candles rebuilds exactly the state the
database describes. The journal checks that: after the fast-forward, the number of fills and
trades must equal the stored counts, or the start fails. Orders are upserted by client order id,
so nothing journaled before a crash is written twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from quantum_trader.backtest.runner import TradingSession
from quantum_trader.core.types import OrderStatus
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.commands import LoggedCommand
from quantum_trader.persistence.database import Database
from quantum_trader.persistence.repository import JournalStep, TradingRepository

logger = logging.getLogger(__name__)


class Journal:
    """Writes what each step adds and restores a session from the stored progress."""

    def __init__(self, database_url: str, password_file: Path | None = None) -> None:
        database = Database(database_url, password_file)
        self._lock = _lock_sqlite_file(database)
        self._lock_connection = _lock_postgres(database)
        database.upgrade()
        self.repository = TradingRepository(database)
        self._orders = 0
        self._fills = 0
        self._trades = 0
        self._decisions = 0
        self._open_orders: set[int] = set()
        self._ess_json: str | None = None

    def stored_step(self) -> int:
        """Return the number of steps already journaled (0 for a new database)."""
        progress = self.repository.load_progress()
        return 0 if progress is None else progress["step"]

    def verify_resume(self, session: TradingSession, step: int) -> None:
        """Check the fast-forwarded session against the stored counts, then continue from it."""
        progress = self.repository.load_progress()
        exchange = session.exchange
        if progress is not None:
            stored = {name: progress[name] for name in ("orders", "fills", "trades", "decisions")}
            replayed = {
                "orders": len(exchange.orders),
                "fills": len(exchange.fills),
                "trades": len(exchange.trades),
                "decisions": len(session.log.decisions),
            }
            if stored != replayed:
                raise ConfigurationError(
                    f"the database contains {stored} at step {step}, but replaying the candles "
                    f"gives {replayed}: the settings or data changed since it was written; "
                    "start with a new database URL"
                )
        self._mark(session)
        if step:
            logger.info("Paper trader resumed at step %d from the database.", step)

    def record(self, session: TradingSession, step: int, equity: float, drawdown: float) -> None:
        """Write the orders, fills, trades, decisions and state that ``step`` added."""
        exchange = session.exchange
        changed = sorted(self._open_orders | set(range(self._orders, len(exchange.orders))))
        orders = [exchange.orders[i] for i in changed]
        fills = exchange.fills[self._fills :]
        ess_state = session.emergency_stop.to_dict()
        ess_json = json.dumps(ess_state, sort_keys=True, default=str)
        journal_step = JournalStep(
            time_ns=session.feed.times[min(step, len(session.feed) - 1)],
            orders=orders,
            fills=list(fills),
            trades=exchange.trades[self._trades :],
            decisions=session.log.decisions[self._decisions :],
            positions=list(exchange.positions.values()) if fills else None,
            equity=equity,
            drawdown=drawdown,
            ess_state=None if ess_json == self._ess_json else _plain(ess_state),
            progress={
                "step": step + 1,
                "orders": len(exchange.orders),
                "fills": len(exchange.fills),
                "trades": len(exchange.trades),
                "decisions": len(session.log.decisions),
            },
        )
        self.repository.record_step(journal_step)
        self._ess_json = ess_json
        self._mark(session)

    def close(self) -> None:
        """Release the journal's lock, so that another trader may open it."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self._lock_connection is not None:
            # Closing would return the session, lock and all, to the pool; this ends it.
            self._lock_connection.invalidate()
            self._lock_connection.close()
            self._lock_connection = None

    def database_problem(self) -> str | None:
        """Return why the database cannot be reached, or None when a query succeeds."""
        try:
            with self.repository.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return f"the journal database is unreachable: {exc.__class__.__name__}"
        return None

    def save_command(self, command: LoggedCommand) -> None:
        self.repository.save_command(command.step, command.kind, _plain(command.payload))

    def stored_commands(self) -> list[LoggedCommand]:
        """Return the journaled commands, in the order they were applied."""
        return [
            LoggedCommand(step, kind, payload)
            for step, kind, payload in self.repository.load_commands()
        ]

    def save_mode(self, short_name: str, mode: str) -> None:
        self.repository.save_mode(short_name, mode)

    def _mark(self, session: TradingSession) -> None:
        exchange = session.exchange
        self._orders = len(exchange.orders)
        self._fills = len(exchange.fills)
        self._trades = len(exchange.trades)
        self._decisions = len(session.log.decisions)
        self._open_orders = {
            i for i, order in enumerate(exchange.orders) if order.status is OrderStatus.OPEN
        }


def _lock_sqlite_file(database: Database) -> IO[str] | None:
    """Lock an SQLite journal against a second process, and return the open lock file.

    Two traders writing one journal would each send every order. The lock is a POSIX record
    lock on ``FILE.lock``, which the system releases when the process ends, even by SIGKILL.
    """
    url = database.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(f"{url.database}.lock")
    lock = path.open("a+", encoding="utf-8")
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise ConfigurationError(
            f"the journal {url.database} is in use by another process (pid {holder}); stop that "
            "trader first, or give this one another database URL"
        ) from exc
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def _lock_postgres(database: Database) -> Connection | None:
    """Take a PostgreSQL advisory lock for this journal, and return the connection holding it.

    The key is derived from the URL without its password (search_path options included), so
    two traders on the same database and schema exclude each other. The server releases the
    lock when the connection closes, which includes the death of the process.
    """
    url = database.engine.url
    if url.get_backend_name() != "postgresql":
        return None
    url_text = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(f"quantum-trader journal {url_text}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    connection = database.engine.connect()
    locked = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
    connection.commit()
    if not locked:
        connection.close()
        raise ConfigurationError(
            f"the journal database {url_text} is in use by another trader, which has its advisory "
            "lock; stop that trader first, or give this one another database URL"
        )
    return connection


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    """Return ``state`` as plain JSON types for the JSON column."""
    result: dict[str, Any] = json.loads(json.dumps(state, default=str))
    return result
