import pytest
from pydantic import ValidationError

from quantum_trader.config import ModelSettings


def test_default_ensemble_has_three_members() -> None:
    settings = ModelSettings()
    assert settings.models == ("lightgbm", "xgboost", "linear")
    assert settings.higher_timeframe == "1h"


def test_member_named_twice_rejected() -> None:
    with pytest.raises(ValidationError, match="names a member twice"):
        ModelSettings(models=("linear", "linear"))


def test_empty_member_list_rejected() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        ModelSettings(models=())


def test_unknown_higher_timeframe_rejected() -> None:
    with pytest.raises(ValidationError, match="'90m'"):
        ModelSettings(higher_timeframe="90m")


def test_agreement_floor_bounded() -> None:
    with pytest.raises(ValidationError, match="agreement_floor"):
        ModelSettings(agreement_floor=1.2)
