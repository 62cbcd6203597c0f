"""The one settings object. Environment variables use the prefix ``QT_`` and ``__`` for nesting.

Example: ``QT_RISK__RISK_PER_TRADE=0.005`` or ``QT_EXCHANGE__MARKET_TYPE=futures``.
A TOML config file (``--config FILE``) sets the same keys in sections named after the fields
below; command-line options override the file, and the file overrides the environment.
Defaults are conservative: 1% of equity at risk per trade, leverage 1x (3x at most unless the
hard cap is raised knowingly), ESS at 5% daily loss and 15% drawdown.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quantum_trader.core.types import MarketType
from quantum_trader.data.timeframes import TIMEFRAMES
from quantum_trader.errors import ConfigurationError
from quantum_trader.subsystems.base import Mode
from quantum_trader.subsystems.execution_types import ExecutionSettings
from quantum_trader.subsystems.meta_strategy import MetaSettings
from quantum_trader.subsystems.model_health import SupervisorSettings
from quantum_trader.subsystems.opportunity_ranker import RankerSettings
from quantum_trader.subsystems.orchestrator import PolicySettings
from quantum_trader.subsystems.portfolio_balancer import BalancerSettings
from quantum_trader.subsystems.position_intelligence import PositionSettings
from quantum_trader.subsystems.profit_amplification import AmplifierSettings
from quantum_trader.subsystems.self_healing import HealingSettings
from quantum_trader.subsystems.supervisor_os import HfosSettings
from quantum_trader.subsystems.universe import UniverseSettings

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "BNB/USDT")
HARD_MAX_LEVERAGE = 20.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Section):
    datadir: Path = Field(Path("data/binance"), description="Folder of candle files.")
    timeframe: str = Field("1h", description="Candle timeframe, for example 5m, 1h, 1d.")
    symbols: tuple[str, ...] = Field(DEFAULT_SYMBOLS, min_length=1)
    start: str | None = Field(None, description="First candle open time (UTC), ISO 8601.")
    end: str | None = Field(None, description="Last candle open time (UTC), ISO 8601.")
    fill_gaps: bool = Field(True, description="Insert synthetic flat candles into gaps.")
    conflicting_duplicates: Literal["merge", "reject"] = "merge"


class SlippageSettings(_Section):
    """Slippage = fixed_bps + range_share of the candle range + volume_impact x participation.

    Participation is the order quantity over the candle volume, capped at 1. Slippage always
    moves the price against the order and never outside the candle's [low, high].
    """

    fixed_bps: float = Field(1.0, ge=0, le=500)
    range_share: float = Field(0.02, ge=0, le=1)
    volume_impact: float = Field(0.1, ge=0, le=10)


class ExchangeSettings(_Section):
    market_type: MarketType = MarketType.SPOT
    maker_fee: float | None = Field(
        None, ge=0, le=0.01, description="Fee rate per maker fill; None: 0.1% spot, 0.02% futures"
    )
    taker_fee: float | None = Field(
        None, ge=0, le=0.01, description="Fee rate per taker fill; None: 0.1% spot, 0.05% futures"
    )
    slippage: SlippageSettings = SlippageSettings()
    maintenance_margin_rate: float = Field(0.005, gt=0, lt=0.5)
    funding_rate: float | None = Field(
        None, ge=-0.05, le=0.05, description="Constant rate per interval; None reads the file."
    )
    funding_interval_hours: int = Field(8, ge=1, le=24)

    @property
    def maker_rate(self) -> float:
        if self.maker_fee is not None:
            return self.maker_fee
        return 0.001 if self.market_type is MarketType.SPOT else 0.0002

    @property
    def taker_rate(self) -> float:
        if self.taker_fee is not None:
            return self.taker_fee
        return 0.001 if self.market_type is MarketType.SPOT else 0.0005


class RiskSettings(_Section):
    """Trading Mathematician settings."""

    sizing: Literal["risk", "stake", "volatility", "kelly"] = Field(
        "risk",
        description="risk: fixed share of equity at risk; stake: fixed quote amount; volatility: "
        "risk share scaled by target / realised volatility; kelly: capped fractional Kelly.",
    )
    risk_per_trade: float = Field(0.01, gt=0, le=0.05, description="Share of equity at risk.")
    stake_amount: float | None = Field(None, gt=0, description="Quote amount per trade (stake).")
    atr_period: int = Field(14, ge=2, le=500)
    stop_atr_multiple: float = Field(2.0, gt=0, le=20)
    reward_risk: float = Field(2.0, gt=0, le=20, description="Target distance over stop distance.")
    min_reward_risk: float = Field(1.0, gt=0, le=20)
    max_position_share: float = Field(0.25, gt=0, le=1, description="Max notional / equity.")
    leverage: float = Field(1.0, ge=1, description="Leverage per futures position.")
    max_leverage: float = Field(3.0, ge=1, le=HARD_MAX_LEVERAGE)
    liquidation_buffer: float = Field(
        0.5, ge=0, le=10, description="Liquidation must lie this many stop distances past the stop."
    )
    max_open_positions: int = Field(5, ge=1, le=200)
    # NOTE: a good target depends on the timeframe: the per-candle volatility of large crypto
    # markets is roughly 0.2% on 5m and 0.7% on 1h candles (an estimate), so set it per timeframe.
    target_volatility: float = Field(
        0.005,
        gt=0,
        lt=1,
        description="Volatility sizing: per-candle standard deviation of log returns at which "
        "the risk share is exactly risk_per_trade.",
    )
    volatility_min_scale: float = Field(
        0.25, gt=0, le=1, description="Volatility sizing: lowest multiple of risk_per_trade."
    )
    volatility_max_scale: float = Field(
        1.5, ge=1, le=3, description="Volatility sizing: highest multiple of risk_per_trade."
    )
    kelly_fraction: float = Field(
        0.25, gt=0, le=1, description="Kelly sizing: share of the full Kelly fraction used."
    )
    kelly_window: int = Field(
        100, ge=2, le=10_000, description="Kelly sizing: closed trades the estimate reads."
    )
    kelly_min_trades: int = Field(
        30,
        ge=2,
        le=10_000,
        description="Kelly sizing: closed trades needed before Kelly replaces risk_per_trade.",
    )
    max_kelly_risk: float = Field(
        0.01, gt=0, le=0.05, description="Kelly sizing: cap on the share of equity at risk."
    )

    @model_validator(mode="after")
    def _check_cross_fields(self) -> RiskSettings:
        if self.kelly_min_trades > self.kelly_window:
            raise ValueError(
                f"risk.kelly_min_trades={self.kelly_min_trades} is above "
                f"risk.kelly_window={self.kelly_window}; the window could never hold enough "
                "trades, so raise kelly_window or lower kelly_min_trades"
            )
        if self.leverage > self.max_leverage:
            raise ValueError(
                f"risk.leverage={self.leverage} is above risk.max_leverage={self.max_leverage}; "
                "lower the leverage or raise max_leverage knowingly"
            )
        if self.sizing == "stake" and self.stake_amount is None:
            raise ValueError("risk.sizing='stake' needs risk.stake_amount (quote currency)")
        if self.reward_risk < self.min_reward_risk:
            raise ValueError(
                f"risk.reward_risk={self.reward_risk} is below "
                f"risk.min_reward_risk={self.min_reward_risk}"
            )
        return self


class EmergencyStopSettings(_Section):
    max_daily_loss: float = Field(0.05, gt=0, lt=1, description="Share of start-of-day equity.")
    max_drawdown: float = Field(0.15, gt=0, lt=1, description="Share of peak equity.")
    flatten_on_trip: bool = Field(False, description="Close open positions when tripped.")
    state_file: Path | None = Field(
        None,
        description="JSON file that keeps the ESS state across restarts; a trip stored there "
        "stays in force until an authorised reset.",
    )
    backtest_reset_hours: float | None = Field(
        None,
        gt=0,
        le=24 * 365,
        description=(
            "Backtests only: simulate an operator's reset this many hours after a trip. "
            "None keeps the trip latched to the end of the run, as in live trading."
        ),
    )
    reduce_on_trip: bool = Field(
        False,
        description="Without flatten_on_trip: after a trip report the state 'reducing' "
        "instead of 'halted'. Either way new entries stop; exits of open positions (signals, "
        "stops, targets) still go through in a backtest.",
    )
    stop_loss_burst_count: int | None = Field(
        4, ge=2, le=1000, description="Stop-loss exits within the burst window that trip; None=off."
    )
    stop_loss_burst_hours: float = Field(
        6.0, gt=0, le=24 * 30, description="Window of the stop-loss burst, in hours."
    )
    max_error_rate: float | None = Field(
        0.3, gt=0, le=1, description="Share of failed order attempts that trips; None=off."
    )
    error_window: int = Field(
        20, ge=1, le=10_000, description="Latest order attempts the error share is taken over."
    )
    min_error_attempts: int = Field(
        10, ge=1, le=10_000, description="Attempts needed before the error share can trip."
    )
    max_data_age_seconds: float | None = Field(
        900.0,
        gt=0,
        le=7 * 86_400,
        description="Live only: trip when the newest candle opened longer ago than this; "
        "None=off. Must exceed one candle length plus the feed's delay.",
    )

    @model_validator(mode="after")
    def _check_error_window(self) -> EmergencyStopSettings:
        if self.min_error_attempts > self.error_window:
            raise ValueError(
                f"emergency_stop.min_error_attempts={self.min_error_attempts} is above "
                f"emergency_stop.error_window={self.error_window}, so the error share could "
                "never trip; lower min_error_attempts or raise error_window"
            )
        return self


class ModelSettings(_Section):
    """AI Trading Engine settings: labels, walk-forward windows and the ensemble."""

    mode: Mode = Field(
        Mode.ENFORCED, description="AI Trading Engine mode; off drops the ML ensemble profile."
    )
    models: tuple[Literal["lightgbm", "linear", "xgboost"], ...] = Field(
        ("lightgbm", "xgboost", "linear"), min_length=1
    )
    horizon: int = Field(4, ge=1, le=500, description="Label horizon in candles.")
    purge: int | None = Field(None, ge=0, description="Gap between train and test; None=horizon.")
    train_window: int = Field(4000, ge=200, description="Candles per symbol in a training window.")
    retrain_every: int = Field(720, ge=24, description="Candles between walk-forward refits.")
    calibration_share: float = Field(0.2, gt=0, lt=0.5)
    entry_confidence: float = Field(0.56, gt=0.5, lt=1, description="Min probability to enter.")
    exit_confidence: float = Field(0.5, ge=0.5, lt=1, description="Exit when below this.")
    allow_short: bool = Field(False, description="Open shorts (futures only).")
    seed: int = 7
    agreement_floor: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the ensemble's edge over 0.5 kept when the members split evenly; "
        "1 turns the agreement rule off.",
    )
    higher_timeframe: str | None = Field(
        "1h",
        description="Timeframe of the context features; used only when longer than the base "
        "timeframe. None turns them off.",
    )
    max_train_rows: int | None = Field(
        20_000,
        ge=1000,
        description="Cap on pooled training rows per fold; larger sets keep every k-th row.",
    )
    early_stopping_rounds: int | None = Field(
        20,
        ge=1,
        le=1000,
        description="Tree members stop after this many rounds without a better log loss on "
        "the calibration slice; None trains every tree.",
    )

    @property
    def purge_candles(self) -> int:
        return self.horizon if self.purge is None else self.purge

    @model_validator(mode="after")
    def _check_members_and_context(self) -> ModelSettings:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"model.models={list(self.models)} names a member twice")
        if self.higher_timeframe is not None and self.higher_timeframe not in TIMEFRAMES:
            raise ValueError(
                f"model.higher_timeframe={self.higher_timeframe!r} is unknown; use one of "
                f"{', '.join(TIMEFRAMES)} or leave it unset"
            )
        return self

    @model_validator(mode="after")
    def _check_purge(self) -> ModelSettings:
        if self.purge is not None and self.purge < self.horizon:
            raise ValueError(
                f"model.purge={self.purge} is shorter than model.horizon={self.horizon}: labels "
                "of the last training rows would overlap the test window; set purge >= horizon"
            )
        return self


# Walk-forward windows per timeframe, used for the fields a user leaves unset. ModelSettings'
# own defaults suit 1h candles (4000 candles is about 5.5 months of training, refit monthly);
# shorter candles keep the spans in time sensible: at 5m, 30 days of training refit weekly.
MODEL_TIMEFRAME_PRESETS: dict[str, dict[str, int]] = {
    "1m": {"horizon": 30, "train_window": 20_160, "retrain_every": 10_080},
    "5m": {"horizon": 12, "train_window": 8640, "retrain_every": 2016},
    "15m": {"horizon": 8, "train_window": 5760, "retrain_every": 1344},
    "30m": {"horizon": 6, "train_window": 4320, "retrain_every": 1344},
}


def model_settings_for(model: ModelSettings, timeframe: str) -> ModelSettings:
    """Return ``model`` with the timeframe's preset for every window field left unset."""
    preset = MODEL_TIMEFRAME_PRESETS.get(timeframe, {})
    unset = {key: value for key, value in preset.items() if key not in model.model_fields_set}
    if not unset:
        return model
    return ModelSettings(**{**model.model_dump(exclude_unset=True), **unset})


