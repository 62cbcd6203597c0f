"""Exception tree: each branch tells the caller what to do next.

- ``ConfigurationError``: a person must act (fix a setting or a file); stop.
- ``SkipCycle``: this candle or tick cannot be processed; skip it and go on.
- ``TemporaryError``: a transient failure (timeout, rate limit); retry with backoff.
"""

from __future__ import annotations


class QuantumTraderError(Exception):
    """Base class of every error raised on purpose by Quantum Trader."""


class ConfigurationError(QuantumTraderError):
    """A setting, argument or input file is invalid; a person must fix it."""


class DataError(ConfigurationError):
    """A market data file cannot be used as it is.

    The message names the file, the row and the fix.
    """

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.row = row


class MissingDependencyError(ConfigurationError):
    """An optional package needed by the requested feature is not installed."""

    def __init__(self, package: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install {package}"
        )
        self.package = package


class SkipCycle(QuantumTraderError):
    """The current cycle cannot be completed; the engine skips it and continues."""


class TemporaryError(QuantumTraderError):
    """A transient failure that may succeed when retried with backoff."""


class OrderRejected(QuantumTraderError):
    """The exchange or a risk layer rejected an order; terminal, never retried."""

    def __init__(self, reason: str, *, client_order_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_order_id = client_order_id
