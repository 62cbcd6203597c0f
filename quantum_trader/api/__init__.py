"""The HTTP API of the paper-trading service."""
