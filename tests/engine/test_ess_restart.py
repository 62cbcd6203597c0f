"""An ESS trip in a backtest is stored and stays in force when the engine starts again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantum_trader.backtest.runner import simulate
from quantum_trader.config import load_settings
from quantum_trader.strategies.base import SignalFrame
from quantum_trader.subsystems.emergency_stop import EmergencyStop, EssStateStore


def _settings(state_file: Path) -> Any:
    return load_settings(
        overrides={
            "exchange": {
                "maker_fee": 0.0,
                "taker_fee": 0.0,
                "slippage": {"fixed_bps": 0.0, "range_share": 0.0, "volume_impact": 0.0},
            },
            "risk": {"sizing": "stake", "stake_amount": 8000.0, "max_position_share": 1.0},
            "data": {"timeframe": "1h", "symbols": ("BTC/USDT",)},
            "emergency_stop": {"state_file": state_file},
        }
    )


def _candles(start: str, rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "date", pd.date_range(start, periods=len(rows), freq="1h", tz="UTC"))
    frame["volume"] = 100.0
    frame["synthetic"] = False
    return frame


def _long_at(rows: int, entry_rows: list[int]) -> SignalFrame:
    entry = np.zeros(rows, dtype=np.int8)
    entry[entry_rows] = 1
    stops = np.full(rows, np.nan)
    stops[entry_rows] = 0.5
    return SignalFrame(entry, np.zeros(rows, dtype=np.bool_), np.ones(rows), stop_pct=stops)


def test_stored_trip_blocks_entries_after_restart(tmp_path: Path) -> None:
    """80 units bought at 100 and marked at 60 lose 32% in a day: the ESS trips and stores it.

    A second run from the same state file starts halted, so its first entry is vetoed; after an
    authorised reset a third run trades again.
    """
    state_file = tmp_path / "ess.json"
    settings = _settings(state_file)
    falling = _candles("2024-01-01", [(100, 100, 100, 100)] * 2 + [(100, 100, 60, 60)] * 2)
    first = simulate(settings, {"BTC/USDT": falling}, {"BTC/USDT": _long_at(4, [0])})
    assert first.emergency_stop is not None
    assert first.emergency_stop["state"] == "halted"
    assert state_file.exists()

    flat = _candles("2024-02-01", [(50, 50, 50, 50)] * 4)
    second = simulate(settings, {"BTC/USDT": flat}, {"BTC/USDT": _long_at(4, [0])})
    assert second.trades == []
    vetoes = [d for d in second.decisions if d.subsystem == "ESS" and d.action.value == "veto"]
    assert len(vetoes) == 1
    assert vetoes[0].time_ns == pd.Timestamp("2024-02-01 00:00", tz="UTC").value

    ess = EmergencyStop(settings.emergency_stop)
    ess.attach_store(EssStateStore(state_file))
    ess.reset(pd.Timestamp("2024-02-02", tz="UTC").value, authorised_by="risk officer")
    third = simulate(settings, {"BTC/USDT": flat}, {"BTC/USDT": _long_at(4, [0])})
    assert len(third.trades) == 1


def test_ess_reset_command_lifts_stored_trip(tmp_path: Path) -> None:
    """`quantum-trader ess reset FILE --by NAME` turns a stored halt into active."""
    from typer.testing import CliRunner

    from quantum_trader.cli.main import app

    state_file = tmp_path / "ess.json"
    ess = EmergencyStop(_settings(state_file).emergency_stop)
    ess.attach_store(EssStateStore(state_file))
    ess.trip_manual(1, "operator test")
    runner = CliRunner()
    status = runner.invoke(app, ["ess", "status", str(state_file)])
    assert status.exit_code == 0
    assert "ESS state: halted" in status.output
    missing_name = runner.invoke(app, ["ess", "reset", str(state_file), "--by", " "])
    assert missing_name.exit_code == 2
    done = runner.invoke(app, ["ess", "reset", str(state_file), "--by", "risk officer"])
    assert done.exit_code == 0
    assert "halted -> active" in done.output
