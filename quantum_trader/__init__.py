"""Quantum Trader: an AI trading engine for crypto spot and perpetual futures."""

__version__ = "0.1.0"
