"""Persistence: the SQL database of orders, fills, positions and decisions, and Redis events."""
