"""Hand-built store rows for the store's tests, and what a reader gives back for them.

Times are whole microseconds (QuestDB keeps no finer): offsets from T0 in US or MS."""

from __future__ import annotations

import json
import math

from store import digest
from store.schema import FEATURES, TABLES

BTC, ETH = "binance:BTCUSDT", "coinbase:ETH-USD"
T0 = 1_723_075_200_123_456_000  # 2024-08-08, ns
US, MS = 1_000, 1_000_000
NAN = math.nan


def book_row(instrument, ts, seq, bid=100.0, levels=10):
    bids = [bid - k for k in range(levels)] + [NAN] * (10 - levels)
    asks = [bid + 1 + k for k in range(levels)] + [None] * (10 - levels)
    return (instrument, ts, seq, ts - 5 * MS, 7_000 + seq, *bids, *[1.0] * 10, *asks, *[2.0] * 10)


def feature_row(instrument, ts, seq, mid=100.5, **values):
    row = [NAN] * len(FEATURES.columns)
    row[:5] = [instrument, ts, seq, None, None]
    names = FEATURES.names
    for name, value in {"mid": mid, "spread": 1.0, **values}.items():
        row[names.index(name)] = value
    return tuple(row)


def trade_row(instrument, ts, seq, price=100.0, size=0.5, side=1, trade_id="t1"):
    return (instrument, ts, seq, ts - MS, trade_id, price, size, side)


def prediction_row(instrument, ts, seq, horizon, p_up=0.5, label=None):
    p_down = p_flat = (1 - p_up) / 2
    probs = {"lstm": [p_down, p_flat, p_up], "river": [1 / 3, 1 / 3, 1 / 3]}
    matured = (label, 1.5 * label, ts + 10**9) if label is not None else (None, None, None)
    predicted, confidence = (1, p_up) if p_up > p_down else (0, p_flat)
    weights = json.dumps({"lstm": 0.7, "river": 0.3})
    return (instrument, ts, seq, horizon, ts - US, p_down, p_flat, p_up, predicted, confidence,
            json.dumps(probs), weights, *matured)  # fmt: skip


def vol_forecast_row(instrument, ts, seq, horizon, model="har", forecast=1.5, realized=None):
    matured = (realized, ts + 10**10) if realized is not None else (None, None)
    return (instrument, ts, seq, horizon, model, forecast, *matured)


def backtest_row(id, ts, strategy="follow", instrument=BTC, sharpe=1.5):
    shown = sharpe if math.isfinite(sharpe) else None
    metrics = json.dumps({"net_pnl": -2.5, "trades": 4, "sharpe": shown, "profit_factor": None})
    return (ts, id, strategy, instrument, '["a.gz"]', ts - 10**9, ts - 1, '{"capital":1e5}', metrics, None,
            -2.5, 4, sharpe, 0.25, 3.0, None)  # fmt: skip


RAW = b'{"e":"depthUpdate","b":[["1e400",-1]]}\n\x00\xff'
SAMPLES = {
    "book": [book_row(BTC, T0, 1), book_row(BTC, T0 + US, 2, levels=3)],
    "features": [feature_row(BTC, T0, 1), feature_row(ETH, T0 + 5 * US, 1, mid=NAN)],
    "trades": [trade_row(BTC, T0, 3), trade_row(BTC, T0, 4, side=-1, trade_id=None)],
    "resyncs": [(BTC, T0 + 9 * US, 5, None, 123, "gap: U=7 after u=5")],
    "dead_letters": [
        ("binance", BTC, T0 + 2 * US, digest(RAW), "negative size", RAW),
        ("kraken", None, T0 + 3 * US, digest(b"x"), "malformed", b"x"),
    ],
    "run_metrics": [
        ("run1", T0, 0, 1000, 990, 10, 51_000.5, 0.4, 2.5, 1, 0, 2, 1),
        ("run1", T0, 1, 5, 5, 0, None, NAN, NAN, None, None, None, None),
    ],
    "predictions": [prediction_row(BTC, T0, 1, "10", label=1), prediction_row(BTC, T0, 1, "1s", p_up=0.2)],
    "vol_forecasts": [vol_forecast_row(BTC, T0, 1, "10s", realized=2.25), vol_forecast_row(BTC, T0, 1, "60s", "ewma")],
    "backtests": [backtest_row("bt-2", T0), backtest_row("bt-1", T0 + MS, "market-maker", ETH, sharpe=NAN)],
}


def expected(table, rows):
    """What the store gives back: dicts by column name, NaN as None, ordered by the key."""
    spec = TABLES[table]
    out = [
        {n: None if isinstance(v, float) and math.isnan(v) else v for n, v in zip(spec.names, row, strict=True)}
        for row in rows
    ]
    return sorted(out, key=lambda r: tuple(r[k] for k in spec.key))
