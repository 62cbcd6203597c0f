"""Settings: presets per timeframe, cross-field checks, error messages."""

from __future__ import annotations

import pytest

from quantum_trader.config import load_settings, model_settings_for
from quantum_trader.errors import ConfigurationError


def test_model_preset_fills_unset_windows_for_5m() -> None:
    """At 5m, 30 days of training is 30*288 = 8640 candles and a week is 7*288 = 2016."""
    model = model_settings_for(load_settings().model, "5m")
    assert model.train_window == 8640
    assert model.retrain_every == 2016
    assert model.horizon == 12


def test_model_preset_keeps_user_values() -> None:
    settings = load_settings(overrides={"model": {"horizon": 6, "train_window": 5000}})
    model = model_settings_for(settings.model, "5m")
    assert model.horizon == 6
    assert model.train_window == 5000
    assert model.retrain_every == 2016


def test_model_defaults_unchanged_at_1h() -> None:
    model = model_settings_for(load_settings().model, "1h")
    assert model.train_window == 4000
    assert model.retrain_every == 720


def test_spot_leverage_rejected_with_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"needs exchange\.market_type='futures'"):
        load_settings(overrides={"risk": {"leverage": 2.0}})


def test_futures_leverage_accepted() -> None:
    settings = load_settings(
        overrides={"risk": {"leverage": 2.0}, "exchange": {"market_type": "futures"}}
    )
    assert settings.risk.leverage == 2.0


def test_unknown_key_named_in_error() -> None:
    with pytest.raises(ConfigurationError, match="timefrme"):
        load_settings(overrides={"data": {"timefrme": "1h"}})
