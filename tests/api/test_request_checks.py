"""Request checks of the HTTP API: subsystem names, list filters and limits, selection times,
and the checks, key and concurrency cap of backtest runs."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quantum_trader.api.app import create_app
from quantum_trader.api.routes import backtests
from quantum_trader.api.routes.subsystems import NAME_ALIASES
from quantum_trader.backtest.runner import Progress
from quantum_trader.cli.main import SUBSYSTEM_SECTIONS
from quantum_trader.config import Settings, model_settings_for
from quantum_trader.errors import ConfigurationError

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"
API_KEY = "test-key-request-checks"
HEADERS = {"X-API-Key": API_KEY}
# The five spot symbols that data/binance ships with 1h and 5m candles.
SHIPPED_SYMBOLS = "BNB/USDT, BTC/USDT, ETH/USDT, SOL/USDT, XRP/USDT"
VALID_RUN = {"strategy": "ema-cross", "symbols": ["BTC/USDT"], "start": "2025-01-01",
             "end": "2025-03-01"}  # fmt: skip


def _settings(datadir: Path = DATADIR) -> Settings:
    # The AI Trading Engine off avoids model training, and all fourteen subsystems still run.
    return Settings(
        data={
            "datadir": datadir,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
    )


def _wait_until_finished(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while not client.get("/api/v1/ai/status").json()["finished"]:
        assert time.monotonic() < deadline, "the replay did not finish within 60 s"
        time.sleep(0.05)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QT_API_KEY", API_KEY)
    monkeypatch.delenv("QT_API_KEY_FILE", raising=False)
    monkeypatch.setenv("QT_DATA__DATADIR", str(DATADIR))
    return API_KEY


@pytest.fixture
def client(api_key: str) -> Iterator[TestClient]:
    """A service that replays slowly, for requests that need no replayed candles."""
    with TestClient(create_app(_settings(), speed=1.0)) as started:
        yield started


@pytest.fixture(scope="module")
def finished() -> Iterator[TestClient]:
    """A service whose replay of 2025-01-01 to 2025-03-01 (1h candles) has finished."""
    with TestClient(create_app(_settings(), speed=1_000_000.0)) as started:
        _wait_until_finished(started)
        yield started


# Subsystem names.

CLI_NAMES = [
    ("ai_engine", "AI Trading Engine"),
    ("model_supervisor", "Model Supervisor"),
    ("universe", "Universe OS"),
    ("ranker", "OpportunityRanker"),
    ("msc", "MSC AI"),
    ("hfos", "AI-HFOS"),
    ("policy", "Orchestrator Policy"),
    ("pba", "PBA"),
    ("pil", "PIL"),
    ("pal", "PAL"),
    ("aelm", "AELM"),
    ("self_healing", "Self-Healing"),
]


def test_aliases_cover_cli_subsystem_names() -> None:
    for name in SUBSYSTEM_SECTIONS:
        assert name in NAME_ALIASES, name


def test_mode_by_cli_name(client: TestClient) -> None:
    for name, short_name in CLI_NAMES:
        response = client.post(
            f"/api/v1/subsystems/{name}/mode", json={"mode": "observe"}, headers=HEADERS
        )

        assert response.status_code == 200, name
        assert response.json()["short_name"] == short_name, name
        assert response.json()["configured_mode"] == "observe", name


@pytest.mark.parametrize(
    ("name", "short_name"),
    [
        ("UNIVERSE", "Universe OS"),
        ("Universe%20OS", "Universe OS"),
        ("universe os", "Universe OS"),
        ("self-healing", "Self-Healing"),
        ("Self_Healing", "Self-Healing"),
        ("Model-Supervisor", "Model Supervisor"),
        ("ai-hfos", "AI-HFOS"),
        ("opportunityranker", "OpportunityRanker"),
        ("Pal", "PAL"),
    ],
)
def test_mode_name_any_case(client: TestClient, name: str, short_name: str) -> None:
    response = client.post(
        f"/api/v1/subsystems/{name}/mode", json={"mode": "advisory"}, headers=HEADERS
    )

    assert response.status_code == 200
    assert response.json()["short_name"] == short_name


def test_mode_of_always_enforced_names(client: TestClient) -> None:
    ess = client.post("/api/v1/subsystems/ess/mode", json={"mode": "off"}, headers=HEADERS)
    sizing = client.post(
        "/api/v1/subsystems/trading_mathematician/mode",
        json={"mode": "enforced"},
        headers=HEADERS,
    )

    assert ess.status_code == 409
    assert "enforced" in ess.json()["detail"]
    assert sizing.status_code == 200
    assert sizing.json()["short_name"] == "Trading Mathematician"


@pytest.mark.parametrize("mode", ["off", "observe"])
def test_sizing_cannot_be_switched_off(client: TestClient, mode: str) -> None:
    # Every order needs a size, so the Trading Mathematician refuses off and observe.
    response = client.post(
        "/api/v1/subsystems/trading_mathematician/mode", json={"mode": mode}, headers=HEADERS
    )
    status = client.get("/api/v1/ai/status").json()
    sizing = next(
        row for row in status["subsystems"] if row["short_name"] == "Trading Mathematician"
    )

    assert response.status_code == 409
    assert "every order needs a size" in response.json()["detail"]
    assert sizing["mode"] == "enforced"


def test_unknown_subsystem_404_lists_names(client: TestClient) -> None:
    response = client.post(
        "/api/v1/subsystems/universe_os_v2/mode", json={"mode": "off"}, headers=HEADERS
    )

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'universe_os_v2'" in detail
    assert "universe, ranker" in detail
    assert "self_healing" in detail
    assert "Universe OS" in detail
    assert "Self-Healing" in detail


# Decision filters.


@pytest.mark.parametrize("symbol", ["DOGE/USDT", "btcusdt", "BTC/USDT:USDT"])
def test_decisions_untraded_symbol_422(finished: TestClient, symbol: str) -> None:
    response = finished.get("/api/v1/decisions", params={"symbol": symbol})

    assert response.status_code == 422
    message = response.json()["message"]
    assert "query.symbol" in message
    assert repr(symbol) in message
    assert "BTC/USDT, ETH/USDT" in message


def test_decisions_traded_and_portfolio_symbols(finished: TestClient) -> None:
    btc = finished.get("/api/v1/decisions", params={"symbol": "BTC/USDT", "limit": 50})
    portfolio = finished.get("/api/v1/decisions", params={"symbol": "*", "limit": 50})

    assert btc.status_code == 200
    assert btc.json()
    assert {row["symbol"] for row in btc.json()} == {"BTC/USDT"}
    assert portfolio.status_code == 200
    assert portfolio.json()
    assert {row["symbol"] for row in portfolio.json()} == {"*"}


def test_decisions_since_after_until_422(finished: TestClient) -> None:
    response = finished.get(
        "/api/v1/decisions", params={"since": "2025-02-01T00:00:00Z", "until": "2025-01-31"}
    )

    assert response.status_code == 422
    assert "query.until" in response.json()["message"]
    assert "earlier than since" in response.json()["message"]


def test_decisions_time_window_inclusive(finished: TestClient) -> None:
    everything = finished.get("/api/v1/decisions", params={"limit": 1000}).json()
    window = finished.get(
        "/api/v1/decisions",
        params={
            "since": "2025-02-01T00:00:00Z",
            "until": "2025-02-15T01:00:00+01:00",
            "limit": 1000,
        },
    )

    # ISO 8601 strings of one zone and precision sort in time order.
    expected = [
        row
        for row in everything
        if "2025-02-01T00:00:00+00:00" <= row["time"] <= "2025-02-15T00:00:00+00:00"
    ]
    assert len(everything) < 1000, "the limit should not cut the full list"
    assert expected, "the replay should log decisions in the first half of February"
    assert window.status_code == 200
    assert window.json() == expected


def test_decisions_since_equal_until_200(finished: TestClient) -> None:
    response = finished.get(
        "/api/v1/decisions", params={"since": "2025-02-01T10:00:00", "until": "2025-02-01T10:00"}
    )

    assert response.status_code == 200


# List limits.


@pytest.mark.parametrize("path", ["trades", "orders", "equity"])
@pytest.mark.parametrize("limit", ["0", "10001", "-1", "ten"])
def test_list_limit_out_of_range_422(finished: TestClient, path: str, limit: str) -> None:
    response = finished.get(f"/api/v1/{path}", params={"limit": limit})

    assert response.status_code == 422
    assert "query.limit" in response.json()["message"]


def test_equity_limit_returns_newest_oldest_first(finished: TestClient) -> None:
    everything = finished.get("/api/v1/equity").json()
    newest_two = finished.get("/api/v1/equity", params={"limit": 2}).json()
    all_of_them = finished.get("/api/v1/equity", params={"limit": 10_000}).json()

    # 59 days of hourly candles from 2025-01-01 00:00 to 2025-03-01 00:00, both included.
    assert len(everything) == 59 * 24 + 1
    assert [point["time"] for point in newest_two] == [
        "2025-02-28T23:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
    ]
    assert all_of_them == everything


@pytest.mark.parametrize("path", ["trades", "orders"])
def test_trade_and_order_limit(finished: TestClient, path: str) -> None:
    everything = finished.get(f"/api/v1/{path}").json()
    newest_three = finished.get(f"/api/v1/{path}", params={"limit": 3}).json()
    just_one = finished.get(f"/api/v1/{path}", params={"limit": 1}).json()

    assert len(everything) > 3, "the replay should close a few trades"
    assert newest_three == everything[-3:]
    assert just_one == everything[-1:]


# Selection times.


@pytest.mark.parametrize("path", ["universe", "ranking"])
def test_selection_time_is_iso_utc(finished: TestClient, path: str) -> None:
    body = finished.get(f"/api/v1/{path}").json()

    assert isinstance(body["time"], str)
    assert body["time"].endswith("+00:00")
    moment = datetime.fromisoformat(body["time"])
    assert datetime.fromisoformat("2025-01-01T00:00:00+00:00") <= moment
    assert moment <= datetime.fromisoformat("2025-03-01T00:00:00+00:00")


# Backtest runs: key and request checks.


def test_backtest_without_key_401(client: TestClient) -> None:
    response = client.post("/api/v1/backtests", json=VALID_RUN)

    assert response.status_code == 401
    assert client.get("/api/v1/backtests").json() == []


def test_backtest_with_wrong_key_403(client: TestClient) -> None:
    response = client.post("/api/v1/backtests", json=VALID_RUN, headers={"X-API-Key": "wrong"})

    assert response.status_code == 403


def test_backtest_without_configured_key_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QT_API_KEY")

    response = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)

    assert response.status_code == 503


def test_backtest_unknown_symbol_422_lists_available(client: TestClient) -> None:
    body = {**VALID_RUN, "symbols": ["BTC/USDT", "DOGE/USDT", "btc/usdt"]}

    response = client.post("/api/v1/backtests", json=body, headers=HEADERS)

    assert response.status_code == 422
    message = response.json()["message"]
    assert "body.symbols" in message
    assert "DOGE/USDT, btc/usdt" in message
    assert f"available 1h symbols: {SHIPPED_SYMBOLS}" in message
    assert client.get("/api/v1/backtests").json() == []


def test_backtest_symbol_checked_per_timeframe(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder with BTC/USDT in 1h and ETH/USDT in 5m only.
    shutil.copy(DATADIR / "BTC_USDT-1h.feather", tmp_path)
    shutil.copy(DATADIR / "ETH_USDT-5m.feather", tmp_path)
    # Backtest runs start from the service's settings, so its data folder applies.
    client.app.state.settings = _settings(tmp_path)  # type: ignore[attr-defined]
    body = {**VALID_RUN, "symbols": ["ETH/USDT"], "timeframe": "1h"}

    response = client.post("/api/v1/backtests", json=body, headers=HEADERS)

    assert response.status_code == 422
    message = response.json()["message"]
    assert "no 1h spot candles for ETH/USDT" in message
    assert "available 1h symbols: BTC/USDT" in message
    assert "available 1h symbols: BTC/USDT, " not in message


def test_backtest_missing_data_folder_503(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.app.state.settings = _settings(tmp_path / "absent")  # type: ignore[attr-defined]

    response = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)

    assert response.status_code == 503
    assert "absent" in response.json()["detail"]


def test_backtest_duplicate_symbols_422(client: TestClient) -> None:
    body = {**VALID_RUN, "symbols": ["ETH/USDT", "BTC/USDT", "ETH/USDT"]}

    response = client.post("/api/v1/backtests", json=body, headers=HEADERS)

    assert response.status_code == 422
    message = response.json()["message"]
    assert "body.symbols" in message
    assert "ETH/USDT listed more than once" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", "yesterday"),
        ("start", "2025-13-01"),
        ("end", "2025-02-30"),
        ("end", "01/03/2025"),
        ("start", "9999-12-31T23:00:00-05:00"),
    ],
)
def test_backtest_invalid_date_422_names_field(client: TestClient, field: str, value: str) -> None:
    response = client.post("/api/v1/backtests", json={**VALID_RUN, field: value}, headers=HEADERS)

    assert response.status_code == 422
    message = response.json()["message"]
    assert f"body.{field}" in message
    assert "is not an ISO 8601 time" in message


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2025-03-01", "2025-01-01"),
        ("2025-01-01", "2025-01-01T00:00:00Z"),
        # 2025-01-01 02:00 at UTC+03:00 is 2024-12-31 23:00 UTC, before the start.
        ("2025-01-01T00:00:00Z", "2025-01-01T02:00:00+03:00"),
    ],
)
def test_backtest_end_not_after_start_422(client: TestClient, start: str, end: str) -> None:
    body = {**VALID_RUN, "start": start, "end": end}

    response = client.post("/api/v1/backtests", json=body, headers=HEADERS)

    assert response.status_code == 422
    message = response.json()["message"]
    assert "body.end" in message
    assert "is not after start" in message


def test_backtest_dates_stored_in_utc(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Settings] = []

    def record(settings: Settings, progress: Progress | None = None) -> Any:
        calls.append(settings)
        raise ConfigurationError("stopped by the test after recording the settings")

    monkeypatch.setattr(backtests, "run_backtest", record)
    body = {**VALID_RUN, "start": "2025-01-01T02:00:00+02:00", "end": "2025-02-01"}

    started = client.post("/api/v1/backtests", json=body, headers=HEADERS)
    run = _wait_for_status(client, started.json()["id"], "failed")

    assert started.status_code == 202
    assert started.json()["request"]["start"] == "2025-01-01T00:00:00+00:00"
    assert started.json()["request"]["end"] == "2025-02-01T00:00:00+00:00"
    assert calls[0].data.start == "2025-01-01T00:00:00+00:00"
    assert calls[0].data.symbols == ("BTC/USDT",)
    assert run["error"] == "stopped by the test after recording the settings"


def test_backtest_starts_from_service_settings(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service runs with 5000 USDT and 2% risk per trade. The run keeps both, takes the
    # request's timeframe, and gets the 5m model preset (horizon 12), not the service's 1h one.
    calls: list[Settings] = []

    def record(settings: Settings, progress: Progress | None = None) -> Any:
        calls.append(settings)
        raise ConfigurationError("stopped by the test after recording the settings")

    monkeypatch.setattr(backtests, "run_backtest", record)
    service = Settings(
        data={"datadir": DATADIR, "timeframe": "1h"},
        backtest={"initial_capital": 5000.0},
        risk={"risk_per_trade": 0.02},
    )
    client.app.state.settings = service  # type: ignore[attr-defined]
    body = {**VALID_RUN, "timeframe": "5m"}

    started = client.post("/api/v1/backtests", json=body, headers=HEADERS)
    _wait_for_status(client, started.json()["id"], "failed")

    assert started.status_code == 202
    settings = calls[0]
    assert settings.backtest.initial_capital == 5000.0
    assert settings.risk.risk_per_trade == 0.02
    assert settings.data.timeframe == "5m"
    assert model_settings_for(settings.model, "5m").horizon == 12


# Backtest runs: concurrency cap, progress and failures.


class BlockingRunner:
    """Replaces run_backtest: reports progress, then waits until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, settings: Settings, progress: Progress | None = None) -> Any:
        assert progress is not None
        assert progress.training is not None
        assert progress.simulation is not None
        progress.training(1, 4)
        if not self.release.wait(timeout=60):
            raise ConfigurationError("the test never released the run")
        progress.training(4, 4)
        progress.simulation(30, 120)
        raise ConfigurationError("released by the test")


