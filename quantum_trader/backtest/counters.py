"""Per-subsystem counters of one run: candidates seen, decisions changed, candidates vetoed."""

from __future__ import annotations

from typing import Any

from quantum_trader.config import Settings
from quantum_trader.core.types import Order, OrderStatus
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.engine.pipeline import ESS, SIZING, STRATEGY
from quantum_trader.engine.selection import SelectionLayer
from quantum_trader.subsystems.meta_strategy import ML_ENSEMBLE


def subsystem_counters(
    settings: Settings,
    log: DecisionLog,
    orders: list[Order],
    selection: SelectionLayer | None,
) -> list[dict[str, Any]]:
    """Count each subsystem's work from its own counters or, for the engine's gates, the log.

    AI Trading Engine: ``seen`` its entry candidates, ``changed`` the positions it opened.
    Trading Mathematician: ``seen`` candidates sized, ``changed`` sizes cut by a cap,
    ``vetoed`` candidates rejected. ESS: ``changed`` trips, ``vetoed`` entries blocked.
    """
    decisions = log.decisions
    ml_suffix = f"from {ML_ENSEMBLE}"
    rows: list[dict[str, Any]] = [
        {
            "subsystem": "AI Trading Engine",
            "mode": settings.model.mode.value if settings.strategy.name == "ai" else "not used",
            "seen": sum(
                1
                for d in decisions
                if d.subsystem == STRATEGY
                and d.action is Action.SIGNAL
                and d.reason.endswith(ml_suffix)
            ),
            "changed": sum(
                1
                for o in orders
                if o.tag == f"entry:{ML_ENSEMBLE}" and o.status is OrderStatus.FILLED
            ),
            "vetoed": 0,
        }
    ]
    if selection is not None:
        for name, subsystem in selection.subsystems().items():
            rows.append({"subsystem": name, "mode": subsystem.mode.value, **subsystem.counters()})
    sized = [d for d in decisions if d.subsystem == SIZING]
    rows.append(
        {
            "subsystem": SIZING,
            "mode": "enforced",
            "seen": len(sized),
            "changed": sum(
                1 for d in sized if d.action is Action.APPROVE and "resized" in d.reason
            ),
            "vetoed": sum(1 for d in sized if d.action is Action.REJECT),
        }
    )
    rows.append(
        {
            "subsystem": ESS,
            "mode": "enforced",
            "seen": sum(1 for d in decisions if d.subsystem == ESS),
            "changed": sum(1 for d in decisions if d.subsystem == ESS and d.action is Action.TRIP),
            "vetoed": sum(1 for d in decisions if d.subsystem == ESS and d.action is Action.VETO),
        }
    )
    return rows


def pipeline_counters(
    status: list[dict[str, Any]],
    orders: list[Order],
    ess_trips: int = 0,
    ess_vetoes: int = 0,
) -> list[dict[str, Any]]:
    """Counters of the fourteen registered subsystems, in pipeline order.

    The AI Trading Engine's ``changed`` counts the positions its candidates opened; every other
    row is the subsystem's own count of candidates seen, changed and vetoed.
    """
    ml_entries = sum(
        1 for o in orders if o.tag == f"entry:{ML_ENSEMBLE}" and o.status is OrderStatus.FILLED
    )
    rows = []
    for row in status:
        counters = dict(row["counters"])
        if row["short_name"] == "AI Trading Engine":
            counters["changed"] = ml_entries
        if row["short_name"] == "ESS":
            # The ESS "changes" the run by tripping; its vetoes are the entries it blocked.
            counters["changed"] = ess_trips
            counters["vetoed"] = ess_vetoes
        rows.append(
            {
                "subsystem": row["short_name"],
                "mode": row["mode"],
                "health": row["health"],
                "seen": counters.get("seen", 0),
                "changed": counters.get("changed", 0),
                "vetoed": counters.get("vetoed", 0),
            }
        )
    return rows
