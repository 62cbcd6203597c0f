"""The database password read from a file: where it goes and where it must never appear."""

from __future__ import annotations

import logging
import socket
import traceback
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from quantum_trader.config import load_settings
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.journal import Journal
from quantum_trader.persistence.database import Database, read_password_file

# The loopback test server of this machine accepts every local user without a password (trust).
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test?connect_timeout=2"
# Characters that would break a URL written by hand: the URL API must carry them unchanged.
PASSWORD = "s3cret:p@ss/w%rd"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _closed_loopback_port() -> int:
    # The port is free once the probe closes. Another process could take it before the test
    # connects, but then the connection still fails, only with a different message.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "postgres_password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


def test_password_file_sets_url_password(password_file: Path) -> None:
    url = "postgresql+psycopg://quantum_trader@postgres:5432/quantum_trader"
    db = Database(url, password_file)
    assert db.engine.url.password == "s3cret:p@ss/w%rd"
    assert db.engine.url.username == "quantum_trader"
    assert db.engine.url.host == "postgres"
    assert db.engine.url.database == "quantum_trader"
    assert db.url == url
    db.dispose()


def test_database_without_password_file_keeps_url() -> None:
    db = Database("postgresql+psycopg://quantum_trader@postgres:5432/quantum_trader")
    assert db.engine.url.password is None
    db.dispose()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("pw\n", "pw"),
        ("pw\n\n", "pw"),
        ("pw", "pw"),
        (" pw \n", " pw "),
        ("line one\nline two\n", "line one\nline two"),
    ],
)
def test_password_file_drops_trailing_newlines(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "password"
    path.write_text(content, encoding="utf-8")
    assert read_password_file(path) == expected


def test_password_reaches_postgres_driver(password_file: Path) -> None:
    """Connect to the loopback server with the password from the file.

    That server uses trust authentication, so it would accept a wrong password as well. The
    test therefore reads the password back from the driver's connection, which shows what
    psycopg was given.
    """
    if not _port_open("127.0.0.1", 5432):
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is unreachable")
    db = Database(POSTGRES_URL, password_file)
    try:
        with db.engine.connect() as connection:
            user = connection.execute(text("SELECT current_user")).scalar_one()
            driver_connection = connection.connection.dbapi_connection
            assert driver_connection is not None
            driver_password = driver_connection.info.password
    except OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unusable: {exc.orig}")
    finally:
        db.dispose()
    assert user == "postgres"
    assert driver_password == "s3cret:p@ss/w%rd"


def test_missing_password_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_file"
    with pytest.raises(ConfigurationError) as caught:
        Database(POSTGRES_URL, missing)
    message = str(caught.value)
    assert str(missing) in message
    assert "not found" in message
    assert "QT_SERVICE__DATABASE_PASSWORD_FILE" in message


@pytest.mark.parametrize("content", ["", "\n", "\n\n"])
def test_empty_password_file_names_path(tmp_path: Path, content: str) -> None:
    empty = tmp_path / "empty_password"
    empty.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        Database(POSTGRES_URL, empty)
    message = str(caught.value)
    assert str(empty) in message
    assert "is empty" in message
    assert "QT_SERVICE__DATABASE_PASSWORD_FILE" in message


def test_password_file_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        read_password_file(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "cannot be read" in message


def test_undecodable_password_file_hides_bytes(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_bytes(b"\xfepw\n")
    with pytest.raises(ConfigurationError) as caught:
        read_password_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert "UTF-8" in message
    assert "0xfe" not in message


def test_url_with_password_and_file_rejected(password_file: Path) -> None:
    url = "postgresql+psycopg://quantum_trader:inline-pw@postgres:5432/quantum_trader"
    with pytest.raises(ConfigurationError) as caught:
        Database(url, password_file)
    message = str(caught.value)
    assert "inline-pw" not in message
    assert "quantum_trader:***@postgres" in message
    assert str(password_file) in message


def test_failed_connection_hides_password(
    password_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_loopback_port()
    url = f"postgresql+psycopg://quantum_trader@127.0.0.1:{port}/quantum_trader?connect_timeout=2"
    caplog.set_level(logging.DEBUG)
    db = Database(url, password_file)
    with pytest.raises(OperationalError) as caught:
        db.engine.connect()
    db.dispose()
    error_text = "".join(traceback.format_exception(caught.value))
    assert f"port {port} failed" in error_text
    assert PASSWORD not in error_text
    assert PASSWORD not in repr(caught.value.orig)
    assert PASSWORD not in repr(db.engine)
    assert f"quantum_trader:***@127.0.0.1:{port}" in caplog.text
    assert PASSWORD not in caplog.text


def test_journal_start_failure_hides_password(
    password_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_loopback_port()
    url = f"postgresql+psycopg://quantum_trader@127.0.0.1:{port}/quantum_trader?connect_timeout=2"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(OperationalError) as caught:
        Journal(url, password_file)
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))
    assert PASSWORD not in caplog.text


def test_settings_read_password_file_from_env(
    password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QT_SERVICE__DATABASE_URL", POSTGRES_URL)
    monkeypatch.setenv("QT_SERVICE__DATABASE_PASSWORD_FILE", str(password_file))
    service = load_settings(None).service
    assert service.database_password_file == password_file
    assert service.database_url == POSTGRES_URL


def test_settings_password_file_needs_url(
    password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QT_SERVICE__DATABASE_URL", raising=False)
    monkeypatch.setenv("QT_SERVICE__DATABASE_PASSWORD_FILE", str(password_file))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(None)
    message = str(caught.value)
    assert "service.database_password_file" in message
    assert "QT_SERVICE__DATABASE_URL" in message


def test_invalid_url_error_masks_the_password() -> None:
    # "postgresql:user:..." lacks "://", so SQLAlchemy cannot parse it.
    with pytest.raises(ConfigurationError) as caught:
        Database("postgresql:quantum:hunter2-secret@127.0.0.1/test")

    assert "hunter2-secret" not in str(caught.value)
    assert "***@127.0.0.1/test" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
