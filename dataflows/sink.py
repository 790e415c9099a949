"""The store sink: each worker upserts the rows its instruments derive, one transaction a batch,
and reports the run's counters and latency to ``run_metrics``."""

from __future__ import annotations

import time
from collections import defaultdict

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from dataflows.metrics import FlowMetrics
from dataflows.rows import TableRows
from store import open_store

METRICS_INTERVAL_S = 5.0


class StoreSink(DynamicSink[TableRows]):
    def __init__(self, url: str | None, run_id: str, metrics: FlowMetrics | None = None) -> None:
        self.url = url
        self.run_id = run_id
        self.metrics = metrics or FlowMetrics()
        open_store(url)  # a bad URL is an error before the flow starts

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StorePartition:
        return _StorePartition(self, worker_index)


class _StorePartition(StatelessSinkPartition[TableRows]):
    def __init__(self, sink: StoreSink, worker: int) -> None:
        self._writer = open_store(sink.url).writer()
        self._run_id = sink.run_id
        self._run_metrics = sink.metrics  # the whole run's, in this process
        self._metrics = FlowMetrics()  # this worker's, for its run_metrics rows
        self._worker = worker
        self._last_report = time.monotonic()

    def write_batch(self, items: list[TableRows]) -> None:
        tables: dict[str, list[tuple]] = defaultdict(list)
        for item in items:
            for table, rows in item.tables.items():
                tables[table] += rows
        for table, rows in tables.items():
            if rows:
                self._writer.write(table, rows)
        self._writer.flush()
        done = time.perf_counter_ns()
        for item in items:
            counts = {table: len(rows) for table, rows in item.tables.items()}
            self._metrics.record(item.events, counts, done - item.read_ns, item.decoder_errors)
            self._run_metrics.record(item.events, counts, done - item.read_ns, item.decoder_errors)
        if time.monotonic() - self._last_report >= METRICS_INTERVAL_S:
            self._report()

    def close(self) -> None:
        self._report()
        self._writer.close()

    def _report(self) -> None:
        m = self._metrics
        row = (
            self._run_id,
            time.time_ns(),
            self._worker,
            m.events_in,
            m.rows_out,
            m.dead_letters,
            m.events_per_s(),
            m.latency_ms(0.5),
            m.latency_ms(0.99),
        )
        self._writer.write("run_metrics", [row])
        self._writer.flush()
        self._last_report = time.monotonic()