def _fail_at_once(settings: Settings, progress: Progress | None = None) -> Any:
    raise ConfigurationError("failed at once by the test")


def _wait_for_status(client: TestClient, run_id: str, expected: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = client.get(f"/api/v1/backtests/{run_id}").json()
        if run["status"] == expected:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is still {run['status']}"
        time.sleep(0.02)


def _wait_for_training(client: TestClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run: dict[str, Any] = client.get(f"/api/v1/backtests/{run_id}").json()
        if run["training_progress"] is not None:
            return run
        assert time.monotonic() < deadline, f"run {run_id} reported no training progress"
        time.sleep(0.02)


def test_third_concurrent_backtest_429(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = BlockingRunner()
    monkeypatch.setattr(backtests, "run_backtest", runner)
    try:
        first = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)
        second = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)
        third = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)
    finally:
        runner.release.set()
    _wait_for_status(client, first.json()["id"], "failed")
    _wait_for_status(client, second.json()["id"], "failed")
    fourth = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)

    assert first.status_code == 202
    assert second.status_code == 202
    assert third.status_code == 429
    assert "2 backtests are running" in third.json()["detail"]
    assert "retry" in third.json()["detail"]
    assert fourth.status_code == 202
    assert len(client.get("/api/v1/backtests").json()) == 3


