"""The portfolio balancer's book of exposures, and the limit checks on one candidate.

A candidate of notional ``x`` and side ``s`` (+1 long, -1 short) fits the notional limits when,
with ``E`` the equity:

- concentration: ``symbol notional + x <= max_concentration x E``;
- gross: ``gross + x <= max_gross_exposure x E``;
- net: ``-max_net_exposure x E <= net + s x <= max_net_exposure x E``.

So ``x`` must lie in ``[floor, fit]``, where ``fit`` is the smallest upper bound and ``floor``
is 0 unless the net exposure already lies beyond its limit on the other side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from quantum_trader.core.types import PositionSide

if TYPE_CHECKING:
    from quantum_trader.subsystems.portfolio_balancer import (
        BalancerSettings,
        Candidate,
        OpenExposure,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The admitted notional (None when blocked), the reason and the numbers behind it."""

    notional: float | None
    reason: str
    numbers: dict[str, float]


@dataclass(slots=True)
class Book:
    """Open and admitted positions: counts and notionals, in total, per symbol and per cluster.

    ``net`` is the long notional minus the short notional. ``invalid`` is set when the equity
    or an open notional is unusable, and then every candidate is blocked with it.
    """

    equity: float
    cluster_of: Callable[[str], frozenset[str]]
    count: int = 0
    gross: float = 0.0
    net: float = 0.0
    symbol_count: dict[str, int] = field(default_factory=dict)
    symbol_notional: dict[str, float] = field(default_factory=dict)
    cluster_count: dict[frozenset[str], int] = field(default_factory=dict)
    invalid: str | None = None

    @classmethod
    def open(
        cls,
        positions: Sequence[OpenExposure],
        equity: float,
        cluster_of: Callable[[str], frozenset[str]],
    ) -> Book:
        """Build the book of the open ``positions``."""
        book = cls(equity, cluster_of)
        if not (math.isfinite(equity) and equity > 0):
            book.invalid = f"invalid equity {equity!r}"
        for position in positions:
            if not (math.isfinite(position.notional) and position.notional >= 0):
                book.invalid = book.invalid or (
                    f"invalid notional {position.notional!r} of the open position on "
                    f"{position.symbol}"
                )
                continue
            book.add(position.symbol, position.side, position.notional)
        return book

    def add(self, symbol: str, side: PositionSide, notional: float) -> None:
        """Add one position of ``notional`` (positive, quote currency) to the book."""
        self.count += 1
        self.gross += notional
        self.net += int(side) * notional
        self.symbol_count[symbol] = self.symbol_count.get(symbol, 0) + 1
        self.symbol_notional[symbol] = self.symbol_notional.get(symbol, 0.0) + notional
        cluster = self.cluster_of(symbol)
        self.cluster_count[cluster] = self.cluster_count.get(cluster, 0) + 1


def judge(
    book: Book, candidate: Candidate, settings: BalancerSettings, gross_limit: float
) -> Verdict:
    """Admit ``candidate`` whole, resized down, or block it, against the limits and ``book``."""
    numbers = {"notional": candidate.notional, "equity": book.equity}
    if book.invalid is not None:
        return Verdict(None, f"{book.invalid}; no entry", numbers)
    if not (math.isfinite(candidate.notional) and candidate.notional > 0):
        return Verdict(None, f"invalid notional {candidate.notional!r}; no entry", numbers)
    count_reason = _count_limit(book, candidate, settings, numbers)
    if count_reason is not None:
        return Verdict(None, count_reason, numbers)
    return _fit_notional(book, candidate, settings, gross_limit, numbers)


def _count_limit(
    book: Book, candidate: Candidate, settings: BalancerSettings, numbers: dict[str, float]
) -> str | None:
    """Name the count limit that one more position breaks, or return None."""
    symbol = candidate.symbol
    held = book.symbol_count.get(symbol, 0)
    cluster = book.cluster_of(symbol)
    in_cluster = book.cluster_count.get(cluster, 0)
    numbers.update(
        {
            "open_positions": float(book.count),
            "symbol_positions": float(held),
            "cluster_positions": float(in_cluster),
        }
    )
    if held >= settings.max_positions_per_symbol:
        return (
            f"max_positions_per_symbol {settings.max_positions_per_symbol}: {held} open on {symbol}"
        )
    if book.count >= settings.max_open_positions:
        return f"max_open_positions {settings.max_open_positions}: {book.count} open"
    if in_cluster >= settings.max_per_cluster:
        members = ", ".join(sorted(cluster))
        return (
            f"max_per_cluster {settings.max_per_cluster}: the correlated cluster {{{members}}} "
            f"holds {in_cluster} positions"
        )
    return None


def _fit_notional(
    book: Book,
    candidate: Candidate,
    settings: BalancerSettings,
    gross_limit: float,
    numbers: dict[str, float],
) -> Verdict:
    equity, notional, sign = book.equity, candidate.notional, int(candidate.side)
    held = book.symbol_notional.get(candidate.symbol, 0.0)
    limits = {
        "max_concentration": settings.max_concentration,
        "max_gross_exposure": gross_limit,
        "max_net_exposure": settings.max_net_exposure,
    }
    room = {
        "max_concentration": limits["max_concentration"] * equity - held,
        "max_gross_exposure": gross_limit * equity - book.gross,
        "max_net_exposure": limits["max_net_exposure"] * equity - sign * book.net,
    }
    name = min(room, key=room.__getitem__)
    fit = room[name]
    floor = max(0.0, -limits["max_net_exposure"] * equity - sign * book.net)
    after = {
        "max_concentration": (held + notional) / equity,
        "max_gross_exposure": (book.gross + notional) / equity,
        "max_net_exposure": abs(book.net + sign * notional) / equity,
    }
    numbers.update(
        {
            "concentration_after": after["max_concentration"],
            "gross_exposure_after": after["max_gross_exposure"],
            "net_exposure_after": after["max_net_exposure"],
            "fit": fit,
        }
    )

    if floor <= notional <= fit:
        detail = ", ".join(f"{key} {after[key]:.4g} of {limits[key]:g}" for key in limits)
        return Verdict(notional, f"notional {notional:.6g} fits ({detail})", numbers)
    if notional < floor:
        reason = (
            f"max_net_exposure {limits['max_net_exposure']:g}: the net exposure stays at "
            f"{after['max_net_exposure']:.4g} x equity after this entry"
        )
        return Verdict(None, reason, numbers)
    if fit < floor:
        reason = (
            f"{name} {limits[name]:g} and max_net_exposure {limits['max_net_exposure']:g}: no "
            f"notional fits both, because the net exposure already lies beyond its limit"
        )
        return Verdict(None, reason, numbers)
    if fit > 0 and fit >= settings.min_resize_share * notional:
        reason = (
            f"{name} {limits[name]:g}: notional {notional:.6g} would take it to "
            f"{after[name]:.4g} x equity, so it is resized to {fit:.6g}"
        )
        return Verdict(fit, reason, numbers)
    reason = (
        f"{name} {limits[name]:g}: notional {notional:.6g} would take it to {after[name]:.4g} x "
        f"equity, and the largest notional that fits, {max(fit, 0.0):.6g}, is below "
        f"min_resize_share {settings.min_resize_share:g} of it"
    )
    return Verdict(None, reason, numbers)
