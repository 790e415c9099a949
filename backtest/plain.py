"""A backtest result as plain, JSON-safe data: what ``--json`` prints, ``result.json`` holds and the store keeps.

Metrics go by plain names (``net_pnl``, ``gross_pnl``, ``fees``, ``trades``, ``sharpe``, ``sortino``,
``win_rate``, ``max_drawdown``, ``profit_factor``...); a value that is undefined (NaN, or infinite like the
profit factor of a run without a losing trade) is null, so that the JSON is standard and the store's
NULL means the same."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backtest.result import BacktestResult


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists, tuples as lists, paths and other
    objects as text, and NaN or infinity as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def result_json(result: BacktestResult) -> dict[str, Any]:
    """The result's identity, settings, metrics and benchmarks (not its equity curve or fills: counts of them)."""
    return {
        "id": result.id,
        "created_ns": int(result.created_ns),
        "strategy": result.strategy,
        "instrument": result.instrument,
        "recordings": [str(r) for r in result.recordings],
        "start_ns": int(result.start_ns),
        "end_ns": int(result.end_ns),
        "settings": plain(result.settings),
        "metrics": plain(result.metrics),
        "benchmarks": plain(result.benchmarks),
        "equity_samples": len(result.equity),
        "fills": len(result.fills),
    }
