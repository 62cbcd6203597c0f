"""Kill the server process mid-replay (SIGKILL) and start it again on the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quantum_trader.config import Settings
from quantum_trader.paper.trader import PaperTrader
from quantum_trader.persistence.database import Database
from quantum_trader.persistence.repository import TradingRepository
from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[data]
timeframe = "1h"
symbols = ["BTC/USDT", "ETH/USDT"]
start = "2025-01-01"
end = "2025-03-01"

[model]
mode = "off"
"""


def _settings(url: str) -> Settings:
    return Settings(
        data={
            "datadir": REPO_ROOT / "data" / "binance",
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
        service={"database_url": url},
    )


def _serve(config: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-c", "from quantum_trader.cli.main import app; app()",
        "serve", "--host", "127.0.0.1", "--port", str(free_port()),
        "--speed", "100", "--config", str(config),
    ]  # fmt: skip
    env = {**os.environ, "QT_SERVICE__DATABASE_URL": url}
    with log.open("ab") as output:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=output)


def _wait_for_step(url: str, step: int, server: subprocess.Popen[bytes], log: Path) -> int:
    repository = TradingRepository(Database(url))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited early:\n{log.read_text()[-3000:]}")
        progress = repository.load_progress()
        if progress is not None and progress["step"] >= step:
            return progress["step"]
        time.sleep(0.2)
    pytest.fail(f"the replay did not reach step {step} within 120 s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_sigkill_then_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """The journal after a SIGKILL and a restart equals an uninterrupted replay to that step."""
    config = tmp_path / "service.toml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'service.db'}"
    log = tmp_path / "server.log"
    Database(url).upgrade()  # the server's own upgrade is then a no-op, so polling can start

    first = _serve(config, url, log)
    try:
        _wait_for_step(url, 300, first, log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    second = _serve(config, url, log)
    try:
        reached = _wait_for_step(url, 800, second, log)
    finally:
        second.terminate()
        second.wait(timeout=30)

    stored = TradingRepository(Database(url))
    final_step = stored.load_progress()
    assert final_step is not None
    straight = PaperTrader(_settings(f"sqlite:///{tmp_path / 'straight.db'}"))
    straight.prepare()
    straight.start()
    for _ in range(final_step["step"]):
        straight.step()
    counts = stored.count_rows()
    assert reached >= 800
    assert counts["fills"] == len(straight.session.exchange.fills)
    assert counts["trades"] == len(straight.trades())
    assert final_step["orders"] == len(straight.orders())
