"""Mean-reversion strategy: hand-derived bands, RSI, entries and exits, and the look-ahead rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantum_trader.errors import ConfigurationError, DataError
from quantum_trader.strategies.mean_reversion import MeanReversionStrategy, _exit_for_latest_entry

# Periods chosen so every value below can be derived by hand: RSI over 2 changes (Wilder,
# alpha 1/2), Bollinger bands over 5 closes at 1 population standard deviation.
CLOSES = [10.0, 10.0, 10.0, 10.0, 10.0, 7.0, 8.0, 8.5, 8.4, 8.0]
MIRRORED = [20.0 - close for close in CLOSES]


def frame(closes: list[float] | np.ndarray) -> dict[str, pd.DataFrame]:
    return {"BTC/USDT": pd.DataFrame({"close": closes})}


def small(allow_short: bool = False) -> MeanReversionStrategy:
    return MeanReversionStrategy(rsi_period=2, bb_period=5, bb_k=1.0, allow_short=allow_short)


def test_long_entry_and_exits_on_hand_series() -> None:
    """Changes from row 1: 0, 0, 0, 0, -3, +1, +0.5, -0.1, -0.4.

    RSI seed at row 2 = mean of the changes of rows 1-2: gain 0, loss 0, so RSI 50 (flat);
    rows 3-4 stay flat, RSI 50.
    Row 5: gain 0, loss 0.5 x 3 = 1.5, RSI 0. Window 10, 10, 10, 10, 7: middle 9.4, squared
    deviations 4 x 0.36 + 5.76 = 7.2, std sqrt(7.2 / 5) = 1.2, lower 8.2.
    Close 7 < 8.2 and RSI 0 < 30: long entry.
    Row 6: gain 0.5, loss 0.75, RSI 40. Middle 9, std sqrt(8 / 5) = 1.2649, lower 7.7351:
    close 8 is above the lower band (no entry), below the middle and RSI 40 <= 50 (no exit).
    Row 7: gain 0.5, loss 0.375, RSI 50 / 0.875 = 57.14 > 50. Middle 43.5 / 5 = 8.7, close 8.5
    is below it: exit by RSI alone.
    Row 8: gain 0.25, loss 0.2375, RSI 51.28; middle 41.9 / 5 = 8.38 <= close 8.4: exit.
    Row 9: gain 0.125, loss 0.31875, RSI 28.17; middle 39.9 / 5 = 7.98 <= close 8.0: exit by
    the middle band alone. Lower band 7.98 - sqrt(1.408 / 5) = 7.4493, so no entry.
    Row 4: middle 10 (no deviation), close 10 >= 10: the long exit condition is true before any
    entry. Long only, that is harmless because the engine ignores an exit while flat.
    """
    signals = small().generate(frame(CLOSES))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert signals.exit.tolist() == [False] * 4 + [True, False, False, True, True, True]


def test_short_entry_mirrors_long_entry() -> None:
    # Closes 20 - c swap every gain and loss, so RSI becomes 100 - RSI and the upper band is
    # 20 - the lower band: row 5 has close 13 > upper 11.8 and RSI 100 > 70. The short exit
    # condition (close <= middle or RSI < 50) is true on rows 4, 7, 8 and 9, but row 4 comes
    # before the first entry and is not flagged.
    signals = small(allow_short=True).generate(frame(MIRRORED))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, 0, 0, -1, 0, 0, 0, 0]
    assert signals.exit.tolist() == [False] * 7 + [True, True, True]


def test_short_side_off_ignores_overbought_stretch() -> None:
    signals = small(allow_short=False).generate(frame(MIRRORED))["BTC/USDT"]
    assert signals.entry.tolist() == [0] * 10


def test_with_shorts_no_exit_before_first_entry() -> None:
    # Same series as the long test: the row-4 exit condition precedes the row-5 entry.
    signals = small(allow_short=True).generate(frame(CLOSES))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert signals.exit.tolist() == [False] * 7 + [True, True, True]


def test_exit_follows_side_of_latest_entry() -> None:
    # A long entry at row 1 and a short entry at row 4: rows 1-3 use the long exit rule, rows
    # 4-6 the short one, row 0 neither.
    entry = np.array([0, 1, 0, 0, -1, 0, 0], dtype=np.int8)
    long_exit = np.array([True, False, True, False, True, True, False])
    short_exit = np.array([True, True, False, True, False, False, True])
    exit_ = _exit_for_latest_entry(entry, long_exit, short_exit)
    assert exit_.tolist() == [False, False, True, False, False, False, True]
    assert exit_.dtype == np.bool_


def test_stop_and_confidence_arrays() -> None:
    signals = small().generate(frame(CLOSES))["BTC/USDT"]
    assert signals.stop_pct is not None
    assert signals.stop_pct.tolist() == [0.03] * len(CLOSES)
    assert signals.confidence.tolist() == [1.0] * len(CLOSES)
    assert signals.entry.dtype == np.int8
    assert signals.exit.dtype == np.bool_


def test_no_stop_pct_leaves_sizing_default() -> None:
    strategy = MeanReversionStrategy(stop_pct=None)
    assert strategy.generate(frame(CLOSES))["BTC/USDT"].stop_pct is None


def test_name_is_mean_reversion() -> None:
    assert MeanReversionStrategy.name == "mean-reversion"


def test_series_shorter_than_warm_up() -> None:
    signals = MeanReversionStrategy().generate(frame([100.0, 90.0, 80.0]))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0]
    assert signals.exit.tolist() == [False, False, False]


@pytest.mark.parametrize("allow_short", [False, True])
def test_signals_ignore_later_rows(allow_short: bool) -> None:
    rng = np.random.default_rng(5)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 800)))
    strategy = MeanReversionStrategy(allow_short=allow_short)
    full = strategy.generate(frame(closes))["BTC/USDT"]
    assert (full.entry == 1).any()
    assert full.exit.any()
    for cut in (21, 150, 401, 799):
        part = strategy.generate(frame(closes[:cut]))["BTC/USDT"]
        assert part.entry.tolist() == full.entry[:cut].tolist()
        assert part.exit.tolist() == full.exit[:cut].tolist()


def test_later_shock_keeps_earlier_signals() -> None:
    rng = np.random.default_rng(9)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, 400)))
    shocked = closes.copy()
    shocked[300:] *= 0.5
    strategy = MeanReversionStrategy(allow_short=True)
    base = strategy.generate(frame(closes))["BTC/USDT"]
    changed = strategy.generate(frame(shocked))["BTC/USDT"]
    assert changed.entry[:300].tolist() == base.entry[:300].tolist()
    assert changed.exit[:300].tolist() == base.exit[:300].tolist()


@pytest.mark.parametrize(("rsi_period", "bb_period"), [(0, 20), (14, 1)])
def test_invalid_periods_rejected(rsi_period: int, bb_period: int) -> None:
    with pytest.raises(ConfigurationError, match="bb_period >= 2"):
        MeanReversionStrategy(rsi_period=rsi_period, bb_period=bb_period)


@pytest.mark.parametrize(("oversold", "overbought"), [(0, 70), (50, 70), (30, 50), (30, 100)])
def test_invalid_rsi_levels_rejected(oversold: float, overbought: float) -> None:
    with pytest.raises(ConfigurationError, match="0 < oversold < 50 < overbought < 100"):
        MeanReversionStrategy(oversold=oversold, overbought=overbought)


@pytest.mark.parametrize("bb_k", [0.0, -1.0, float("nan")])
def test_invalid_band_width_rejected(bb_k: float) -> None:
    with pytest.raises(ConfigurationError, match="bb_k"):
        MeanReversionStrategy(bb_k=bb_k)


@pytest.mark.parametrize("stop_pct", [0.0, 1.0, -0.1])
def test_invalid_stop_pct_rejected(stop_pct: float) -> None:
    with pytest.raises(ConfigurationError, match="stop_pct"):
        MeanReversionStrategy(stop_pct=stop_pct)


def test_missing_close_column() -> None:
    with pytest.raises(DataError, match="no 'close' column"):
        MeanReversionStrategy().generate({"BTC/USDT": pd.DataFrame({"open": [1.0]})})
