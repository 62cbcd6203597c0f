"""PBA (portfolio balancer): admits the best candidate trades that fit the portfolio limits.

Exposures are notionals (quantity x price, quote currency) over the account equity:

- gross exposure: the sum of every position's notional, at most ``max_gross_exposure``;
- net exposure: ``|long notional - short notional|``, at most ``max_net_exposure``;
- concentration: the notional on one symbol, at most ``max_concentration``;
- counts: open positions, positions per symbol, and positions per correlated cluster.

Clusters come from the correlation of the last ``correlation_window`` log returns. Two markets
whose correlation exceeds ``correlation_threshold`` are linked, and a cluster is a connected
component of those links (single linkage), so A and C share a cluster when both follow B even if
A and C correlate less. Only positive correlation links, and the side is ignored: a long and a
short in one cluster count as two positions. A pair with fewer than
``min_correlation_samples`` returns where both are finite, or with a constant series, is not
linked. A market absent from the last update is a cluster of its own.

``admit`` ranks candidates by score (highest first, ties by symbol, NaN last) and admits them
greedily. A candidate that breaks a notional limit is resized down to the largest notional that
fits when that is at least ``min_resize_share`` of its own, and blocked otherwise. A count limit
cannot be met by resizing, so it blocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quantum_trader.core.types import MarketType, PositionSide
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.subsystems.balancer_book import Book, Verdict, judge
from quantum_trader.subsystems.base import Mode, Subsystem

logger = logging.getLogger(__name__)

SPOT_GROSS_EXPOSURE = 1.0
FUTURES_GROSS_EXPOSURE = 1.5


class BalancerSettings(BaseModel):
    """PBA settings. Exposures are multiples of equity (0.25 = a quarter of the equity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Mode.ENFORCED
    cadence: int = Field(
        1, ge=1, le=100_000, description="Candles between two correlation updates."
    )
    max_open_positions: int = Field(5, ge=1, le=200)
    max_positions_per_symbol: int = Field(1, ge=1, le=10)
    max_gross_exposure: float | None = Field(
        None,
        gt=0,
        le=20,
        description="Sum of notionals over equity. None means 1.0 on spot and 1.5 on futures.",
    )
    max_net_exposure: float = Field(
        1.0, gt=0, le=20, description="|long - short notional| over equity."
    )
    max_concentration: float = Field(
        0.25, gt=0, le=20, description="Notional on one symbol over equity."
    )
    correlation_window: int = Field(200, ge=10, le=100_000, description="Log returns per market.")
    min_correlation_samples: int = Field(
        30, ge=3, le=100_000, description="Returns both markets need before they can link."
    )
    correlation_threshold: float = Field(
        0.8, gt=0, le=1, description="Correlation above which two markets share a cluster."
    )
    max_per_cluster: int = Field(2, ge=1, le=200, description="Positions per correlated cluster.")
    min_resize_share: float = Field(
        0.5, gt=0, le=1, description="Smallest share of its notional a candidate is resized to."
    )

    @model_validator(mode="after")
    def _check_samples(self) -> BalancerSettings:
        if self.min_correlation_samples > self.correlation_window:
            raise ValueError(
                f"balancer.min_correlation_samples={self.min_correlation_samples} is above "
                f"balancer.correlation_window={self.correlation_window}, so no pair could link; "
                "lower min_correlation_samples or raise correlation_window"
            )
        return self

    def gross_limit(self, market_type: MarketType) -> float:
        """Return ``max_gross_exposure``, or the default of ``market_type`` when it is None."""
        if self.max_gross_exposure is not None:
            return self.max_gross_exposure
        return FUTURES_GROSS_EXPOSURE if market_type is MarketType.FUTURES else SPOT_GROSS_EXPOSURE


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trade asking for admission. ``notional`` is positive, in the quote currency."""

    symbol: str
    side: PositionSide
    notional: float
    score: float


@dataclass(frozen=True, slots=True)
class OpenExposure:
    """An open position's notional (positive, quote currency) at the current price."""

    symbol: str
    side: PositionSide
    notional: float


@dataclass(frozen=True, slots=True)
class BalanceDecision:
    """The verdict on one batch of candidates.

    ``admitted`` lists the candidates that pass, best first, resized ones with their new
    notional. ``resized`` maps those symbols to their original notional. ``blocked`` maps a
    symbol to the reason its first blocked candidate was blocked. Unless ``binding`` is True,
    the caller must pass every candidate through unchanged.
    """

    admitted: list[Candidate]
    blocked: dict[str, str]
    binding: bool
    resized: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CorrelationState:
    """Correlations of the last update: ``matrix[i, j]`` pairs ``symbols[i]`` and ``symbols[j]``.

    NaN marks a pair without enough finite returns or with a constant series.
    """

    time_ns: int
    symbols: tuple[str, ...]
    matrix: npt.NDArray[np.float64]
    clusters: tuple[frozenset[str], ...]


class PortfolioBalancer(Subsystem):
    """Admits candidates within the portfolio limits; see the module docstring for the rules.

    Call ``update_correlations`` every ``cadence`` candles (``due(row)``) and ``admit`` once
    per batch of candidates. Counters: ``seen`` counts candidates, and while enforced
    ``changed`` counts resized ones and ``vetoed`` blocked ones.
    """

    name = "portfolio balancer"
    short_name = "PBA"

    def __init__(
        self,
        settings: BalancerSettings,
        market_type: MarketType = MarketType.SPOT,
        log: DecisionLog | None = None,
    ) -> None:
        super().__init__(settings.mode, settings.cadence, log)
        self.settings = settings
        self.gross_limit = settings.gross_limit(market_type)
        self.correlation: CorrelationState | None = None
        self._cluster_of: dict[str, frozenset[str]] = {}

    def due(self, row: int) -> bool:
        """Return whether candle ``row`` is a correlation update point (every ``cadence``)."""
        return row % self.cadence == 0

    def cluster_of(self, symbol: str) -> frozenset[str]:
        """Return the cluster of ``symbol`` under the last update, itself alone if unknown."""
        return self._cluster_of.get(symbol, frozenset((symbol,)))

    def update_correlations(
        self, time_ns: int, returns_window: Mapping[str, npt.ArrayLike]
    ) -> CorrelationState:
        """Compute the correlation matrix and the clusters from per-market log returns.

        Each array holds consecutive log returns ending at the same, latest closed candle, so
        arrays of different lengths are aligned at their ends. Only the last
        ``correlation_window`` values are read. NaN marks a missing return.
        """
        self.heartbeat()
        symbols = tuple(sorted(returns_window))
        arrays = [np.asarray(returns_window[symbol], dtype=np.float64) for symbol in symbols]
        length = min([self.settings.correlation_window, *(array.size for array in arrays)])
        columns = np.empty((length, len(symbols)), dtype=np.float64)
        for index, array in enumerate(arrays):
            columns[:, index] = array[array.size - length :]

        matrix = correlation_matrix(columns, self.settings.min_correlation_samples)
        clusters = link_clusters(symbols, matrix, self.settings.correlation_threshold)
        previous = self.correlation.clusters if self.correlation is not None else ()
        self.correlation = CorrelationState(time_ns, symbols, matrix, clusters)
        self._cluster_of = {symbol: cluster for cluster in clusters for symbol in cluster}
        if _linked(clusters) != _linked(previous):
            logger.info(
                "PBA clusters at %d ns: %s.", time_ns, _describe(_linked(clusters)) or "none"
            )
        return self.correlation

    def admit(
        self,
        time_ns: int,
        candidates: Sequence[Candidate],
        positions: Sequence[OpenExposure],
        equity: float,
    ) -> BalanceDecision:
        """Admit, resize or block each candidate against the book of open ``positions``."""
        if not self.active:
            return BalanceDecision(list(candidates), {}, binding=False)
        self.heartbeat()
        self.seen += len(candidates)
        book = Book.open(positions, equity, self.cluster_of)
        ranked = sorted(candidates, key=_rank_key)

        admitted: list[Candidate] = []
        blocked: dict[str, str] = {}
        resized: dict[str, float] = {}
        for candidate in ranked:
            verdict = judge(book, candidate, self.settings, self.gross_limit)
            self._record_verdict(time_ns, candidate, verdict)
            if verdict.notional is None:
                blocked.setdefault(candidate.symbol, verdict.reason)
                continue
            if verdict.notional != candidate.notional:
                resized[candidate.symbol] = candidate.notional
                candidate = replace(candidate, notional=verdict.notional)
            book.add(candidate.symbol, candidate.side, candidate.notional)
            admitted.append(candidate)

        if self.binding:
            self.changed += len(resized)
            self.vetoed += len(candidates) - len(admitted)
        return BalanceDecision(admitted, blocked, self.binding, resized)

    def _record_verdict(self, time_ns: int, candidate: Candidate, verdict: Verdict) -> None:
        if verdict.notional is None:
            action, text = Action.VETO, f"blocked: {verdict.reason}"
        elif verdict.notional != candidate.notional:
            action, text = Action.RESIZE, f"resized: {verdict.reason}"
        else:
            action, text = Action.APPROVE, f"admitted: {verdict.reason}"
        if not self.binding and action is not Action.APPROVE:
            action, text = Action.APPROVE, f"not enforced, would be {text}"
        self.record(time_ns, candidate.symbol, action, text, verdict.numbers)


def _rank_key(candidate: Candidate) -> tuple[float, str]:
    score = candidate.score
    return (-score if not math.isnan(score) else math.inf, candidate.symbol)


def correlation_matrix(
    columns: npt.NDArray[np.float64], min_samples: int
) -> npt.NDArray[np.float64]:
    """Return the Pearson correlation of every pair of columns over rows where both are finite.

    A pair with fewer than ``min_samples`` such rows, or with a constant series on them, gets
    NaN. The diagonal is 1.
    """
    count = columns.shape[1]
    finite = np.isfinite(columns)
    if finite.all():
        matrix = _complete_correlation(columns, min_samples)
    else:
        matrix = np.full((count, count), np.nan)
        for i in range(count):
            for j in range(i + 1, count):
                rows = finite[:, i] & finite[:, j]
                if int(rows.sum()) >= min_samples:
                    pair = _complete_correlation(columns[rows][:, [i, j]], min_samples)
                    matrix[i, j] = matrix[j, i] = pair[0, 1]
    np.fill_diagonal(matrix, 1.0)
    return matrix


def _complete_correlation(
    columns: npt.NDArray[np.float64], min_samples: int
) -> npt.NDArray[np.float64]:
    """Correlate columns without missing values in one matrix product."""
    count = columns.shape[1]
    if columns.shape[0] < min_samples:
        return np.full((count, count), np.nan)
    deviations = columns - columns.mean(axis=0)
    spread = np.sqrt(np.einsum("ij,ij->j", deviations, deviations))
    # A constant series leaves only rounding noise in its deviations: no correlation is defined.
    scale = np.abs(columns).max(axis=0) * math.sqrt(columns.shape[0])
    constant = spread <= 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = (deviations.T @ deviations) / np.outer(spread, spread)
    clipped: npt.NDArray[np.float64] = np.clip(matrix, -1.0, 1.0)
    clipped[constant, :] = np.nan
    clipped[:, constant] = np.nan
    return clipped


def link_clusters(
    symbols: Sequence[str], matrix: npt.NDArray[np.float64], threshold: float
) -> tuple[frozenset[str], ...]:
    """Group ``symbols`` into connected components of the links ``matrix > threshold``.

    Every symbol belongs to exactly one cluster. Clusters are ordered by their first symbol.
    """
    parent = list(range(len(symbols)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    linked_i, linked_j = np.nonzero(np.triu(matrix > threshold, k=1))
    for i, j in zip(linked_i.tolist(), linked_j.tolist(), strict=True):
        parent[root(i)] = root(j)
    groups: dict[int, set[str]] = {}
    for index, symbol in enumerate(symbols):
        groups.setdefault(root(index), set()).add(symbol)
    return tuple(sorted((frozenset(group) for group in groups.values()), key=min))


def _linked(clusters: tuple[frozenset[str], ...]) -> tuple[frozenset[str], ...]:
    return tuple(cluster for cluster in clusters if len(cluster) > 1)


def _describe(clusters: tuple[frozenset[str], ...]) -> str:
    return "; ".join("{" + ", ".join(sorted(cluster)) + "}" for cluster in clusters)
