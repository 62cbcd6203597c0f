"""The latest signal of a symbol, with each profile's verdict and each model's vote."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import ProfileSignalModel, SignalResponse, iso_from_ns

router = APIRouter(prefix="/signals", tags=["signals"])


def _key(symbol: str) -> str:
    return "".join(character for character in symbol.upper() if character.isalnum())


@router.get("/{symbol:path}")
async def latest_signal(symbol: str, trader: Trader) -> SignalResponse:
    """Return the newest signal. The symbol may be written BTC/USDT, BTC_USDT or BTCUSDT."""
    by_key = {_key(known): known for known in trader.symbols}
    known = by_key.get(_key(symbol))
    if known is None:
        allowed = ", ".join(trader.symbols)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"symbol {symbol!r} is not traded; use one of: {allowed}",
        )
    signal = trader.latest_signal(known)
    if signal is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no candle of {known} has closed yet; retry shortly"
        )
    return SignalResponse(
        symbol=signal.symbol,
        time=iso_from_ns(signal.time_ns),
        profiles={
            name: ProfileSignalModel(entry=p.entry, exit=p.exit, confidence=p.confidence)
            for name, p in signal.profiles.items()
        },
        votes=signal.votes,
    )
