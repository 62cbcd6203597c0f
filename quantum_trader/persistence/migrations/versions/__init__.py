"""Alembic revisions, applied in order by ``Database.upgrade``."""
