"""The store's tables, as data: column names and types, natural keys, designated timestamp.

Both backends build their DDL from this, and the flow produces rows as tuples in exactly the
column order given here. Times are integer nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, NamedTuple

from quantumflow.features import FEATURE_NAMES

SYMBOL = "SYMBOL"  # a short repeated string (instrument, feed, run id)
TIMESTAMP = "TIMESTAMP"  # int ns since the epoch, UTC
LONG = "LONG"  # 64-bit int
INT = "INT"  # 32-bit int
DOUBLE = "DOUBLE"  # NaN and None are both stored as NULL
STRING = "STRING"
BINARY = "BINARY"  # bytes
TYPES = (SYMBOL, TIMESTAMP, LONG, INT, DOUBLE, STRING, BINARY)

LEVELS = 10  # book levels per side in the book table
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")


class Column(NamedTuple):
    name: str
    type: str
    nullable: bool = False


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # the natural key: a row written again with the same key replaces the first
    timestamp: str = "ts"  # the designated timestamp

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    @property
    def per_instrument(self) -> bool:
        """Keyed by (instrument, ts, seq): the tables the per-instrument readers serve."""
        return self.key == ("instrument", "ts", "seq")


def _event_ids(update_id: bool = True) -> tuple[Column, ...]:
    ids = (
        Column("instrument", SYMBOL),
        Column("ts", TIMESTAMP),  # local receive time
        Column("seq", LONG),  # the event's number in its instrument's stream, assigned by the flow
        Column("exchange_ts", TIMESTAMP, nullable=True),
    )
    return (*ids, Column("update_id", LONG, nullable=True)) if update_id else ids


def _levels() -> tuple[Column, ...]:
    return tuple(
        Column(f"{side}_{what}_{k}", DOUBLE, nullable=True)
        for side in ("bid", "ask")
        for what in ("price", "size")
        for k in range(1, LEVELS + 1)
    )


EVENT_KEY = ("instrument", "ts", "seq")

BOOK = Table("book", (*_event_ids(), *_levels()), EVENT_KEY)
FEATURES = Table("features", (*_event_ids(), *(Column(n, DOUBLE, nullable=True) for n in FEATURE_NAMES)), EVENT_KEY)
TRADES = Table(
    "trades",
    (
        *_event_ids(update_id=False),
        Column("trade_id", STRING, nullable=True),
        Column("price", DOUBLE),
        Column("size", DOUBLE),
        Column("side", INT),  # +1 buy, -1 sell, 0 unknown (the taker's side)
    ),
    EVENT_KEY,
)
RESYNCS = Table("resyncs", (*_event_ids(), Column("reason", STRING)), EVENT_KEY)
DEAD_LETTERS = Table(
    "dead_letters",
    (
        Column("feed", SYMBOL),
        Column("instrument", SYMBOL, nullable=True),
        Column("ts", TIMESTAMP),  # local receive time
        Column("digest", LONG),  # digest(raw)
        Column("reason", STRING),
        Column("raw", BINARY),  # the exact bytes received
    ),
    ("feed", "ts", "digest"),
)
RUN_METRICS = Table(
    "run_metrics",
    (
        Column("run_id", SYMBOL),
        Column("ts", TIMESTAMP),  # wall clock
        Column("worker", INT),
        Column("events_in", LONG),
        Column("rows_out", LONG),
        Column("dead_letters", LONG),
        Column("events_per_s", DOUBLE, nullable=True),
        Column("lag_p50_ms", DOUBLE, nullable=True),
        Column("lag_p99_ms", DOUBLE, nullable=True),
        Column("decoder_errors", LONG, nullable=True),  # dead letters that are a decoder's bug, not bad input
        Column("source_errors", LONG, nullable=True),  # the process's Kafka errors so far, retried (each of its rows)
        Column("reconnects", LONG, nullable=True),  # a live run's venue reconnects so far, in the process
        Column("venue_resyncs", LONG, nullable=True),  # a live run's new snapshots asked of the venues after a gap
    ),
    ("run_id", "ts", "worker"),
)

PREDICTIONS = Table(
    "predictions",
    (
        Column("instrument", SYMBOL),
        Column("ts", TIMESTAMP),  # local receive time of the event the prediction was made on
        Column("seq", LONG),
        Column("horizon", SYMBOL),  # "10" (best bid/offer changes) or "1s" (time)
        Column("exchange_ts", TIMESTAMP, nullable=True),
        Column("p_down", DOUBLE),  # the ensemble's probabilities
        Column("p_flat", DOUBLE),
        Column("p_up", DOUBLE),
        Column("predicted", INT),  # -1 down, 0 flat, +1 up: the ensemble's decision (models/hedge.py)
        Column("confidence", DOUBLE),  # its probability
        Column("model_probs", STRING),  # JSON {model: [p_down, p_flat, p_up]}
        Column("model_weights", STRING),  # JSON {model: weight in the ensemble}
        Column("label", INT, nullable=True),  # the realized class, once the horizon has passed
        Column("return_bps", DOUBLE, nullable=True),  # the realized move the label is drawn from
        Column("matured_ts", TIMESTAMP, nullable=True),  # receive time of the event that matured it
    ),
    ("instrument", "ts", "seq", "horizon"),
)

VOL_FORECASTS = Table(
    "vol_forecasts",
    (
        Column("instrument", SYMBOL),
        Column("ts", TIMESTAMP),  # local receive time of the event the forecast was made on
        Column("seq", LONG),
        Column("horizon", SYMBOL),  # "10s", "60s"
        Column("model", SYMBOL),  # "har", "ewma", "last"
        Column("forecast", DOUBLE),  # realized volatility over (ts, ts + horizon], bps
        Column("realized", DOUBLE, nullable=True),  # what it was, once the horizon has passed
        Column("matured_ts", TIMESTAMP, nullable=True),  # receive time of the event that matured it
    ),
    ("instrument", "ts", "seq", "horizon", "model"),
)

# One row per backtest (``backtest.storage`` makes it). The JSON columns hold what varies by strategy; the
# headline metrics are columns of their own for SQL, NULL where undefined (a Sharpe ratio without variance).
BACKTESTS = Table(
    "backtests",
    (
        Column("ts", TIMESTAMP),  # when the backtest finished (wall clock)
        Column("id", SYMBOL),  # unique per backtest (a SYMBOL: a dedup key, which QuestDB refuses as STRING)
        Column("strategy", SYMBOL),
        Column("instrument", SYMBOL),
        Column("recordings", STRING),  # JSON list of the recordings' paths
        Column("start_ns", LONG),  # receive times of the first and last event simulated, exact ns
        Column("end_ns", LONG),
        Column("settings", STRING),  # JSON: strategy params, costs, latency, queue model, capital...
        Column("metrics", STRING),  # JSON {plain name: value}, null where undefined
        Column("benchmarks", STRING, nullable=True),  # JSON {name: {metric: value}}, e.g. TWAP and immediate
        Column("net_pnl", DOUBLE),
        Column("trades", LONG),
        Column("sharpe", DOUBLE, nullable=True),
        Column("win_rate", DOUBLE, nullable=True),
        Column("max_drawdown", DOUBLE),
        Column("profit_factor", DOUBLE, nullable=True),
    ),
    ("id", "ts"),
)
BACKTEST_JSON = ("recordings", "settings", "metrics", "benchmarks")  # the columns readers decode
COST_WORDS = ("fee", "slippage", "rebate", "cost")  # a backtest setting whose dotted name holds one is a cost


def backtest_costs(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The costs among a backtest's settings (its JSON-decoded ``settings``), nested ones by dotted name
    (``costs.fixed_fee``), in the settings' order."""
    costs: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            costs.update(backtest_costs(value, f"{name}."))
        elif any(word in name for word in COST_WORDS):
            costs[name] = value
    return costs


TABLES: dict[str, Table] = {
    t.name: t
    for t in (BOOK, FEATURES, TRADES, RESYNCS, DEAD_LETTERS, RUN_METRICS, PREDICTIONS, VOL_FORECASTS, BACKTESTS)
}


def digest(raw: bytes) -> int:
    """A stable 63-bit hash of raw bytes (BLAKE2b, 8 bytes, top bit cleared so it fits a signed LONG
    and never equals QuestDB's LONG null)."""
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


def _check(table: Table) -> None:
    names = table.names
    problems = [
        (len(set(names)) != len(names), "duplicate column names"),
        (not all(_NAME.match(n) for n in (table.name, *names)), "a name that is not a plain lower-case identifier"),
        (not all(c.type in TYPES for c in table.columns), "an unknown column type"),
        (not (set(table.key) <= set(names) and table.timestamp in table.key), "a key naming unknown columns"),
        (any(c.nullable for c in table.columns if c.name in table.key), "a nullable key column"),
    ]
    for bad, what in problems:
        if bad:
            raise ValueError(f"store table {table.name!r} has {what}")


for _table in TABLES.values():
    _check(_table)
