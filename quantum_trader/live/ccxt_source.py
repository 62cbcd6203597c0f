"""Closed candles from an exchange's public REST API through ccxt.

A candle is keyed by its UTC open time and is usable only once it has closed. A row whose
open time plus one timeframe is later than the wall clock is still forming, so it is dropped
whatever the exchange returns. Pages overlap at their edges on some exchanges, so rows are
de-duplicated by open time, and the copy read last is kept. Every page passes the same
validation as a candle file before the trader uses it.

Errors, by ccxt's exception tree:

- ``ccxt.OperationFailed`` (its subclass ``NetworkError`` covers timeouts, rate limits,
  maintenance and HTTP 5xx; ccxt 4.5 maps Binance's -1000 and -1001 errors to it directly):
  retried ``live.retries`` times with doubling waits, then ``LiveDataError`` naming the
  exchange, the symbol and the last error.
- ``ccxt.BadSymbol``: ``ConfigurationError`` naming the symbol and the fix.
- any other ccxt error (``ExchangeError`` and the rest of ``BaseError``): ``LiveDataError`` at
  once, since retrying the same request would not help.

A closed candle with a missing or non-finite price or volume is a ``DataError`` naming the
exchange, the symbol and the candle's time. The candle validation would drop such a row and
fill the gap, which hides a broken feed.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from quantum_trader.config import LiveSettings
from quantum_trader.core.types import NS_PER_SECOND, MarketType
from quantum_trader.data.timeframes import timeframe_to_ns
from quantum_trader.data.validation import validate_candles
from quantum_trader.errors import (
    ConfigurationError,
    DataError,
    MissingDependencyError,
    TemporaryError,
)

logger = logging.getLogger(__name__)

NS_PER_MS = 1_000_000
# ccxt's market types, by the market type of the settings.
DEFAULT_TYPES = {MarketType.SPOT: "spot", MarketType.FUTURES: "swap"}


class LiveDataError(TemporaryError):
    """The exchange did not deliver candles; the caller may try again later."""


def import_ccxt() -> Any:
    """Return the ccxt module, or raise naming the package and the extra that installs it."""
    try:
        return importlib.import_module("ccxt")
    except ImportError as exc:
        raise MissingDependencyError("ccxt", "live candles (live.enabled)") from exc


def _rebase(urls: Any, base: str) -> Any:
    """Return ``urls`` (a URL or nested dicts of URLs) with scheme and host taken from ``base``.

    The path of ``base`` is put in front of each URL's own path.
    """
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if not isinstance(urls, str) or "://" not in urls:
        return urls
    target = urlsplit(base)
    original = urlsplit(urls)
    path = target.path.rstrip("/") + original.path
    return urlunsplit((target.scheme, target.netloc, path, original.query, original.fragment))


class CcxtCandleSource:
    """Fetches closed candles of one timeframe (see the module docstring).

    ``client`` replaces the ccxt exchange object (built from ``settings.exchange`` otherwise);
    ``clock`` returns the wall time in seconds and ``sleep`` waits between retries.
    """

    def __init__(
        self,
        settings: LiveSettings,
        timeframe: str,
        market_type: MarketType,
        *,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.timeframe = timeframe
        self.timeframe_ns = timeframe_to_ns(timeframe)
        self.market_type = market_type
        self._clock = clock
        self._sleep = sleep
        self._ccxt = import_ccxt()
        self.client = client if client is not None else self._build_client()
        self._markets_loaded = False

    def _build_client(self) -> Any:
        exchange_id = self.settings.exchange
        if exchange_id not in self._ccxt.exchanges:
            raise ConfigurationError(
                f"live.exchange={exchange_id!r} is not a ccxt exchange id; use one of "
                f"ccxt.exchanges, for example 'binance', 'bybit' or 'okx'"
            )
        options = {"defaultType": DEFAULT_TYPES[self.market_type]}
        client = getattr(self._ccxt, exchange_id)({"enableRateLimit": True, "options": options})
        if self.settings.api_url is not None:
            client.urls["api"] = _rebase(client.urls["api"], self.settings.api_url)
        if not client.has.get("fetchOHLCV"):
            raise ConfigurationError(
                f"ccxt's {exchange_id} cannot fetch candles (no fetchOHLCV); choose another "
                "live.exchange"
            )
        return client

    @property
    def name(self) -> str:
        """The exchange's id, as ccxt names it."""
        return str(getattr(self.client, "id", self.settings.exchange))

    def now_ns(self) -> int:
        """Return the wall time in ns UTC."""
        return round(self._clock() * NS_PER_SECOND)

    def last_closed_open_ns(self) -> int:
        """Return the open time of the newest candle that has closed by now."""
        now = self.now_ns()
        return (now // self.timeframe_ns - 1) * self.timeframe_ns

    def history(self, symbol: str, count: int) -> pd.DataFrame:
        """Return the newest ``count`` closed candles of ``symbol``, oldest first."""
        if count < 1:
            raise ConfigurationError(f"history needs at least one candle, got count={count}")
        since = self.last_closed_open_ns() - (count - 1) * self.timeframe_ns
        return self.closed_since(symbol, since)

    def closed_since(self, symbol: str, since_ns: int) -> pd.DataFrame:
        """Return every closed candle of ``symbol`` that opened at or after ``since_ns``.

        The frame has the columns of a validated candle file (date, open, high, low, close,
        volume, synthetic). Gaps inside it are reported and filled as for a file.
        """
        self._load_markets(symbol)
        last_closed = self.last_closed_open_ns()
        rows: dict[int, list[float]] = {}
        cursor = since_ns
        while cursor <= last_closed:
            page = self._request(
                symbol,
                self.client.fetch_ohlcv,
                symbol,
                self.timeframe,
                since=cursor // NS_PER_MS,
                limit=self.settings.page_limit,
            )
            newest = None
            for row in page:
                open_ns = int(row[0]) * NS_PER_MS
                if since_ns <= open_ns <= last_closed:
                    rows[open_ns] = self._values(symbol, open_ns, row)
                newest = open_ns if newest is None else max(newest, open_ns)
            if newest is None or newest < cursor:
                break  # nothing newer on the exchange
            cursor = newest + self.timeframe_ns
        return self._frame(symbol, rows)

    def _values(self, symbol: str, open_ns: int, row: list[Any]) -> list[float]:
        """Return a closed candle's open, high, low, close and volume as floats."""
        values = [float("nan") if value is None else float(value) for value in row[1:6]]
        if len(values) != 5 or not all(math.isfinite(value) for value in values):
            raise DataError(
                f"{self.name} returned the closed {self.timeframe} candle of {symbol} at "
                f"{pd.Timestamp(open_ns, tz='UTC').isoformat()} with missing or non-finite "
                f"values {row[1:6]}; the live loop stops rather than trade on it. Check the "
                "exchange's status, then restart"
            )
        return values

    def _frame(self, symbol: str, rows: dict[int, list[float]]) -> pd.DataFrame:
        times = sorted(rows)
        raw = pd.DataFrame(
            [rows[t] for t in times], columns=["open", "high", "low", "close", "volume"]
        )
        raw.insert(0, "date", pd.to_datetime(times, unit="ns", utc=True))
        source = f"{self.name} {symbol} {self.timeframe} candles"
        frame, _report = validate_candles(raw, self.timeframe, source=source)
        return frame

    def _load_markets(self, symbol: str) -> None:
        if not self._markets_loaded:
            self._request(symbol, self.client.load_markets)
            self._markets_loaded = True
        if symbol not in self.client.markets:
            raise ConfigurationError(
                f"{self.name} has no market {symbol!r} for market type "
                f"{self.market_type.value}; check data.symbols (futures symbols end in :USDT)"
            )

    def _request(self, symbol: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``method``, retrying network errors with doubling waits (module docstring)."""
        ccxt = self._ccxt
        wait = self.settings.retry_backoff_seconds
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return method(*args, **kwargs)
            except ccxt.BadSymbol as exc:
                raise ConfigurationError(
                    f"{self.name} rejected the symbol {symbol!r}: {exc}; check data.symbols"
                ) from exc
            except ccxt.OperationFailed as exc:
                if attempt == attempts:
                    raise LiveDataError(
                        f"{self.name} failed {attempts} times to deliver {symbol} candles; "
                        f"last error: {type(exc).__name__}: {exc}"
                    ) from exc
                logger.warning(
                    "%s: %s for %s, retry %d of %d in %.1f s",
                    self.name,
                    type(exc).__name__,
                    symbol,
                    attempt,
                    attempts - 1,
                    wait,
                )
                self._sleep(wait)
                wait *= 2
            except ccxt.BaseError as exc:
                raise LiveDataError(
                    f"{self.name} rejected the candle request for {symbol}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")
