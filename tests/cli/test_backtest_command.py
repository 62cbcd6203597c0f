"""The backtest command's option checks run before any work and exit with code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantum_trader.cli.main import app

runner = CliRunner()


def test_unknown_subsystem_rejected() -> None:
    result = runner.invoke(app, ["backtest", "--subsystem", "universes=off"])
    assert result.exit_code == 2
    assert "unknown subsystem 'universes'" in result.output


def test_unknown_subsystem_mode_rejected() -> None:
    result = runner.invoke(app, ["backtest", "--subsystem", "ranker=sleep"])
    assert result.exit_code == 2
    assert "unknown mode 'sleep'" in result.output


def test_output_path_that_is_a_file_rejected(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("")
    result = runner.invoke(app, ["backtest", "--strategy", "ema-cross", "--output", str(target)])
    assert result.exit_code == 2
    assert "is a file" in result.output


def test_ema_cross_run_writes_report(tmp_path: Path) -> None:
    """A short real-data run prints the metrics and writes both output files."""
    result = runner.invoke(
        app,
        [
            "backtest", "--strategy", "ema-cross", "--symbols", "BTC/USDT",
            "--start", "2025-01-01", "--end", "2025-03-01", "--output", str(tmp_path),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "total_return" in result.output
    assert len(list(tmp_path.glob("*/report.html"))) == 1
    assert len(list(tmp_path.glob("*/result.json"))) == 1


def test_serve_journal_file_follows_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same settings give the same SQLite journal under user_data/, other settings another."""
    from quantum_trader.cli.serve_command import _with_default_journal
    from quantum_trader.config import load_settings

    monkeypatch.chdir(tmp_path)
    first = _with_default_journal(load_settings()).service.database_url
    again = _with_default_journal(load_settings()).service.database_url
    other = _with_default_journal(
        load_settings(overrides={"data": {"timeframe": "5m"}})
    ).service.database_url
    assert first is not None
    assert first.startswith("sqlite:///user_data/paper-")
    assert first == again
    assert first != other
    assert (tmp_path / "user_data").is_dir()
