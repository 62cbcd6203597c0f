"""The journal: a restarted paper trader resumes from the database with nothing lost or doubled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from quantum_trader.config import Settings
from quantum_trader.errors import ConfigurationError
from quantum_trader.paper.journal import Journal
from quantum_trader.paper.trader import PaperTrader
from quantum_trader.persistence.database import Database
from quantum_trader.persistence.repository import TradingRepository

DATADIR = Path(__file__).resolve().parents[2] / "data" / "binance"


def _settings(url: str) -> Settings:
    return Settings(
        data={
            "datadir": DATADIR,
            "timeframe": "1h",
            "symbols": ("BTC/USDT", "ETH/USDT"),
            "start": "2025-01-01",
            "end": "2025-03-01",
        },
        model={"mode": "off"},
        service={"database_url": url},
    )


def _started(url: str) -> PaperTrader:
    trader = PaperTrader(_settings(url))
    trader.prepare()
    trader.start()
    return trader


def _steps(trader: PaperTrader, count: int) -> None:
    for _ in range(count):
        trader.step()


def test_restart_resumes_with_same_trades(tmp_path: Path) -> None:
    """Stop after 700 steps, start a new trader on the same database, and go on to 1000.

    Its trades equal those of one uninterrupted trader over 1000 steps, and the database contains
    each fill and trade once.
    """
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first = _started(url)
    _steps(first, 700)
    before = list(first.trades())
    first.stop()

    second = _started(url)
    assert second.status().step == 700
    assert second.trades() == before
    _steps(second, 300)

    straight = _started(f"sqlite:///{tmp_path / 'straight.db'}")
    _steps(straight, 1000)
    assert second.trades() == straight.trades()
    assert len(straight.trades()) > 5

    counts = TradingRepository(Database(url)).count_rows()
    assert counts["trades"] == len(second.trades())
    assert counts["fills"] == len(second.session.exchange.fills)


def test_restart_keeps_manual_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first = _started(url)
    _steps(first, 50)
    first.trip("operator test")
    _steps(first, 10)
    first.stop()

    second = _started(url)
    assert second.session.emergency_stop.state == "halted"
    second.reset("risk officer")
    third = _started(url)
    assert third.session.emergency_stop.state == "active"


def test_database_problem_names_unreachable_database(tmp_path: Path) -> None:
    """Readiness reads this: None while SQLite accepts queries, a reason once the server is gone."""
    from sqlalchemy import create_engine

    from quantum_trader.paper.journal import Journal

    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    assert journal.database_problem() is None
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1"
    journal.repository.db.engine = create_engine(unreachable)
    problem = journal.database_problem()
    assert problem is not None
    assert "unreachable" in problem


def test_restart_after_trip_and_mode_change(tmp_path: Path) -> None:
    """A trip and a mode change before a crash are applied again before the same step.

    The replay without them trades differently, so without the journaled commands the restart
    would fail its count check. It resumes with every count equal to the first trader's.
    """
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first = _started(url)
    _steps(first, 300)
    first.set_mode("Universe OS", "observe")
    _steps(first, 200)
    first.trip("operator test")
    _steps(first, 200)
    orders, trades = list(first.orders()), list(first.trades())
    decisions = len(first.session.log.decisions)
    # A crash: the first trader is dropped without stopping.

    second = _started(url)
    modes = {row.short_name: row.mode for row in second.subsystem_status()}
    untouched = _started(f"sqlite:///{tmp_path / 'untouched.db'}")
    _steps(untouched, 700)

    assert second.status().step == 700
    assert second.orders() == orders
    assert second.trades() == trades
    assert len(second.session.log.decisions) == decisions
    assert second.session.emergency_stop.trip is not None
    assert second.session.emergency_stop.trip.reason == "manual"
    assert modes["Universe OS"] == "observe"
    # The commands changed what the first trader did.
    assert untouched.orders() != orders


def test_second_process_cannot_share_journal(tmp_path: Path) -> None:
    # Another process has the journal open, so a trader here must not write to it too.
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from quantum_trader.paper.journal import Journal\n"
            f"journal = Journal({url!r})\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(
            ConfigurationError, match=rf"in use by another process \(pid {holder.pid}\)"
        ):
            Journal(url)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # The system released the lock of the killed process.
    Journal(url)


def test_restart_right_after_a_trip(tmp_path: Path) -> None:
    # The trip comes after the last journaled step, so its decision is not in the stored
    # counts yet. The restart must still resume, halted, and journal that decision once.
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    first = _started(url)
    _steps(first, 50)
    first.trip("maintenance")
    first.set_mode("Universe OS", "observe")
    # A stop (or a crash) before the next step.

    second = _started(url)
    assert second.status().step == 50
    assert second.session.emergency_stop.trip is not None
    _steps(second, 1)
    stored = TradingRepository(Database(url)).count_rows()["decisions"]
    modes = {row.short_name: row.mode for row in second.subsystem_status()}

    assert stored == len(second.session.log.decisions)
    assert modes["Universe OS"] == "observe"


def test_database_error_pauses_trading_until_it_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database rejects two writes (as when another program holds a lock): the trader
    # processes no new step meanwhile, reports why, then writes the same step once.
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    trader = _started(url)
    _steps(trader, 20)
    repository = trader._journal.repository  # type: ignore[union-attr]
    original = repository.record_step
    failures = [OperationalError("INSERT", {}, Exception("database is locked"))] * 2

    def flaky(step: Any) -> None:
        if failures:
            raise failures.pop()
        original(step)

    monkeypatch.setattr(repository, "record_step", flaky)

    processed_while_failing = [trader.step(), trader.step()]
    problem = trader.database_problem()
    step_while_failing = trader.status().step
    resumed = [trader.step(), trader.step()]
    counts = TradingRepository(Database(url)).count_rows()
    progress = TradingRepository(Database(url)).load_progress()

    # The first call processed step 20 and failed to journal it; the second only retried.
    assert processed_while_failing == [True, False]
    assert step_while_failing == 21
    assert problem is not None and "database is locked" in problem
    assert resumed == [True, True]
    assert trader.database_problem() is None
    assert progress is not None and progress["step"] == 23
    assert counts["fills"] == len(trader.session.exchange.fills)
    assert counts["decisions"] == len(trader.session.log.decisions)
