import numpy as np
import pandas as pd
import pytest

from quantum_trader.config import ModelSettings
from quantum_trader.errors import ConfigurationError
from quantum_trader.strategies.ai import AIStrategy, signals_from_probability

P = [np.nan, 0.60, 0.56, 0.55, 0.50, 0.47, 0.44, 0.40]


def test_long_only_entries_and_exits() -> None:
    frame = signals_from_probability(P, 0.56, 0.5, allow_short=False)
    assert frame.entry.tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    assert frame.exit.tolist() == [False, False, False, False, False, True, True, True]


def test_short_entries_and_neutral_band_exit() -> None:
    frame = signals_from_probability(P, 0.56, 0.52, allow_short=True)
    assert frame.entry.tolist() == [0, 1, 1, 0, 0, 0, -1, -1]
    # neutral band 0.48 < p < 0.52
    assert frame.exit.tolist() == [False, False, False, False, True, False, False, False]


def test_short_default_band_is_empty() -> None:
    frame = signals_from_probability(P, 0.56, 0.5, allow_short=True)
    assert not frame.exit.any()


def test_confidence_is_distance_side() -> None:
    frame = signals_from_probability(P, 0.56, 0.5, allow_short=False)
    assert np.isnan(frame.confidence[0])
    assert frame.confidence[1:].tolist() == pytest.approx([0.6, 0.56, 0.55, 0.5, 0.53, 0.56, 0.6])


def test_exit_above_entry_rejected() -> None:
    with pytest.raises(ConfigurationError, match=r"exit_confidence=0\.6"):
        signals_from_probability(P, 0.55, 0.6, allow_short=False)


def _candles(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="1h", tz="UTC"),
            "open": close,
            "high": close * 1.002,
            "low": close * 0.998,
            "close": close,
            "volume": rng.uniform(10, 20, rows),
        }
    )


def test_strategy_generates_signal_per_symbol() -> None:
    settings = ModelSettings(models=("linear",), train_window=400, retrain_every=200)
    strategy = AIStrategy(settings, "1h")
    signals = strategy.generate({"BTC/USDT": _candles(700, 1), "ETH/USDT": _candles(700, 2)})
    assert strategy.name == "ai"
    assert set(signals) == {"BTC/USDT", "ETH/USDT"}
    assert len(signals["BTC/USDT"].entry) == 700
    assert (signals["BTC/USDT"].entry[:400] == 0).all()
    assert strategy.result is not None
    assert len(strategy.result.folds) == 2
