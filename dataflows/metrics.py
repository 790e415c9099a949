"""Counters and latencies of a running flow, kept by each worker's sink."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np


class FlowMetrics:
    """Events in, rows out, dead letters (and among them, counted apart, decoder errors: bugs, not
    bad input), and per-event latency from the source reading a message to its rows being
    committed to the store; and the store failure that stopped the run, if one did. Shared by the
    workers of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events_in = 0
        self.rows_out = 0
        self.dead_letters = 0
        self.decoder_errors = 0  # among the dead letters
        self.rows_by_table: Counter[str] = Counter()
        self.started = time.perf_counter()
        self._latencies_ns: list[int] = []
        self._weights: list[int] = []
        self.store_failure: Exception | None = None  # set by the sink when the store failed for good
        self.stop_requested: str | None = None  # why the run was asked to stop (a signal), if it was
        self.source_failure: Exception | None = None  # set by a live source whose venue clients failed for good
        self.reconnects = 0  # a live source's venue connections made again (drops, stalls, age limit)
        self.venue_resyncs = 0  # a live source's new snapshots asked of the venues after a gap
        self.venue_error: str | None = None  # a live source's last connection error, while it lasts
        self.kafka_errors = 0  # errors talking to Kafka, retried (a broker gone away), or messages undelivered
        self.last_kafka_error: str | None = None
        self.lost_messages = 0  # Kafka offsets that had left the log (retention) before they were read

    def record(self, events: int, rows: dict[str, int], latency_ns: int, decoder_errors: int = 0) -> None:
        """One item written: the events it accounts for, its rows per table, how long ago its
        messages were read (counted once per feature row it made), and its decoder errors."""
        with self._lock:
            self.decoder_errors += decoder_errors
            self.events_in += events
            self.rows_by_table.update(rows)
            self.rows_out += sum(rows.values())
            self.dead_letters += rows.get("dead_letters", 0)
            if rows.get("features"):
                self._latencies_ns.append(latency_ns)
                self._weights.append(rows["features"])

    def messages_lost(self, count: int) -> None:
        with self._lock:
            self.lost_messages += count

    def kafka_error(self, what: str) -> None:
        with self._lock:
            self.kafka_errors += 1
            self.last_kafka_error = what

    def latency_ms(self, quantile: float) -> float:
        """The ``quantile`` of per-feature-row latency, in milliseconds (NaN before any row)."""
        with self._lock:
            if not self._weights:
                return float("nan")
            latencies = np.asarray(self._latencies_ns, dtype=float)
            weights = np.asarray(self._weights, dtype=float)
        order = np.argsort(latencies)
        cumulative = np.cumsum(weights[order])
        index = np.searchsorted(cumulative, quantile * cumulative[-1])
        return float(latencies[order][min(index, len(order) - 1)] / 1e6)

    def events_per_s(self) -> float:
        return self.events_in / max(time.perf_counter() - self.started, 1e-9)
