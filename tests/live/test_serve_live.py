"""``quantum-trader serve --live`` as a user runs it, against the Binance look-alike on
loopback that follows the wall clock (its candles moved forward in time)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live.fake_binance import fake_binance
from tests.ports import free_port

pytest.importorskip("ccxt", reason="serve --live needs ccxt (pip install ccxt)")

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serve_live_answers_with_fourteen_healthy_subsystems(tmp_path: Path) -> None:
    with fake_binance(("BTC/USDT", "ETH/USDT"), None) as fake:
        config = tmp_path / "live.toml"
        config.write_text(
            '[data]\ntimeframe = "1h"\nsymbols = ["BTC/USDT", "ETH/USDT"]\n\n'
            '[model]\nmode = "off"\n\n'
            f'[live]\napi_url = "{fake.url}"\nhistory_candles = 500\npoll_seconds = 1\n'
        )
        port = free_port()
        command = [
            sys.executable, "-c", "from quantum_trader.cli.main import app; app()",
            "--verbose", "serve", "--live", "--port", str(port),
            "--config", str(config), "--memory",
        ]  # fmt: skip
        log = tmp_path / "serve.log"
        with log.open("wb") as output:
            server = subprocess.Popen(
                command, cwd=tmp_path, env=dict(os.environ), stdout=output, stderr=output
            )
        try:
            status = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/ai/status", timeout=2)
                except httpx.TransportError:
                    time.sleep(0.3)
                    continue
                status = response.json()
                break
            assert status is not None, log.read_text()[-3000:]
            ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
            trader = httpx.get(f"http://127.0.0.1:{port}/api/v1/ai/status", timeout=5).json()
        finally:
            server.terminate()
            server.wait(timeout=15)

    assert len(status["subsystems"]) == 14
    assert {row["health"] for row in status["subsystems"]} == {"healthy"}
    assert ready.status_code == 200, ready.text
    assert trader["emergency_stop"]["state"] == "active"
    assert trader["market_data"]["source"] == "live"
    assert trader["market_data"]["exchange"] == "binance"
    assert trader["market_data"]["last_poll_error"] is None
    assert any("/api/v3/klines" in path for path in fake.requests)
    text = log.read_text()
    assert "Live paper trader started, polling every 1 s." in text
    assert text.count("started in") == 14  # one line per subsystem, none from the rebuilds
