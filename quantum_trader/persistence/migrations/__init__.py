"""Alembic migration environment of the trading database."""
