"""A Binance look-alike on 127.0.0.1 that serves the shipped candles up to a movable clock.

It serves the three ``exchangeInfo`` requests ccxt makes to load markets and the spot and
USDT-M ``klines`` requests, in Binance's formats. Candles come from ``data/binance``. The
candle containing the clock is returned too, as a forming candle whose close differs from the
file's, exactly as the real exchange returns the current candle. Faults are queued per request:
an HTTP status with Binance's error body, or rows with changed values.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from quantum_trader.data.catalog import DataCatalog
from quantum_trader.data.timeframes import timeframe_to_ns

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"
MS = 1_000_000  # ns per ms
FORMING_CLOSE_SHIFT = 0.5  # the forming candle's close = the file's open + this


@dataclass
class Fault:
    """What the next matching klines request gets instead of the candles."""

    status: int
    body: dict[str, Any] | str


@dataclass
class FakeBinance:
    """Shared state between the test and the server thread."""

    now_ms: int
    timeframe_ms: int = 3_600_000
    candles: dict[str, pd.DataFrame] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    missing: dict[str, set[int]] = field(default_factory=dict)  # market id -> open ms withheld
    # (market id, open ms) -> the five values (open, high, low, close, volume) to send instead
    overrides: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    follow_wall_clock: bool = False

    def current_ms(self) -> int:
        """The server's time in ms: the movable clock, or the wall clock when it follows it."""
        return int(time.time() * 1000) if self.follow_wall_clock else self.now_ms

    def clock(self) -> float:
        """The fake wall clock in seconds, for the candle source."""
        with self.lock:
            return self.current_ms() / 1000

    def advance(self, milliseconds: int) -> None:
        with self.lock:
            self.now_ms += milliseconds

    def klines(self, market_id: str, start_ms: int, limit: int) -> list[list[Any]]:
        frame = self.candles[market_id]
        times = frame["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64) // MS
        first = int(np.searchsorted(times, start_ms, side="left"))
        rows = []
        withheld = self.missing.get(market_id, set())
        now_ms = self.current_ms()
        for i in range(first, min(first + limit, len(frame))):
            open_ms = int(times[i])
            if open_ms > now_ms:
                break
            if open_ms in withheld:
                continue
            row = frame.iloc[i]
            close = float(row["close"])
            if open_ms + self.timeframe_ms > now_ms:
                close = float(row["open"]) + FORMING_CLOSE_SHIFT  # still forming
            override = self.overrides.get((market_id, open_ms))
            if override is not None:
                rows.append(
                    [open_ms, *override, open_ms + self.timeframe_ms - 1, "0", 1, "0", "0", "0"]
                )
                continue
            rows.append(
                [
                    open_ms,
                    f"{row['open']:.8f}",
                    f"{max(row['high'], close):.8f}",
                    f"{min(row['low'], close):.8f}",
                    f"{close:.8f}",
                    f"{row['volume']:.8f}",
                    open_ms + self.timeframe_ms - 1,
                    "0",
                    1,
                    "0",
                    "0",
                    "0",
                ]
            )
        return rows


def _symbol_info(market_id: str, base: str, futures: bool) -> dict[str, Any]:
    filters = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01",
            "maxPrice": "1000000",
            "tickSize": "0.01",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
    ]
    info: dict[str, Any] = {
        "symbol": market_id,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": "USDT",
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "permissions": ["SPOT"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": filters,
    }
    if futures:
        info.update(
            {
                "contractType": "PERPETUAL",
                "marginAsset": "USDT",
                "pricePrecision": 2,
                "quantityPrecision": 3,
                "underlyingType": "COIN",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
            }
        )
    return info


def _handler(state: FakeBinance, markets: list[tuple[str, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: Any) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            body = text.encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            with state.lock:
                state.requests.append(self.path)
            if parts.path.endswith("/exchangeInfo"):
                futures = parts.path.startswith("/fapi")
                if parts.path.startswith("/dapi"):
                    self._send(
                        200, {"timezone": "UTC", "serverTime": state.current_ms(), "symbols": []}
                    )
                    return
                symbols = [_symbol_info(m, base, futures) for m, base in markets]
                self._send(
                    200, {"timezone": "UTC", "serverTime": state.current_ms(), "symbols": symbols}
                )
                return
            if parts.path.endswith("/klines"):
                with state.lock:
                    fault = state.faults.popleft() if state.faults else None
                if fault is not None:
                    self._send(fault.status, fault.body)
                    return
                market_id = query.get("symbol", "")
                if market_id not in state.candles:
                    self._send(400, {"code": -1121, "msg": "Invalid symbol."})
                    return
                with state.lock:
                    rows = state.klines(
                        market_id, int(query.get("startTime", 0)), int(query.get("limit", 500))
                    )
                self._send(200, rows)
                return
            self._send(404, {"code": -1000, "msg": f"no route {parts.path}"})

    return Handler


@contextmanager
def fake_binance(
    symbols: tuple[str, ...],
    now: str | None,
    timeframe: str = "1h",
    candle_type: str = "spot",
) -> Iterator[FakeBinance]:
    """Serve ``symbols``' shipped candles on a free loopback port, with the clock at ``now``.

    With ``now=None`` the server follows the wall clock, and the candles are moved forward in
    time by whole days so that the file ends about 30 days from now: new candles close as time
    passes, as on the real exchange.
    """
    catalog = DataCatalog(DATADIR)
    tf_ms = timeframe_to_ns(timeframe) // MS
    follow = now is None
    state = FakeBinance(
        now_ms=0 if follow else int(pd.Timestamp(now, tz="UTC").value // MS),
        timeframe_ms=tf_ms,
        follow_wall_clock=follow,
    )
    markets = []
    for symbol in symbols:
        base = symbol.split("/")[0]
        market_id = base + "USDT"
        frame, _ = catalog.load(symbol, timeframe, candle_type)
        if follow:
            last = frame["date"].iloc[-1]
            days = (pd.Timestamp.now(tz="UTC") - last).days + 30
            frame = frame.assign(date=frame["date"] + pd.Timedelta(days=days))
        state.candles[market_id] = frame
        markets.append((market_id, base))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, markets))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
