"""The database connection: engine, Alembic migrations and sessions."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
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


def read_password_file(path: Path) -> str:
    """Read a database password from ``path`` and drop its trailing newlines.

    The postgres image reads ``POSTGRES_PASSWORD_FILE`` with the shell's ``$(< file)``, which
    drops trailing newlines too, so both sides agree on a file written by ``echo`` or
    ``openssl rand -hex 32 >``. Raises ConfigurationError naming the path when the file is
    missing, unreadable or empty. The message never contains the file's content.
    """
    hint = "or point QT_SERVICE__DATABASE_PASSWORD_FILE at the file that contains the password"
    try:
        password = path.read_text(encoding="utf-8").rstrip("\n")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"Database password file {str(path)!r} not found: create it with the password on "
            f"one line, {hint}."
        ) from exc
    except UnicodeDecodeError as exc:
        # The decoder's own message quotes a byte of the password, so it is left out.
        raise ConfigurationError(
            f"Database password file {str(path)!r} is not valid UTF-8: rewrite the password as "
            f"UTF-8 text, {hint}."
        ) from exc
    except OSError as exc:
        raise ConfigurationError(
            f"Database password file {str(path)!r} cannot be read ({exc.strerror}): make it "
            f"readable by this process (uid {os.getuid()}), {hint}."
        ) from exc
    if not password:
        raise ConfigurationError(
            f"Database password file {str(path)!r} is empty: write the database user's password "
            f"into it, {hint}."
        )
    return password


def _parse_url(url: str, password_file: Path | None) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The user information may contain a password, so it is masked, and SQLAlchemy's own
        # error, which quotes the whole URL, is not chained.
        masked = re.sub(r"^(.*?://)?[^@]*@", lambda m: (m.group(1) or "") + "***@", url)
        raise ConfigurationError(
            f"Invalid database URL {masked!r}: use a form like sqlite:///path/to/file.db "
            "or postgresql+psycopg://user@host:5432/name."
        ) from None
    if password_file is None:
        return parsed
    if parsed.password is not None:
        raise ConfigurationError(
            f"The database URL {parsed.render_as_string(hide_password=True)} contains a password "
            f"and the password file {str(password_file)!r} is set too: remove the password from "
            "the URL."
        )
    return parsed.set(password=read_password_file(password_file))


class Database:
    """An SQLAlchemy engine with the Alembic migrations and a session factory.

    ``url`` is an SQLAlchemy URL such as ``sqlite:///data/quantum_trader.db`` or
    ``postgresql+psycopg://user@host:5432/name``. With ``password_file``, the password read from
    that file (see ``read_password_file``) is set on the parsed URL, so it exists only in
    ``engine.url`` and never in ``url``, in a log line or in an error message of this class.
    Raises ConfigurationError for an invalid URL or an unusable password file.
    """

    def __init__(self, url: str, password_file: Path | None = None) -> None:
        parsed = _parse_url(url, password_file)
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
