"""``quantum-trader serve`` as a process: its log, the WebSocket stream over a real socket,
and the short errors for a taken port and an invalid setting."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""
[data]
datadir = "{REPO_ROOT / "data" / "binance"}"
timeframe = "1h"
symbols = ["BTC/USDT", "ETH/USDT"]
start = "2025-01-01"
end = "2025-03-01"

[model]
mode = "off"
"""


def _serve(tmp_path: Path, port: int, *options: str) -> list[str]:
    config = tmp_path / "serve.toml"
    config.write_text(CONFIG)
    return [
        sys.executable, "-c", "from quantum_trader.cli.main import app; app()",
        "serve", "--port", str(port), "--config", str(config), "--memory", *options,
    ]  # fmt: skip


@pytest.mark.slow
def test_stream_sends_candles_over_a_real_socket(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            _serve(tmp_path, port, "--speed", "20"),
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("QT_API_KEY")},
            stdout=output,
            stderr=output,
        )
    topics: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        with connect(f"ws://127.0.0.1:{port}/api/v1/stream", open_timeout=10) as websocket:
            while "candle" not in topics:
                topics.append(json.loads(websocket.recv(timeout=20))["topic"])
    finally:
        server.terminate()
        server.wait(timeout=15)
    text = log.read_text()

    assert "candle" in topics
    # The service logs at INFO without --verbose: its address and each subsystem's start.
    assert f"Serving the API on http://127.0.0.1:{port}" in text
    assert text.count("started in") == 14
    assert "No API key is set" in text


def test_taken_port_fails_before_the_start(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _serve(tmp_path, port), cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "started in" not in result.stderr


def test_invalid_setting_is_one_message(tmp_path: Path) -> None:
    # Live futures need a constant funding rate; the error comes before any network request.
    result = subprocess.run(
        [*_serve(tmp_path, free_port(), "--live"), "--exchange", "binance"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "QT_EXCHANGE__MARKET_TYPE": "futures"},
    )

    assert result.returncode == 2
    assert "exchange.funding_rate" in result.stderr
    assert "Traceback" not in result.stderr
