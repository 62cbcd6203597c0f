"""Run one backtest: load and validate candles, generate signals, simulate, collect results."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantum_trader.backtest.assembly import Stack, build_stack
from quantum_trader.backtest.benchmark import buy_and_hold_equity
from quantum_trader.backtest.contributions import contributions
from quantum_trader.backtest.counters import pipeline_counters, subsystem_counters
from quantum_trader.backtest.results import BacktestResult
from quantum_trader.backtest.signal_set import SignalSet, ai_pipeline_signals
from quantum_trader.config import Settings
from quantum_trader.core.types import NS_PER_SECOND, MarketType
from quantum_trader.data.catalog import DataCatalog, futures_symbol
from quantum_trader.data.timeframes import timeframe_to_ns, timeframe_to_seconds
from quantum_trader.engine.bus import EventBus
from quantum_trader.engine.clock import SimulatedClock
from quantum_trader.engine.decisions import Action, DecisionLog
from quantum_trader.engine.feed import CandleFeed
from quantum_trader.engine.kernel import FundingSchedule, ProgressCallback, TradingKernel
from quantum_trader.engine.pipeline import DecisionPipeline
from quantum_trader.engine.selection import SelectionLayer
from quantum_trader.errors import ConfigurationError
from quantum_trader.exchange.markets import MarketRules, default_market_rules
from quantum_trader.exchange.simulated import SimulatedExchange
from quantum_trader.features.indicators import atr as average_true_range
from quantum_trader.strategies.ai import AIStrategy
from quantum_trader.strategies.base import SignalFrame, Strategy
from quantum_trader.strategies.ema_cross import EmaCrossStrategy
from quantum_trader.strategies.signals_file import SignalsFileStrategy
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.emergency_stop import EmergencyStop, EssStateStore
from quantum_trader.subsystems.sizing import TradingMathematician

logger = logging.getLogger(__name__)


@dataclass
class TradingSession:
    """Everything one run wires together; the kernel's ``step`` drives it candle by candle."""

    settings: Settings
    candles: dict[str, pd.DataFrame]
    feed: CandleFeed
    exchange: SimulatedExchange
    emergency_stop: EmergencyStop
    pipeline: DecisionPipeline
    kernel: TradingKernel
    log: DecisionLog
    bus: EventBus
    stack: Stack | None

    def start(self, *, quiet: bool = False) -> None:
        """Start the subsystems in dependency order (a failing start raises with its reason).

        ``quiet`` logs each start at DEBUG instead of INFO.
        """
        if self.stack is not None:
            self.stack.registry.start(quiet=quiet)


@dataclass
class Progress:
    """Optional progress callbacks: ``training`` for model folds, ``simulation`` for steps."""

    training: ProgressCallback | None = None
    simulation: ProgressCallback | None = None


@dataclass
class MarketData:
    candles: dict[str, pd.DataFrame]
    reports: list[dict[str, Any]]
    catalog: DataCatalog


def trading_symbols(settings: Settings) -> list[str]:
    """Return the symbols as the catalog names them for the configured market type."""
    if settings.exchange.market_type is MarketType.FUTURES:
        return [futures_symbol(symbol) for symbol in settings.data.symbols]
    return list(settings.data.symbols)


def load_market_data(settings: Settings) -> MarketData:
    """Load, validate and slice every configured symbol's candles."""
    catalog = DataCatalog(settings.data.datadir)
    candle_type = "futures" if settings.exchange.market_type is MarketType.FUTURES else "spot"
    candles: dict[str, pd.DataFrame] = {}
    reports: list[dict[str, Any]] = []
    for symbol in trading_symbols(settings):
        frame, report = catalog.load(
            symbol,
            settings.data.timeframe,
            candle_type,
            start=settings.data.start,
            end=settings.data.end,
            fill_gaps=settings.data.fill_gaps,
            conflicting_duplicates=settings.data.conflicting_duplicates,
        )
        if len(frame) < 2:
            raise ConfigurationError(
                f"{symbol} {settings.data.timeframe} has {len(frame)} candles between "
                f"{settings.data.start or 'the start'} and {settings.data.end or 'the end'}; "
                "widen the date range"
            )
        candles[symbol] = frame
        reports.append(report.to_dict())
        if report.problems:
            logger.info("Candle check of %s: %s", symbol, report.summary())
    return MarketData(candles=candles, reports=reports, catalog=catalog)


def build_strategy(settings: Settings, progress: ProgressCallback | None) -> Strategy:
    strategy = settings.strategy
    if strategy.name == "ai":
        return AIStrategy(settings.model, settings.data.timeframe, progress=progress)
    if strategy.name == "ema-cross":
        return EmaCrossStrategy(
            fast=strategy.fast_period,
            slow=strategy.slow_period,
            stop_pct=strategy.stop_pct,
            allow_short=settings.model.allow_short,
        )
    assert strategy.signals_file is not None  # enforced by StrategySettings
    return SignalsFileStrategy(strategy.signals_file)


