"""Alembic environment: runs migrations on the connection that ``Database.upgrade`` passes in.

Without a connection in ``config.attributes``, it connects to the ``sqlalchemy.url`` option,
which is how the Alembic command line runs it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from quantum_trader.persistence.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most columns in place, so later revisions copy the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("Alembic needs the sqlalchemy.url option or a connection attribute.")
    engine = create_engine(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("Offline (SQL script) migrations are not supported; run them online.")
run_migrations_online()
