"""Backtest results built by hand (no engine), for the store, report and API tests."""

from __future__ import annotations

import math

import numpy as np

from backtest.orders import BUY, MAKER, SELL, TAKER, Fill
from backtest.result import BacktestResult

T0 = 1_723_075_200_000_000_000  # 2024-08-08T00:00:00Z
S = 10**9


def small_result(id="bt-1", created_ns=T0 + 3_600 * S, strategy="follow", instrument="binance:BTCUSDT", **metrics):
    """Ten seconds sampled each second on a capital of $100,000, a buy and a sell of 0.01 BTC; the numbers are
    made up to be told apart (the accounting is the engine's tests'), with undefined metrics among them (an
    infinite profit factor, a NaN shortfall)."""
    equity_ts = T0 + np.arange(11, dtype=np.int64) * S
    equity = 100_000.0 + np.array([0.0, -0.7, -1.5, -0.2, 0.1, 0.3, -0.4, 0.2, 0.25, 0.4, 0.38])
    position = np.array([0.0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.0, 0.0])
    fills = [
        Fill(1, T0 + S, BUY, 60_000.0, 0.01, TAKER, 0.06, 0.12, "entry"),
        Fill(2, T0 + 9 * S, SELL, 60_040.0, 0.01, MAKER, -0.01, 0.0, "exit"),
    ]
    values = {
        "net_pnl": 0.38,
        "gross_pnl": 0.4,
        "fees": 0.05,
        "slippage": 0.12,
        "trades": 1,
        "sharpe": 1.87,
        "sortino": math.inf,
        "win_rate": 1.0,
        "max_drawdown": 1.5,
        "max_drawdown_pct": 0.0015,
        "profit_factor": math.inf,
        "avg_trade_duration_s": 8.0,
        "turnover": 1200.4,
        "exposure": 0.8,
        "implementation_shortfall_bps": math.nan,
        **metrics,
    }
    return BacktestResult(
        id=id,
        created_ns=created_ns,
        strategy=strategy,
        instrument=instrument,
        recordings=["/data/binance/spot_btcusdt_20240809.gz"],
        start_ns=T0 + 123,
        end_ns=T0 + 10 * S + 456,
        settings={
            "capital": 100_000.0,
            "fee_per_trade": 10.0,
            "taker_fee_bps": 1.0,
            "maker_fee_bps": -0.2,
            "slippage_bps": 2.0,
            "latency_ms": 5.0,
            "queue": "risk-averse",
            "threshold": np.float64(0.6),
        },
        metrics=values,
        equity_ts=equity_ts,
        equity=equity,
        position=position,
        fills=fills,
        benchmarks={"twap": {"net_pnl": -1.25, "implementation_shortfall_bps": 1.5}, "immediate": {"net_pnl": -3.0}},
    )