def test_backtest_reports_training_progress(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = BlockingRunner()
    monkeypatch.setattr(backtests, "run_backtest", runner)
    try:
        started = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)
        during = _wait_for_training(client, started.json()["id"])
    finally:
        runner.release.set()
    after = _wait_for_status(client, started.json()["id"], "failed")

    assert started.json()["training_progress"] is None
    assert started.json()["status"] == "running"
    assert during["status"] == "running"
    assert during["training_progress"] == 0.25
    assert during["progress"] == 0.0
    assert after["training_progress"] == 1.0
    assert after["progress"] == 0.25
    assert after["error"] == "released by the test"


def test_backtest_unexpected_error_frees_slot(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings: Settings, progress: Progress | None = None) -> Any:
        raise RuntimeError("disk full at /secret/path")

    monkeypatch.setattr(backtests, "run_backtest", broken)
    # Three runs in turn, one more than the cap, each started after the one before it failed.
    for _ in range(3):
        started = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS)
        assert started.status_code == 202
        run = _wait_for_status(client, started.json()["id"], "failed")

        assert "RuntimeError" in run["error"]
        assert "/secret/path" not in run["error"]


def test_backtest_history_drops_oldest_finished(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtests, "MAX_RUNS", 2)
    runner = BlockingRunner()
    monkeypatch.setattr(backtests, "run_backtest", runner)
    try:
        running = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS).json()["id"]
        monkeypatch.setattr(backtests, "run_backtest", _fail_at_once)
        done = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS).json()["id"]
        _wait_for_status(client, done, "failed")
        newest = client.post("/api/v1/backtests", json=VALID_RUN, headers=HEADERS).json()["id"]
        kept_ids = [run["id"] for run in client.get("/api/v1/backtests").json()]
    finally:
        runner.release.set()

    assert kept_ids == [running, newest]
