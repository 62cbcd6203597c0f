"""Create the trading tables.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _create_orders() -> None:
    op.create_table(
        "orders",
        _id(),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=True),
        sa.Column("stop_price", sa.Double(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("leverage", sa.Double(), nullable=False),
        sa.Column("stop_distance", sa.Double(), nullable=True),
        sa.Column("take_profit_distance", sa.Double(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filled_quantity", sa.Double(), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_symbol", "orders", ["symbol"])
    op.create_index("ix_orders_status", "orders", ["status"])


def _create_fills() -> None:
    op.create_table(
        "fills",
        _id(),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("fee", sa.Double(), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("time", _utc(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"])


def _create_positions() -> None:
    op.create_table(
        "positions",
        _id(),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("entry_at", _utc(), nullable=False),
        sa.Column("leverage", sa.Double(), nullable=False),
        sa.Column("margin", sa.Double(), nullable=False),
        sa.Column("liquidation_price", sa.Double(), nullable=True),
        sa.Column("fees_paid", sa.Double(), nullable=False),
        sa.Column("funding_paid", sa.Double(), nullable=False),
        sa.Column("stop_price", sa.Double(), nullable=True),
        sa.Column("take_profit_price", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_positions"),
        sa.UniqueConstraint("symbol", name="uq_positions_symbol"),
    )


def _create_trades() -> None:
    op.create_table(
        "trades",
        _id(),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("entry_time", _utc(), nullable=False),
        sa.Column("entry_price", sa.Double(), nullable=False),
        sa.Column("exit_time", _utc(), nullable=False),
        sa.Column("exit_price", sa.Double(), nullable=False),
        sa.Column("quantity", sa.Double(), nullable=False),
        sa.Column("fees", sa.Double(), nullable=False),
        sa.Column("funding", sa.Double(), nullable=False),
        sa.Column("pnl", sa.Double(), nullable=False),
        sa.Column("pnl_ratio", sa.Double(), nullable=False),
        sa.Column("leverage", sa.Double(), nullable=False),
        sa.Column("exit_reason", sa.String(32), nullable=False),
        sa.Column("entry_tag", sa.String(64), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trades"),
    )
    op.create_index("ix_trades_symbol", "trades", ["symbol"])


def _create_journal_tables() -> None:
    op.create_table(
        "equity_snapshots",
        _id(),
        sa.Column("time", _utc(), nullable=False),
        sa.Column("equity", sa.Double(), nullable=False),
        sa.Column("drawdown", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_equity_snapshots"),
    )
    op.create_index("ix_equity_snapshots_time", "equity_snapshots", ["time"])
    op.create_table(
        "decisions",
        _id(),
        sa.Column("time", _utc(), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("subsystem", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_time", "decisions", ["time"])


def _create_control_tables() -> None:
    op.create_table(
        "ess_state",
        _id(),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ess_state"),
    )
    op.create_table(
        "subsystem_modes",
        _id(),
        sa.Column("short_name", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subsystem_modes"),
        sa.UniqueConstraint("short_name", name="uq_subsystem_modes_short_name"),
    )
    op.create_table(
        "model_registry",
        _id(),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_registry"),
    )


def upgrade() -> None:
    _create_orders()
    _create_fills()
    _create_positions()
    _create_trades()
    _create_journal_tables()
    _create_control_tables()


def downgrade() -> None:
    for table in (
        "model_registry",
        "subsystem_modes",
        "ess_state",
        "decisions",
        "equity_snapshots",
        "trades",
        "positions",
        "fills",
        "orders",
    ):
        op.drop_table(table)
