"""The universe, the latest ranking and the trading policy in force."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import iso_from_ns
from quantum_trader.paper.redis_feed import plain

router = APIRouter(tags=["selection"])


@router.get("/universe")
async def universe(trader: Trader) -> dict[str, Any]:
    """Return each market's tier and reason from the last Universe OS selection.

    ``time`` is the open time of the candle the selection ran at, ISO 8601 UTC, or None before
    the first selection.
    """
    selection = _selection(trader)
    last = selection.universe.selection
    if last is None:
        return {"time": None, "tiers": {}, "reasons": {}, "tradable": []}
    return {
        "time": iso_from_ns(last.time_ns),
        "tiers": {symbol: str(tier) for symbol, tier in last.tiers.items()},
        "reasons": dict(last.reasons),
        "tradable": sorted(last.tradable),
    }


@router.get("/ranking")
async def ranking(trader: Trader) -> dict[str, Any]:
    """Return the OpportunityRanker's last scores with their factors, best first.

    ``time`` is the open time of the candle the ranking ran at, ISO 8601 UTC, or None before
    the first ranking.
    """
    last = _selection(trader).ranker.ranking
    if last is None:
        return {"time": None, "order": [], "top": [], "scores": {}, "factors": {}}
    return {
        "time": iso_from_ns(last.time_ns),
        "order": list(last.order),
        "top": list(last.top),
        "scores": dict(last.scores),
        "factors": {symbol: dict(values) for symbol, values in last.factors.items()},
    }


@router.get("/policy")
async def policy(trader: Trader) -> dict[str, Any]:
    """Return the Orchestrator Policy in force and AI-HFOS's directives."""
    stack = trader.session.stack
    if stack is None:
        raise HTTPException(status_code=404, detail="this session runs without subsystems")
    current = stack.oversight.policy.policy
    directives = stack.oversight.hfos.directives
    return {
        "policy": None if current is None else plain(current),
        "directives": None if directives is None else plain(directives),
    }


def _selection(trader: Trader) -> Any:
    stack = trader.session.stack
    if stack is None or stack.selection is None:
        raise HTTPException(
            status_code=404,
            detail="the selection subsystems are not running; start the AI pipeline",
        )
    return stack.selection