class StrategySettings(_Section):
    name: Literal["ai", "ema-cross", "signals"] = "ai"
    fast_period: int = Field(12, ge=1, le=1000)
    slow_period: int = Field(26, ge=2, le=5000)
    stop_pct: float | None = Field(0.02, gt=0, lt=1, description="EMA-cross stop distance.")
    signals_file: Path | None = None

    @model_validator(mode="after")
    def _check_periods(self) -> StrategySettings:
        if self.fast_period >= self.slow_period:
            raise ValueError(
                f"strategy.fast_period={self.fast_period} must be below "
                f"strategy.slow_period={self.slow_period}"
            )
        if self.name == "signals" and self.signals_file is None:
            raise ValueError("strategy.name='signals' needs strategy.signals_file")
        return self


class ServiceSettings(_Section):
    """The paper-trading service."""

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the journal, e.g. sqlite:///user_data/quantum_trader.db "
        "or postgresql+psycopg://user@host/db. With it, every step is stored and a restart "
        "resumes where the last run stopped; None keeps the state in memory only.",
    )
    database_password_file: Path | None = Field(
        None,
        description="File containing the password of database_url, such as a Docker secret "
        "at /run/secrets/postgres_password. It is read when the journal opens, its trailing "
        "newlines are dropped, and database_url must then contain no password.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL, e.g. redis://127.0.0.1:6379/0. With it, fills, orders and "
        "decisions are also published to Redis Streams and the policy in force is stored there.",
    )
    redis_prefix: str = Field(
        "qt", min_length=1, max_length=64, description="Prefix of the Redis stream and key names."
    )

    @model_validator(mode="after")
    def _check_password_file(self) -> ServiceSettings:
        # Without a URL, serve falls back to SQLite and the password would be ignored silently.
        if self.database_password_file is not None and self.database_url is None:
            raise ValueError(
                f"service.database_password_file={str(self.database_password_file)!r} is set "
                "but service.database_url is not. Set QT_SERVICE__DATABASE_URL to the URL "
                "without the password, or unset the password file"
            )
        return self


