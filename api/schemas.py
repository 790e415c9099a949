"""The API's request and response bodies (they make its OpenAPI schema). Times are integer nanoseconds
since the Unix epoch, UTC; prices and sizes are as the venue quotes them."""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_SNAPSHOTS = 1000
MAX_SNAPSHOT_LEVELS = 100
MAX_NS = 2**63 - 1

Nanoseconds = Annotated[int, Field(ge=0, le=MAX_NS)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Level = tuple[Finite, Finite]
Direction = Annotated[int, Field(ge=-1, le=1, description="-1 down, 0 flat, +1 up")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorMessage(BaseModel):
    detail: str = Field(description="what went wrong, for people")


class InstrumentList(BaseModel):
    instruments: list[str] = Field(description="every instrument in the store, `exchange:symbol`, sorted")


class Book(BaseModel):
    instrument: str
    ts: int = Field(description="local receive time of the book event")
    seq: int = Field(description="the event's number in its instrument's stream")
    exchange_ts: int | None
    update_id: int | None = Field(description="the venue's sequence id")
    bids: list[Level] = Field(description="[price, size], best first")
    asks: list[Level] = Field(description="[price, size], best first")


class FeatureRow(BaseModel):
    ts: int
    seq: int
    exchange_ts: int | None
    values: dict[str, float | None] = Field(description="feature name -> value (null where undefined)")


class FeatureRows(BaseModel):
    instrument: str
    features: list[str] = Field(description="the features in each row, in registry order")
    rows: list[FeatureRow] = Field(description="ordered by (ts, seq); the latest row alone without start/end")
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class Prediction(BaseModel):
    horizon: str = Field(description='"10": over the next 10 best bid/offer changes; "1s": over 1 second')
    p_down: float
    p_flat: float
    p_up: float
    predicted: Direction = Field(
        description="the predicted direction: -1 down, 0 flat, +1 up (the ensemble's decision rule, which does not "
        "favour the frequent flat class; the most probable one with QF_ENSEMBLE=mixture or stacking)"
    )
    confidence: float = Field(description="its probability")
    models: dict[str, tuple[float, float, float]] = Field(description="each model's [p_down, p_flat, p_up]")
    weights: dict[str, float] = Field(description="each model's weight in the ensemble")


class StoredPrediction(Prediction):
    ts: int = Field(description="local receive time of the event the prediction was made on")
    seq: int
    exchange_ts: int | None
    label: Direction | None = Field(description="the realized direction, once the horizon has passed")
    return_bps: float | None = Field(description="the realized mid move the label is drawn from")
    matured_ts: int | None = Field(description="receive time of the event that matured it")


class LatestPredictions(BaseModel):
    instrument: str
    predictions: list[StoredPrediction] = Field(
        description="one per horizon, made on the latest predicted event; event horizons by count, then time "
        "horizons by length (10, 50, 100, 1s, 10s)"
    )


class PredictionRows(BaseModel):
    instrument: str
    rows: list[StoredPrediction] = Field(
        description="ordered by (ts, seq), an event's horizons in the models' order (10, 50, 100, 1s, 10s)"
    )
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class Snapshot(Strict):
    ts: Nanoseconds
    bids: list[Level] = Field(min_length=1, max_length=MAX_SNAPSHOT_LEVELS, description="[price, size], best first")
    asks: list[Level] = Field(min_length=1, max_length=MAX_SNAPSHOT_LEVELS, description="[price, size], best first")


class PredictRequest(Strict):
    snapshots: list[Snapshot] = Field(
        min_length=1, max_length=MAX_SNAPSHOTS, description="book snapshots of one instrument, oldest first"
    )

    @model_validator(mode="after")
    def _in_time_order(self) -> PredictRequest:
        times = [s.ts for s in self.snapshots]
        if any(later < earlier for earlier, later in pairwise(times)):
            raise ValueError("snapshots must be in time order (ts not decreasing)")
        return self


class PredictResponse(BaseModel):
    ts: int = Field(description="time of the last snapshot, which the predictions are for")
    predictions: list[Prediction] = Field(description="one per horizon")


class InstrumentAge(BaseModel):
    instrument: str
    last_event_ts: int = Field(description="receive time of its latest book event or trade in the store")
    age_s: float = Field(description="seconds from then to now (large for a replayed recording)")
    stale: bool = Field(description="older than QF_API_STALE_AFTER_S")


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="ok; degraded (HTTP 200): an instrument's data is stale, or the store has none; "
        "unavailable (HTTP 503): the store cannot be queried"
    )
    store: str = Field(description="the store URL")
    detail: str | None = Field(description="why it is degraded or unavailable: which instruments, how old")
    instruments: list[InstrumentAge]


class ArbitrageQuote(BaseModel):
    instrument: str
    ts: int = Field(description="receive time of the book row the quote comes from")
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float
    age_ms: float


class Market(BaseModel):
    asset: str = Field(description="the common asset, BASE/QUOTE after aliases (USDT and USDC count as USD)")
    quotes: list[ArbitrageQuote]


class ArbitrageOpportunity(BaseModel):
    asset: str
    buy_instrument: str = Field(description="buy here, at its best ask")
    sell_instrument: str = Field(description="sell here, at its best bid")
    buy_price: float
    sell_price: float
    size: float = Field(description="min of the two top-level sizes")
    gross_bps: float = Field(description="1e4 * (sell - buy) / buy")
    net_bps: float = Field(description="after both venues' taker fees")
    net_profit: float = Field(description="size * net edge per unit, in the quote currency")
    buy_fee_bps: float
    sell_fee_bps: float
    buy_quote_age_ms: float
    sell_quote_age_ms: float


class ArbitrageView(BaseModel):
    ts: int = Field(description="when the opportunities were computed (wall clock)")
    taker_fees_bps: dict[str, float] = Field(description="the venues compared and their taker fees")
    markets: list[Market] = Field(description="every asset the compared venues quote, with its usable quotes")
    opportunities: list[ArbitrageOpportunity] = Field(description="best net edge first")


class VolForecast(BaseModel):
    ts: int = Field(description="local receive time of the event the forecast was made on (one a second)")
    seq: int
    horizon: Literal["10s", "60s"] = Field(description="the forecast is of the realized volatility over (ts, ts + it]")
    model: Literal["har", "ewma", "last"] = Field(
        description="har: HAR regression learned online; ewma: exponentially weighted variance; last: the last window"
    )
    forecast: float = Field(description="realized volatility forecast over the horizon, bps (sqrt of bps^2)")
    realized: float | None = Field(description="the realized volatility, once the horizon has passed, bps")
    matured_ts: int | None = Field(description="receive time of the event that matured it")


class LatestVolatility(BaseModel):
    instrument: str
    forecasts: list[VolForecast] = Field(description="made on the latest forecast event: one per horizon and model")


class VolatilityRows(BaseModel):
    instrument: str
    rows: list[VolForecast] = Field(description="ordered by (ts, seq, horizon, model)")
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


class BacktestSummary(BaseModel):
    id: str
    created: int = Field(description="when the backtest finished (wall clock)")
    strategy: str
    instrument: str
    start_ns: int = Field(description="receive time of the first event simulated")
    end_ns: int = Field(description="receive time of the last event simulated")
    net_pnl: float = Field(description="profit after fees and slippage, in the quote currency")
    trades: int = Field(description="round trips")
    sharpe: float | None = Field(description="annualised from the equity curve's sampling; null where undefined")
    win_rate: float | None = Field(description="share of winning trades, 0 to 1; null without trades")
    max_drawdown: float = Field(description="largest fall of equity from a peak, in the quote currency")
    profit_factor: float | None = Field(description="gross wins / gross losses; null without a losing trade")


class BacktestList(BaseModel):
    backtests: list[BacktestSummary] = Field(description="newest first")


class Backtest(BacktestSummary):
    recordings: list[str]
    settings: dict[str, Any] = Field(description="the strategy's parameters, costs, latency, queue model, capital")
    metrics: dict[str, Any] = Field(
        description="every metric by its plain name (docs/backtest.md); null where undefined"
    )
    benchmarks: dict[str, Any] | None = Field(
        description="what the strategy is measured against on the same data (e.g. TWAP and immediate execution)"
    )
