"""The HTTP API: lifespan, status, trading views, auth, validation, metrics and the stream."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quantum_trader.api.app import create_app
from quantum_trader.config import Settings
from quantum_trader.core.types import Fill, Liquidity, OrderSide
from quantum_trader.paper.trader import PaperTrader

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"
API_KEY = "test-key-7f3a9c"
MUTATING = [
    ("/api/v1/subsystems/PAL/mode", {"mode": "observe"}),
    ("/api/v1/ess/trip", {"reason": "operator test"}),
    ("/api/v1/ess/reset", {"authorised_by": "alice"}),
    (
        "/api/v1/backtests",
        {
            "strategy": "ema-cross",
            "symbols": ["BTC/USDT"],
            "start": "2025-01-01",
            "end": "2025-02-01",
        },
    ),
]


def fast_settings() -> Settings:
    # The AI Trading Engine off avoids model training, and all fourteen subsystems still run.
    return Settings(
        data={
            "datadir": DATADIR,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
    )


def client_for(speed: float = 200.0) -> TestClient:
    return TestClient(create_app(fast_settings(), speed=speed))


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QT_API_KEY", API_KEY)
    monkeypatch.delenv("QT_API_KEY_FILE", raising=False)
    return API_KEY


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_API_KEY", raising=False)
    monkeypatch.delenv("QT_API_KEY_FILE", raising=False)


def test_status_lists_fourteen_running_subsystems() -> None:
    with client_for() as client:
        body = client.get("/api/v1/ai/status").json()

    assert len(body["subsystems"]) == 14
    assert {row["health"] for row in body["subsystems"]} == {"healthy"}
    assert all(row["last_heartbeat"].endswith("+00:00") for row in body["subsystems"])
    assert body["integration_stage"] == "autonomy"
    assert body["emergency_stop"]["state"] == "active"
    assert "global_mode" in body["global_risk_mode"]


def test_replay_loop_extends_equity() -> None:
    with client_for(speed=200.0) as client:
        first = len(client.get("/api/v1/equity").json())
        time.sleep(0.1)
        second = len(client.get("/api/v1/equity").json())

    assert second > first


def test_health_and_readiness() -> None:
    with client_for() as client:
        time.sleep(0.05)
        live = client.get("/health")
        ready = client.get("/health/ready")

    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "problems": []}


def test_failed_prepare_aborts_startup() -> None:
    class BrokenTrader(PaperTrader):
        def prepare(self) -> None:
            raise RuntimeError("candle folder missing")

    app = create_app(fast_settings(), BrokenTrader)

    with pytest.raises(RuntimeError, match="candle folder missing"), TestClient(app):
        pass


def test_trading_views_answer_lists() -> None:
    with client_for() as client:
        for path in ("trades", "positions", "orders", "equity", "decisions"):
            response = client.get(f"/api/v1/{path}")
            assert response.status_code == 200, path
            assert isinstance(response.json(), list), path


def test_signal_of_traded_symbol_in_any_spelling() -> None:
    with client_for() as client:
        time.sleep(0.05)
        slash = client.get("/api/v1/signals/BTC/USDT")
        plain = client.get("/api/v1/signals/btcusdt")

    assert slash.status_code == 200
    assert slash.json()["symbol"] == "BTC/USDT"
    assert set(slash.json()["profiles"]) == {"trend_following", "mean_reversion"}
    assert plain.json()["symbol"] == "BTC/USDT"


def test_unknown_symbol_404_names_allowed() -> None:
    with client_for() as client:
        response = client.get("/api/v1/signals/DOGE/USDT")

    assert response.status_code == 404
    assert "BTC/USDT, ETH/USDT" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("since=yesterday", "since")],
)
def test_bad_decision_query_422_names_field(query: str, field: str) -> None:
    with client_for() as client:
        response = client.get(f"/api/v1/decisions?{query}")

    assert response.status_code == 422
    assert f"query.{field}" in response.json()["message"]


def test_decisions_limit_caps_count() -> None:
    with client_for(speed=2000.0) as client:
        time.sleep(0.3)
        response = client.get("/api/v1/decisions?limit=3&symbol=BTC/USDT")

    assert response.status_code == 200
    assert len(response.json()) <= 3
    assert all(row["symbol"] == "BTC/USDT" for row in response.json())


@pytest.mark.parametrize(("path", "body"), MUTATING)
def test_mutation_without_configured_key_503(
    no_api_key: None, path: str, body: dict[str, str]
) -> None:
    with client_for() as client:
        response = client.post(path, json=body, headers={"X-API-Key": "anything"})

    assert response.status_code == 503
    assert "QT_API_KEY" in response.json()["detail"]


@pytest.mark.parametrize(("path", "body"), MUTATING)
def test_mutation_without_header_401(api_key: str, path: str, body: dict[str, str]) -> None:
    with client_for() as client:
        response = client.post(path, json=body)

    assert response.status_code == 401


@pytest.mark.parametrize(("path", "body"), MUTATING)
def test_mutation_with_wrong_key_403(api_key: str, path: str, body: dict[str, str]) -> None:
    with client_for() as client:
        response = client.post(path, json=body, headers={"X-API-Key": "wrong"})

    assert response.status_code == 403


@pytest.mark.parametrize(("path", "body"), MUTATING)
def test_mutation_with_right_key_200(api_key: str, path: str, body: dict[str, str]) -> None:
    with client_for() as client:
        if path == "/api/v1/ess/reset":  # a reset needs a trip to lift
            client.post("/api/v1/ess/trip", json={"reason": "x"}, headers={"X-API-Key": api_key})
        response = client.post(path, json=body, headers={"X-API-Key": api_key})

    # A backtest run is accepted and runs in the background: 202.
    assert response.status_code == (202 if path == "/api/v1/backtests" else 200)


def test_key_read_from_key_file(
    no_api_key: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("from-file-key\n", encoding="utf-8")
    monkeypatch.setenv("QT_API_KEY_FILE", str(key_file))

    with client_for() as client:
        path, body = MUTATING[1]
        accepted = client.post(path, json=body, headers={"X-API-Key": "from-file-key"})

    assert accepted.status_code == 200


def test_trip_then_reset_through_api(api_key: str) -> None:
    headers = {"X-API-Key": api_key}
    with client_for() as client:
        tripped = client.post("/api/v1/ess/trip", json={"reason": "desk halt"}, headers=headers)
        status_after_trip = client.get("/api/v1/ai/status").json()["emergency_stop"]
        reset = client.post("/api/v1/ess/reset", json={"authorised_by": "bob"}, headers=headers)

    assert tripped.json()["state"] == "halted"
    assert status_after_trip["trip_reason"] == "manual"
    assert status_after_trip["trip_detail"] == "desk halt"
    assert reset.json()["state"] == "active"


def test_mode_change_and_its_errors(api_key: str) -> None:
    headers = {"X-API-Key": api_key}
    with client_for() as client:
        changed = client.post(
            "/api/v1/subsystems/PAL/mode", json={"mode": "observe"}, headers=headers
        )
        bad_mode = client.post(
            "/api/v1/subsystems/PAL/mode", json={"mode": "loud"}, headers=headers
        )
        unknown = client.post(
            "/api/v1/subsystems/NOPE/mode", json={"mode": "observe"}, headers=headers
        )
        ess = client.post("/api/v1/subsystems/ESS/mode", json={"mode": "off"}, headers=headers)

    assert changed.json() == {
        "short_name": "PAL",
        "configured_mode": "observe",
        "effective_mode": "observe",
    }
    assert bad_mode.status_code == 422
    assert "body.mode" in bad_mode.json()["message"]
    assert unknown.status_code == 404
    assert "PAL" in unknown.json()["detail"]
    assert ess.status_code == 409


def test_empty_trip_reason_422(api_key: str) -> None:
    with client_for() as client:
        response = client.post(
            "/api/v1/ess/trip", json={"reason": ""}, headers={"X-API-Key": api_key}
        )

    assert response.status_code == 422
    assert "body.reason" in response.json()["message"]


def test_api_key_never_logged(api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client_for() as client:
        for path, body in MUTATING:
            client.post(path, json=body, headers={"X-API-Key": api_key})
            client.post(path, json=body, headers={"X-API-Key": api_key + "x"})

    assert "Rejected a request with an invalid API key" in caplog.text
    assert api_key not in caplog.text


def test_metrics_expose_trader_state() -> None:
    with client_for() as client:
        client.get("/health")
        text = client.get("/metrics").text

    for name in (
        "qt_http_requests_total",
        "qt_http_request_duration_seconds_bucket",
        "qt_equity",
        "qt_drawdown_ratio",
        "qt_open_positions",
        "qt_loop_lag_seconds",
        'qt_subsystem_health{state="healthy",subsystem="ESS"} 1.0',
        "qt_ess_trips_total 0.0",
        "qt_ess_halted 0.0",
        "qt_step ",
    ):
        assert name in text, name


def test_metrics_show_a_trip(api_key: str) -> None:
    with client_for() as client:
        client.post(
            "/api/v1/ess/trip", json={"reason": "metrics test"}, headers={"X-API-Key": api_key}
        )
        text = client.get("/metrics").text

    assert "qt_ess_halted 1.0" in text


def test_stream_forwards_bus_events() -> None:
    fill = Fill("c-1", "BTC/USDT", OrderSide.BUY, 100.0, 0.5, 0.05, Liquidity.TAKER, 7, "t")
    app = create_app(fast_settings(), speed=0.001)
    with TestClient(app) as client:
        trader = app.state.trader
        with client.websocket_connect("/api/v1/stream") as websocket:
            assert client.portal is not None
            client.portal.call(trader.session.bus.publish, "fill", fill)
            message = websocket.receive_json()

    assert message["topic"] == "fill"
    assert message["data"]["client_order_id"] == "c-1"
    assert message["data"]["side"] == "buy"
    assert message["data"]["price"] == 100.0


def test_reset_of_an_active_ess_is_409(api_key: str) -> None:
    with client_for() as client:
        response = client.post(
            "/api/v1/ess/reset", json={"authorised_by": "alice"}, headers={"X-API-Key": api_key}
        )

    assert response.status_code == 409
    assert "not tripped" in response.json()["detail"]
