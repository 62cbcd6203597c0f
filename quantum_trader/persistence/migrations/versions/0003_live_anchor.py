"""Add the live tables (where a live paper run's candles and its trading begin, and the
candles of its timeline) and the operator commands applied between steps.

Revision ID: 0003_live_anchor
Revises: 0002_replay_progress
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_live_anchor"
down_revision: str | None = "0002_replay_progress"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "live_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exchange", sa.String(length=40), nullable=False),
        sa.Column("market_type", sa.String(length=16), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("symbols", sa.Text(), nullable=False),
        sa.Column("first_open", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trade_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_anchor"),
    )
    op.create_table(
        "live_candles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("open_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Double(), nullable=False),
        sa.Column("high", sa.Double(), nullable=False),
        sa.Column("low", sa.Double(), nullable=False),
        sa.Column("close", sa.Double(), nullable=False),
        sa.Column("volume", sa.Double(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_live_candles"),
        sa.UniqueConstraint("symbol", "open_time", name="uq_live_candles_symbol"),
    )
    op.create_table(
        "operator_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_commands"),
    )


def downgrade() -> None:
    op.drop_table("operator_commands")
    op.drop_table("live_candles")
    op.drop_table("live_anchor")