def run_backtest(settings: Settings, progress: Progress | None = None) -> BacktestResult:
    """Run the configured strategy over the configured candles and return every result.

    The AI strategy runs the full pipeline: three strategy profiles steered by the selection
    subsystems, followed by one ablation run per subsystem for the contributions table.
    """
    progress = progress or Progress()
    data = load_market_data(settings)
    if settings.strategy.name != "ai":
        strategy = build_strategy(settings, progress.training)
        result = simulate(
            settings, data.candles, strategy.generate(data.candles), progress.simulation,
            data.catalog,
        )  # fmt: skip
        result.data_reports = data.reports
        return result

    signals = ai_pipeline_signals(settings, data.candles, progress.training)
    result = simulate(settings, data.candles, signals, progress.simulation, data.catalog)
    result.data_reports = data.reports
    if signals.model is not None:
        result.model_report = signals.model.summary()
    if settings.backtest.ablation:

        def rerun(changed: Settings, changed_signals: SignalSet) -> BacktestResult:
            return simulate(changed, data.candles, changed_signals, None, data.catalog)

        result.contributions = contributions(settings, signals, result, rerun)
    return result


def build_session(
    settings: Settings,
    candles: dict[str, pd.DataFrame],
    signals: dict[str, SignalFrame] | SignalSet,
    catalog: DataCatalog | None = None,
    *,
    skip_quiet: bool = True,
    subsystems: bool = True,
) -> TradingSession:
    """Wire the exchange, the subsystems, the pipeline and the kernel for ``candles``.

    ``signals`` is either one strategy's frames per symbol, run as given, or the AI pipeline's
    SignalSet, whose profiles the subsystems steer (``subsystems=False`` runs the profiles
    through the engine alone, for comparison). ``skip_quiet=False`` processes every step one by
    one (for checking the fast path).
    """
    timeframe_ns = timeframe_to_ns(settings.data.timeframe)
    markets = _market_rules(settings, candles)
    exchange = SimulatedExchange(markets, settings.exchange, settings.backtest.initial_capital)
    emergency_stop = EmergencyStop(settings.emergency_stop)
    if settings.emergency_stop.state_file is not None:
        emergency_stop.attach_store(EssStateStore(settings.emergency_stop.state_file))
    feed = CandleFeed(candles, timeframe_ns)
    log = DecisionLog()
    bus = EventBus()
    atr = {
        symbol: average_true_range(
            frame["high"].to_numpy(np.float64),
            frame["low"].to_numpy(np.float64),
            frame["close"].to_numpy(np.float64),
            settings.risk.atr_period,
        )
        for symbol, frame in candles.items()
    }
    sizing = TradingMathematician(
        settings.risk, settings.exchange.maintenance_margin_rate, settings.exchange.market_type
    )
    clock = SimulatedClock(feed.times[0])
    stack = None
    if isinstance(signals, SignalSet) and not subsystems:
        profiles = signals.profiles
        selection = None
    elif isinstance(signals, SignalSet):
        profiles = signals.profiles
        selection = _selection_layer(settings, candles, feed, markets, signals, log)
        stack = build_stack(
            settings=settings,
            candles=candles,
            feed=feed,
            markets=markets,
            signals=signals,
            exchange=exchange,
            atr=atr,
            sizing=sizing,
            emergency_stop=emergency_stop,
            clock=clock,
            log=log,
            selection=selection,
        )
    else:
        profiles = {settings.strategy.name: signals}
        selection = None
    pipeline = DecisionPipeline(
        exchange=exchange,
        sizing=sizing,
        emergency_stop=emergency_stop,
        markets=markets,
        profiles=profiles,
        atr=atr,
        feed=feed,
        risk=settings.risk,
        log=log,
        bus=bus,
        flatten_on_trip=settings.emergency_stop.flatten_on_trip,
        selection=selection,
        position_manager=stack.positions if stack else None,
        oversight=stack.oversight if stack else None,
        portfolio=stack.portfolio if stack else None,
        execution=stack.execution if stack else None,
        ai_engine=stack.ai_engine if stack else None,
    )
    kernel = TradingKernel(
        clock=clock,
        bus=bus,
        feed=feed,
        exchange=exchange,
        pipeline=pipeline,
        emergency_stop=emergency_stop,
        funding=_funding_schedule(settings, list(candles), catalog),
        reset_after_ns=_reset_after_ns(settings),
        skip_quiet=skip_quiet,
    )
    return TradingSession(
        settings=settings,
        candles=candles,
        feed=feed,
        exchange=exchange,
        emergency_stop=emergency_stop,
        pipeline=pipeline,
        kernel=kernel,
        log=log,
        bus=bus,
        stack=stack,
    )


def simulate(
    settings: Settings,
    candles: dict[str, pd.DataFrame],
    signals: dict[str, SignalFrame] | SignalSet,
    progress: ProgressCallback | None = None,
    catalog: DataCatalog | None = None,
    *,
    skip_quiet: bool = True,
    subsystems: bool = True,
) -> BacktestResult:
    """Replay ``candles`` through the kernel with precomputed ``signals``; see build_session."""
    session = build_session(
        settings, candles, signals, catalog, skip_quiet=skip_quiet, subsystems=subsystems
    )
    session.start()
    session.kernel.run(progress)
    return finish_session(session)


