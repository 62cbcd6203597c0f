import json
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from quantum_trader.cli.train_command import train

DATA = Path(__file__).resolve().parents[2] / "data" / "binance"

app = typer.Typer()
app.command()(train)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "train.toml"
    path.write_text("[model]\ntrain_window = 2000\nretrain_every = 1000\n", encoding="utf-8")
    return path


def test_train_saves_models_and_prints_scores(tmp_path: Path) -> None:
    output = tmp_path / "store"
    arguments = [
        "--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "1h", "--datadir", str(DATA),
        "--start", "2024-10-01", "--end", "2025-04-30", "--config", str(_config(tmp_path)),
        "--output", str(output),
    ]  # fmt: skip
    outcome = CliRunner().invoke(app, arguments)

    assert outcome.exit_code == 0, outcome.output
    folders = list(output.iterdir())
    assert len(folders) == 1
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-1h", folders[0].name)
    manifest = json.loads((folders[0] / "model.json").read_text())
    assert manifest["members"] == ["lightgbm", "xgboost", "linear"]
    # 2024-10-01 00:00 to 2025-04-30 00:00 spans 5064 hours, so there are 5065 candles.
    # Folds start 2000 candles in and every 1000 after that: at hours 2000, 3000, 4000, 5000.
    assert len(manifest["folds"]) == 4
    for name in ("lightgbm", "xgboost", "linear", "ensemble"):
        assert name in outcome.output
    assert str(folders[0]) in outcome.output.replace("\n", "")


def test_train_rejects_symbol_without_quote(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(app, ["--symbols", "BTCUSDT", "--output", str(tmp_path)])
    assert outcome.exit_code == 2
    assert "'BTCUSDT'" in outcome.output
    assert not any(tmp_path.iterdir())


def test_train_reports_too_short_history(tmp_path: Path) -> None:
    arguments = [
        "--symbols", "BTC/USDT", "--timeframe", "1h", "--datadir", str(DATA),
        "--start", "2024-10-01", "--end", "2024-10-20", "--output", str(tmp_path / "store"),
    ]  # fmt: skip
    outcome = CliRunner().invoke(app, arguments)
    assert outcome.exit_code == 2
    assert "train_window=4000" in outcome.output
    assert not (tmp_path / "store").exists()