class LiveSettings(_Section):
    """Live candles from an exchange through ccxt, for the paper-trading service.

    Only public market data is read, so no API key is needed. The orders still go to the
    simulated exchange.
    """

    enabled: bool = Field(
        False,
        description="Feed the paper trader with closed candles from the exchange instead of "
        "replaying the shipped files.",
    )
    exchange: str = Field(
        "binance",
        min_length=2,
        max_length=40,
        pattern=r"^[a-z0-9_]+$",
        description="ccxt exchange id, for example binance, bybit or okx.",
    )
    history_candles: int | None = Field(
        None,
        ge=50,
        le=200_000,
        description="Closed candles per symbol fetched before trading starts. None: the AI "
        "model's train_window + retrain_every, so the first fold is trained at the start.",
    )
    poll_seconds: float = Field(
        10.0, ge=0.5, le=3600, description="Seconds between two polls for new closed candles."
    )
    max_wait_seconds: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="How long after a candle closes to wait for every symbol to deliver it. A "
        "symbol still missing then gets a flat synthetic candle at its previous close.",
    )
    retries: int = Field(
        4, ge=0, le=20, description="Retries of a request that failed with a network error."
    )
    retry_backoff_seconds: float = Field(
        1.0, ge=0, le=60, description="Wait before the first retry; it doubles on each retry."
    )
    page_limit: int = Field(
        1000, ge=10, le=5000, description="Candles asked for per request (Binance allows 1000)."
    )
    api_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="Send the exchange's public REST requests to this base URL instead, for "
        "example a local caching proxy. None uses the exchange's own hosts.",
    )


