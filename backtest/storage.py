"""Backtest results into the store's ``backtests`` table (one row per backtest, keyed by its id and time)."""

from __future__ import annotations

import json
import math
from typing import Any

from backtest.plain import result_json
from backtest.result import BacktestResult
from store import open_store
from store.schema import TABLES

REQUIRED = ("net_pnl", "trades", "max_drawdown")  # always defined, even for a backtest without a trade


def result_row(result: BacktestResult) -> tuple[Any, ...]:
    """The result as a ``backtests`` row, in the table's column order. ValueError, naming it, for a metric the
    row needs that is missing or undefined."""
    data = result_json(result)
    for name in ("id", "strategy", "instrument"):
        if not isinstance(data[name], str) or not data[name]:
            raise ValueError(f"a backtest's {name} must be a non-empty string, not {data[name]!r}")
    metrics = data["metrics"]
    for name in REQUIRED:
        if metrics.get(name) is None:
            raise ValueError(f"backtest {result.id!r}: metric {name!r} is missing or not finite")
    if not math.isclose(metrics["trades"], round(metrics["trades"])):
        raise ValueError(f"backtest {result.id!r}: trades must be a whole number, not {metrics['trades']!r}")

    def number(name: str) -> float | None:
        value = metrics.get(name)
        return None if value is None else float(value)

    values = {
        "ts": data["created_ns"],
        "id": data["id"],
        "strategy": data["strategy"],
        "instrument": data["instrument"],
        "recordings": _json(data["recordings"]),
        "start_ns": data["start_ns"],
        "end_ns": data["end_ns"],
        "settings": _json(data["settings"]),
        "metrics": _json(metrics),
        "benchmarks": _json(data["benchmarks"]) if data["benchmarks"] else None,
        "net_pnl": number("net_pnl"),
        "trades": round(metrics["trades"]),
        "sharpe": number("sharpe"),
        "win_rate": number("win_rate"),
        "max_drawdown": number("max_drawdown"),
        "profit_factor": number("profit_factor"),
    }
    return tuple(values[name] for name in TABLES["backtests"].names)


def save(result: BacktestResult, store_url: str | None = None) -> str:
    """Store the result (the store at ``store_url``, else ``QF_STORE``, else the default SQLite file); the
    store's URL. Saving it again replaces its row. StoreConfigError for a bad URL, StoreUnavailable for a
    store that cannot be used, each in one line."""
    row = result_row(result)
    store = open_store(store_url)
    store.check()
    with store.writer() as writer:
        writer.write("backtests", [row])
    return store.url


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))