def finish_session(session: TradingSession) -> BacktestResult:
    """Stop the subsystems and collect every result of a session whose kernel has run."""
    settings, candles, feed = session.settings, session.candles, session.feed
    exchange, emergency_stop, log = session.exchange, session.emergency_stop, session.log
    kernel, pipeline, stack = session.kernel, session.pipeline, session.stack
    health = None
    if stack is not None:
        health = stack.healing.check(time.time(), stack.registry)
        status = [asdict(row) for row in stack.registry.status()]
        stack.registry.stop()
    if kernel.funding_missing:
        logger.warning(
            "No funding rate was known for %d funding times; those were skipped. "
            "Set exchange.funding_rate to use a constant rate",
            kernel.funding_missing,
        )
    index = pd.to_datetime(feed.times_array, utc=True)
    result = BacktestResult(
        run_id=uuid.uuid4().hex[:12],
        strategy=settings.strategy.name,
        timeframe=settings.data.timeframe,
        market_type=settings.exchange.market_type.value,
        symbols=list(candles),
        initial_capital=settings.backtest.initial_capital,
        equity=pd.Series(kernel.equity, index=index, name="equity"),
        benchmark_equity=buy_and_hold_equity(candles, index, settings),
        orders=exchange.orders,
        fills=exchange.fills,
        trades=exchange.trades,
        decisions=log.decisions,
        candles=candles,
        settings=settings.model_dump(mode="json"),
        emergency_stop={
            **emergency_stop.to_dict(),
            "trips": _trips(log),
            "entries_vetoed_while_halted": pipeline.halted_vetoes,
        },
        fees_paid=exchange.fees_paid,
        funding_paid=exchange.funding_paid,
    )
    if stack is not None:
        result.subsystems = pipeline_counters(
            status, exchange.orders, len(_trips(log)), pipeline.halted_vetoes
        )
        result.health = {"subsystems": status, "healthy": bool(health and health.healthy)}
    else:
        result.subsystems = subsystem_counters(settings, log, exchange.orders, None)
    return result


def _selection_layer(
    settings: Settings,
    candles: dict[str, pd.DataFrame],
    feed: CandleFeed,
    markets: dict[str, MarketRules],
    signals: SignalSet,
    log: DecisionLog,
) -> SelectionLayer | None:
    modes = (settings.universe, settings.ranker, settings.supervisor, settings.meta)
    if all(section.mode is Mode.OFF for section in modes):
        return None
    exchange = settings.exchange
    round_trip_cost = 2 * exchange.taker_rate + 2 * exchange.slippage.fixed_bps / 10_000
    return SelectionLayer(
        candles=candles,
        feed=feed,
        markets=markets,
        universe=settings.universe,
        ranker=settings.ranker,
        supervisor=settings.supervisor,
        meta=settings.meta,
        supervision=signals.supervision,
        entry_confidence=settings.model.entry_confidence,
        round_trip_cost=round_trip_cost,
        timeframe_hours=timeframe_to_seconds(settings.data.timeframe) / 3600,
        log=log,
    )


def _reset_after_ns(settings: Settings) -> int | None:
    hours = settings.emergency_stop.backtest_reset_hours
    return None if hours is None else int(hours * 3600 * NS_PER_SECOND)


def _trips(log: DecisionLog) -> list[dict[str, Any]]:
    return [
        {
            "time": pd.Timestamp(d.time_ns, tz="UTC").isoformat(),
            "reason": d.reason,
            "numbers": d.numbers,
        }
        for d in log.decisions
        if d.subsystem == "ESS" and d.action is Action.TRIP
    ]


def _market_rules(settings: Settings, candles: dict[str, pd.DataFrame]) -> dict[str, MarketRules]:
    exchange = settings.exchange
    return {
        symbol: default_market_rules(
            symbol,
            exchange.market_type,
            taker_fee=exchange.taker_rate,
            maker_fee=exchange.maker_rate,
            reference_price=float(frame["close"].iloc[0]),
        )
        for symbol, frame in candles.items()
    }


def _funding_schedule(
    settings: Settings, symbols: list[str], catalog: DataCatalog | None
) -> FundingSchedule | None:
    exchange = settings.exchange
    if exchange.market_type is not MarketType.FUTURES:
        return None
    interval_ns = exchange.funding_interval_hours * 3600 * NS_PER_SECOND
    constant = exchange.funding_rate
    if constant is not None:
        return FundingSchedule(interval_ns, lambda _symbol, _time_ns: constant)
    if catalog is None:
        raise ConfigurationError("futures backtest needs exchange.funding_rate or a data catalog")
    rates: dict[str, dict[int, float]] = {}
    for symbol in symbols:
        series = catalog.load_funding_rates(symbol)
        times = series.index.to_numpy(dtype="datetime64[ns]").astype(np.int64).tolist()
        rates[symbol] = dict(zip(times, series.to_numpy(np.float64).tolist(), strict=True))

    def lookup(symbol: str, time_ns: int) -> float | None:
        return rates[symbol].get(time_ns)

    return FundingSchedule(interval_ns, lookup)
