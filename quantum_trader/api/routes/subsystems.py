"""Changing a subsystem's mode."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status

from quantum_trader.api.auth import ApiKey
from quantum_trader.api.deps import Trader
from quantum_trader.api.schemas import ModeRequest, ModeResponse
from quantum_trader.errors import ConfigurationError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/subsystems", tags=["subsystems"], dependencies=[ApiKey])

# The lowercase names of the README and of the CLI's --subsystem NAME=MODE option, mapped to
# the registry's short names. The CLI maps the same names to settings sections (ai_engine to
# [model], pba to [balancer]), and each section configures the subsystem named on the right.
# The ESS and the Trading Mathematician are listed so that a request for them gets the
# registry's explanation (409) in place of a 404.
NAME_ALIASES: dict[str, str] = {
    "ai_engine": "AI Trading Engine",
    "model_supervisor": "Model Supervisor",
    "universe": "Universe OS",
    "ranker": "OpportunityRanker",
    "msc": "MSC AI",
    "hfos": "AI-HFOS",
    "policy": "Orchestrator Policy",
    "pba": "PBA",
    "pil": "PIL",
    "pal": "PAL",
    "aelm": "AELM",
    "self_healing": "Self-Healing",
    "ess": "ESS",
    "emergency_stop": "ESS",
    "trading_mathematician": "Trading Mathematician",
    "sizing": "Trading Mathematician",
}


def _normalise(name: str) -> str:
    """Lowercase ``name`` and write its spaces and hyphens as underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def resolve_subsystem(name: str, registered: list[str]) -> str | None:
    """Return the registry short name that ``name`` refers to, or None for an unknown name.

    ``name`` may be a registry short name ("Universe OS") or a lowercase name of the CLI
    ("universe"), in any case and with spaces, hyphens or underscores between words.
    """
    by_name = {_normalise(short_name): short_name for short_name in registered}
    key = _normalise(name)
    if key in by_name:
        return by_name[key]
    alias = NAME_ALIASES.get(key)
    return alias if alias in registered else None


def _accepted_names(registered: list[str]) -> str:
    aliases = [alias for alias, short_name in NAME_ALIASES.items() if short_name in registered]
    return f"{', '.join(aliases)}, or a registry name: {', '.join(registered)}"


@router.post("/{name}/mode")
async def set_mode(name: str, request: ModeRequest, trader: Trader) -> ModeResponse:
    """Set the configured mode. The integration stage may cap the effective mode.

    ``name`` is a registry short name such as "Universe OS" or a CLI name such as "universe",
    in any case.
    """
    registry = trader.registry
    registered = list(registry.subsystems)
    short_name = resolve_subsystem(name, registered)
    if short_name is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no subsystem is named {name!r}; use one of: {_accepted_names(registered)}",
        )
    try:
        effective = trader.set_mode(short_name, request.mode)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return ModeResponse(
        short_name=short_name,
        configured_mode=registry.configured_mode(short_name),
        effective_mode=effective,
    )