class BacktestSettings(_Section):
    initial_capital: float = Field(10_000.0, gt=0, le=1e12, description="Quote currency.")
    output_dir: Path = Field(Path("results"), description="Run folders are created here.")
    ablation: bool = Field(
        True,
        description="Rerun the AI pipeline once per subsystem switched off, for the "
        "contributions table.",
    )


class Settings(BaseSettings):
    """All settings of one run. Unknown keys are rejected with their name."""

    model_config = SettingsConfigDict(
        env_prefix="QT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data: DataSettings = DataSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    risk: RiskSettings = RiskSettings()
    emergency_stop: EmergencyStopSettings = EmergencyStopSettings()
    model: ModelSettings = ModelSettings()
    strategy: StrategySettings = StrategySettings()
    backtest: BacktestSettings = BacktestSettings()
    service: ServiceSettings = ServiceSettings()
    live: LiveSettings = LiveSettings()
    universe: UniverseSettings = UniverseSettings()
    ranker: RankerSettings = RankerSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    meta: MetaSettings = MetaSettings()
    policy: PolicySettings = PolicySettings()
    hfos: HfosSettings = HfosSettings()
    balancer: BalancerSettings = BalancerSettings()
    positions: PositionSettings = PositionSettings()
    amplifier: AmplifierSettings = AmplifierSettings()
    execution: ExecutionSettings = ExecutionSettings()
    healing: HealingSettings = HealingSettings()

    @model_validator(mode="after")
    def _check_market_type(self) -> Settings:
        spot = self.exchange.market_type is MarketType.SPOT
        if spot and self.risk.leverage != 1.0:
            raise ValueError(
                f"risk.leverage={self.risk.leverage} needs exchange.market_type='futures'; "
                "spot positions are unleveraged, so drop --leverage or pass --market-type futures"
            )
        if spot and self.model.allow_short:
            raise ValueError(
                "model.allow_short=true needs exchange.market_type='futures'; spot cannot short"
            )
        return self


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Build the settings from the environment, an optional TOML file and explicit overrides.

    Raises ConfigurationError naming each invalid key and value.
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"config file {config_file} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {config_file} is not valid TOML: {exc}") from exc
    values = _merge(values, overrides or {})
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from exc
