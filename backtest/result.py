"""What a backtest gives: its identity and settings, the metrics by plain names, the equity curve and
the fills; stored (the ``backtests`` table), reported (``backtest.report``) and printed by ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtest.orders import Fill


@dataclass
class BacktestResult:
    id: str  # unique per run: the key of its row in the ``backtests`` table
    created_ns: int  # wall-clock time the backtest finished
    strategy: str
    instrument: str
    recordings: list[str]
    start_ns: int  # receive time of the first and last event simulated
    end_ns: int
    settings: dict  # the strategy's params, costs, latency, queue model, capital, models folder...
    metrics: dict  # plain names: net_pnl, gross_pnl, fees, trades, sharpe, sortino, win_rate, max_drawdown...
    equity_ts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # sampling grid, ns
    equity: np.ndarray = field(default_factory=lambda: np.empty(0))  # marked to mid, money
    position: np.ndarray = field(default_factory=lambda: np.empty(0))  # at each sample
    fills: list[Fill] = field(default_factory=list)
    benchmarks: dict = field(default_factory=dict)  # e.g. the execution algorithm's TWAP and immediate runs' metrics
