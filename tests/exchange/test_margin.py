"""Liquidation price, leverage safety, funding sign and fee-aware sizing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantum_trader.core.types import PositionSide
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.margin import (
    check_leverage,
    funding_cash_flow,
    liquidation_price,
    max_affordable_value,
)

LONG = PositionSide.LONG
SHORT = PositionSide.SHORT


def test_liquidation_price_long_10x() -> None:
    # 100 * 0.9 / 0.995
    assert round(liquidation_price(100.0, 10.0, 0.005, LONG), 4) == 90.4523


def test_liquidation_price_short_10x() -> None:
    # 100 * 1.1 / 1.005
    assert round(liquidation_price(100.0, 10.0, 0.005, SHORT), 4) == 109.4527


def test_long_at_1x_cannot_be_liquidated() -> None:
    assert liquidation_price(100.0, 1.0, 0.005, LONG) == 0.0


def test_liquidation_price_rejects_leverage_below_one() -> None:
    with pytest.raises(ConfigurationError, match="leverage"):
        liquidation_price(100.0, 0.5, 0.005, LONG)


def test_liquidation_price_rejects_zero_entry() -> None:
    with pytest.raises(ConfigurationError, match="entry price"):
        liquidation_price(0.0, 2.0, 0.005, LONG)


def test_unsafe_leverage_rejected_for_long() -> None:
    # 100 * 0.8 / 0.75 = 106.67 lies above the entry.
    reason = check_leverage(100.0, 5.0, 0.25, LONG)
    assert reason is not None
    assert "106.667" in reason
    assert "1/m = 4" in reason


def test_unsafe_leverage_rejected_for_short() -> None:
    # 100 * 1.2 / 1.25 = 96 lies below the entry.
    reason = check_leverage(100.0, 5.0, 0.25, SHORT)
    assert reason is not None
    assert "96" in reason


def test_leverage_exactly_one_over_m_is_unsafe() -> None:
    # At L = 1/m the long liquidation price equals the entry.
    assert check_leverage(100.0, 4.0, 0.25, LONG) is not None


def test_safe_leverage_accepted() -> None:
    assert check_leverage(100.0, 10.0, 0.005, LONG) is None
    assert check_leverage(100.0, 10.0, 0.005, SHORT) is None


def test_funding_positive_rate_long_pays() -> None:
    # 2 BTC at mark 30000, rate +0.01%: 2 * 30000 * 0.0001 = 6.
    assert funding_cash_flow(LONG, 2.0, 30_000.0, 0.0001) == pytest.approx(-6.0)
    assert funding_cash_flow(SHORT, 2.0, 30_000.0, 0.0001) == pytest.approx(6.0)


def test_funding_negative_rate_short_pays() -> None:
    assert funding_cash_flow(LONG, 2.0, 30_000.0, -0.0002) == pytest.approx(12.0)
    assert funding_cash_flow(SHORT, 2.0, 30_000.0, -0.0002) == pytest.approx(-12.0)


@given(
    quantity=st.floats(min_value=0.0, max_value=1e6),
    mark=st.floats(min_value=1e-6, max_value=1e6),
    rate=st.floats(min_value=-0.05, max_value=0.05),
)
def test_funding_long_and_short_sum_to_zero(quantity: float, mark: float, rate: float) -> None:
    total = funding_cash_flow(LONG, quantity, mark, rate) + funding_cash_flow(
        SHORT, quantity, mark, rate
    )
    assert total == 0.0


def test_max_affordable_value_leaves_room_for_fee() -> None:
    value = max_affordable_value(100.0, 0.00075)
    fee = value * 0.00075
    assert round(value, 6) == 99.925056
    assert round(fee, 6) == 0.074944
    assert round(value + fee, 6) == 100.0


def test_max_affordable_value_zero_cash() -> None:
    assert max_affordable_value(0.0, 0.001) == 0.0


def test_max_affordable_value_rejects_negative_cash() -> None:
    with pytest.raises(ConfigurationError, match="cash"):
        max_affordable_value(-1.0, 0.001)
