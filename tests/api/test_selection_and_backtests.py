"""Universe, ranking and policy views, and backtest runs started through the API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quantum_trader.api.app import create_app
from quantum_trader.config import Settings
from quantum_trader.subsystems.registry import SubsystemStartError
from quantum_trader.subsystems.self_healing import SelfHealing

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"


def _client() -> TestClient:
    settings = Settings(
        data={
            "datadir": DATADIR,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
    )
    return TestClient(create_app(settings, speed=500.0))


def test_universe_ranking_and_policy_views() -> None:
    with _client() as client:
        time.sleep(1.5)  # 500 candles per second: past the 500-candle history of the universe
        universe = client.get("/api/v1/universe").json()
        ranking = client.get("/api/v1/ranking").json()
        policy = client.get("/api/v1/policy").json()
    assert set(universe["tiers"]) == {"BTC/USDT", "ETH/USDT"}
    assert set(ranking) == {"time", "order", "top", "scores", "factors"}
    assert "policy" in policy
    assert "directives" in policy


def test_backtest_run_reports_progress_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ema-cross run on two months of BTC 1h candles finishes with its metrics."""
    body = {"strategy": "ema-cross", "symbols": ["BTC/USDT"], "start": "2025-01-01",
            "end": "2025-03-01"}  # fmt: skip
    monkeypatch.setenv("QT_API_KEY", "backtest-key")
    monkeypatch.delenv("QT_API_KEY_FILE", raising=False)
    headers = {"X-API-Key": "backtest-key"}
    with _client() as client:
        started = client.post("/api/v1/backtests", json=body, headers=headers)
        assert started.status_code == 202
        run_id = started.json()["id"]
        deadline = time.monotonic() + 60
        run = started.json()
        while run["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            run = client.get(f"/api/v1/backtests/{run_id}").json()
        assert run["status"] == "finished", run
        assert run["progress"] == 1.0
        assert run["metrics"]["trade_count"]["value"] == run["trades"]
        assert client.get("/api/v1/backtests/nope").status_code == 404
        invalid = client.post(
            "/api/v1/backtests", json={**body, "timeframe": "7x"}, headers=headers
        )
        assert invalid.status_code == 422
        assert "timeframe" in invalid.text


def test_subsystem_failing_to_start_stops_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subsystem that raises in start() makes the app refuse to start, naming it."""

    def broken_start(self: SelfHealing) -> None:
        raise RuntimeError("dependency check failed")

    monkeypatch.setattr(SelfHealing, "start", broken_start)
    with pytest.raises(SubsystemStartError, match="Self-Healing"), _client():
        pass
