"""The database connection: engine, Alembic migrations and sessions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

MIGRATIONS_PATH = Path(__file__).resolve().parent / "migrations"
DATABASE_FILENAME = "quantum_trader.db"


def default_database_url(datadir: Path) -> str:
    """Return the SQLite URL of the database file inside ``datadir``."""
    return f"sqlite:///{Path(datadir) / DATABASE_FILENAME}"


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets a dashboard read while the engine writes. SQLite leaves foreign keys off
    # unless each connection turns them on.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class Database:
    """An SQLAlchemy engine with the Alembic migrations and a session factory.

    ``url`` is an SQLAlchemy URL such as ``sqlite:///data/quantum_trader.db`` or
    ``postgresql+psycopg://user@host:5432/name``. Raises ConfigurationError for an invalid URL.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigurationError(
                f"Invalid database URL {url!r}: use a form like sqlite:///path/to/file.db "
                "or postgresql+psycopg://user@host:5432/name."
            ) from exc
        self.url = url
        self.engine: Engine = create_engine(parsed)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _set_sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        logger.info("Database engine created for %s.", parsed.render_as_string(hide_password=True))

    def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to ``revision`` (the newest by default)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_PATH))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        logger.info("Database schema migrated to %s.", revision)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session; commit when the block ends, roll back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection; the object stays usable and reconnects on demand."""
        self.engine.dispose()
