"""EMA crossover strategy: hand-derived crossings and the look-ahead rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantum_trader.errors import ConfigurationError, DataError
from quantum_trader.strategies.ema_cross import EmaCrossStrategy

CLOSES = [10.0, 11.0, 12.0, 9.0, 8.0, 12.0, 14.0]


def frame(closes: list[float] | np.ndarray) -> dict[str, pd.DataFrame]:
    return {"BTC/USDT": pd.DataFrame({"close": closes})}


def test_crossings_on_hand_computed_emas() -> None:
    """EMAs of the closes 10, 11, 12, 9, 8, 12, 14, seeded with the simple mean.

    Fast, period 2, alpha 2/3: row 1 = (10 + 11) / 2 = 10.5; row 2 = 10.5 + 2/3 x 1.5 = 11.5;
    row 3 = 11.5 - 2/3 x 2.5 = 9.8333; row 4 = 9.8333 - 2/3 x 1.8333 = 8.6111;
    row 5 = 8.6111 + 2/3 x 3.3889 = 10.8704; row 6 = 10.8704 + 2/3 x 3.1296 = 12.9568.
    Slow, period 3, alpha 1/2: row 2 = (10 + 11 + 12) / 3 = 11; row 3 = 11 - 1/2 x 2 = 10;
    row 4 = 10 - 1/2 x 2 = 9; row 5 = 9 + 1/2 x 3 = 10.5; row 6 = 10.5 + 1/2 x 3.5 = 12.25.
    Row 2: fast 11.5 > slow 11, but row 1 has no slow EMA, so no cross.
    Row 3: fast 9.8333 <= slow 10 after fast > slow: cross down, exit.
    Row 4: 8.6111 <= 9, no change. Row 5: 10.8704 > 10.5 after 8.6111 <= 9: cross up, long.
    Row 6: 12.9568 > 12.25, no change.
    """
    signals = EmaCrossStrategy(fast=2, slow=3, stop_pct=0.02).generate(frame(CLOSES))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, 0, 0, 1, 0]
    assert signals.exit.tolist() == [False, False, False, True, False, False, False]


def test_allow_short_enters_short_on_cross_down() -> None:
    # Same series as above: the cross down at row 3 opens a short, the cross up at row 5 closes
    # it and opens a long.
    strategy = EmaCrossStrategy(fast=2, slow=3, allow_short=True)
    signals = strategy.generate(frame(CLOSES))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, -1, 0, 1, 0]
    assert signals.exit.tolist() == [False, False, False, True, False, True, False]


def test_stop_and_confidence_arrays() -> None:
    signals = EmaCrossStrategy(fast=2, slow=3, stop_pct=0.02).generate(frame(CLOSES))["BTC/USDT"]
    assert signals.stop_pct is not None
    assert signals.stop_pct.tolist() == [0.02] * len(CLOSES)
    assert signals.confidence.tolist() == [1.0] * len(CLOSES)
    assert signals.entry.dtype == np.int8
    assert signals.exit.dtype == np.bool_


def test_no_stop_pct_leaves_sizing_default() -> None:
    signals = EmaCrossStrategy(fast=2, slow=3, stop_pct=None).generate(frame(CLOSES))["BTC/USDT"]
    assert signals.stop_pct is None


def test_touch_counts_as_below() -> None:
    # Closes 1, 1, 1, 2, 1, 1, 1 with periods 1 and 2: the period-1 EMA is the close itself.
    # Slow: row 1 = 1, row 2 = 1, row 3 = 1 + 2/3 = 1.6667, row 4 = 1.6667 - 2/3 x 0.6667 = 1.2222,
    # row 5 = 1.0741. Fast > slow only at row 3: cross up at 3, cross down at 4; rows 1-2 are
    # equal (a touch), which is below, so no cross there.
    closes = [1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    signals = EmaCrossStrategy(fast=1, slow=2).generate(frame(closes))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert signals.exit.tolist() == [False, False, False, False, True, False, False]


def test_series_shorter_than_slow_period() -> None:
    signals = EmaCrossStrategy(fast=2, slow=3).generate(frame([1.0, 2.0]))["BTC/USDT"]
    assert signals.entry.tolist() == [0, 0]
    assert signals.exit.tolist() == [False, False]


def test_signals_ignore_later_rows() -> None:
    rng = np.random.default_rng(7)
    closes = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 600))
    strategy = EmaCrossStrategy(fast=5, slow=20, allow_short=True)
    full = strategy.generate(frame(closes))["BTC/USDT"]
    assert full.entry.any()
    for cut in (25, 100, 317, 599):
        part = strategy.generate(frame(closes[:cut]))["BTC/USDT"]
        assert part.entry.tolist() == full.entry[:cut].tolist()
        assert part.exit.tolist() == full.exit[:cut].tolist()


def test_later_shock_keeps_earlier_signals() -> None:
    rng = np.random.default_rng(11)
    closes = 100.0 + np.cumsum(rng.normal(0.0, 1.0, 300))
    shocked = closes.copy()
    shocked[200:] *= 3.0
    strategy = EmaCrossStrategy(fast=3, slow=8)
    base = strategy.generate(frame(closes))["BTC/USDT"]
    changed = strategy.generate(frame(shocked))["BTC/USDT"]
    assert changed.entry[:200].tolist() == base.entry[:200].tolist()
    assert changed.exit[:200].tolist() == base.exit[:200].tolist()


@pytest.mark.parametrize(("fast", "slow"), [(26, 12), (12, 12), (0, 5)])
def test_invalid_periods_rejected(fast: int, slow: int) -> None:
    with pytest.raises(ConfigurationError, match="fast < slow"):
        EmaCrossStrategy(fast=fast, slow=slow)


@pytest.mark.parametrize("stop_pct", [0.0, 1.0, -0.1])
def test_invalid_stop_pct_rejected(stop_pct: float) -> None:
    with pytest.raises(ConfigurationError, match="stop_pct"):
        EmaCrossStrategy(stop_pct=stop_pct)


def test_missing_close_column() -> None:
    with pytest.raises(DataError, match="no 'close' column"):
        EmaCrossStrategy().generate({"BTC/USDT": pd.DataFrame({"open": [1.0]})})
