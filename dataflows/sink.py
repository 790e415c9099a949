"""The store sink: each worker upserts the rows its instruments derive, one transaction a batch,
and reports the run's counters and latency to ``run_metrics``.

A write the store refuses is retried ``QF_STORE_RETRIES`` times, waiting ``QF_STORE_BACKOFF_S``
and twice as long before each next try. When the retries are spent the sink never raises (an
exception in a sink aborts Bytewax's Rust side): it records a ``StoreStopped`` in the run's
metrics, drops whatever reaches it afterwards, and ``stop_source_when_asked`` ends the
source at its next batch, so the flow winds down with what it had committed kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from dataflows.metrics import FlowMetrics
from dataflows.rows import TableRows
from store import StoreError, Writer, open_store
from store.schema import TABLES
from store.url import backoff_s, retries

METRICS_INTERVAL_S = 5.0
PER_INSTRUMENT = tuple(name for name, spec in TABLES.items() if spec.per_instrument)

log = logging.getLogger("quantumflow.flow")


class StoreStopped(StoreError):
    """The store failed while the flow ran, after its retries; what was committed before stays."""

    def __init__(self, url: str, cause: StoreError, tries: int, events: int, committed: dict[str, int]) -> None:
        self.url, self.cause, self.tries, self.events = url, cause, tries, events
        self.committed = dict(sorted(committed.items()))  # instrument -> last committed receive time (ns)
        self.__cause__ = cause  # kept in the traceback the command line logs
        reason = " ".join(str(cause).split())
        super().__init__(
            f"store {url} failed while the flow ran ({reason}; {tries} tries); the flow stopped with "
            f"{events:,} events committed{self._resume()}. Rows are upserted by key, so replaying the same "
            "recordings again is safe"
        )

    def _resume(self) -> str:
        if not self.committed:
            return ""
        times = ", ".join(f"{name} {_iso(ns)}" for name, ns in self.committed.items())
        return f", each instrument's rows up to receive time: {times}"


def stop_source_when_asked(metrics: FlowMetrics, on_progress: Callable[[int], None] | None) -> Callable[[int], None]:
    """The source's progress callback, ending the source (StopIteration) once the sink has stopped or the
    run was asked to stop (Ctrl-C, SIGTERM): the flow then winds down, committing what it had."""

    def progress(done: int) -> None:
        if metrics.store_failure is not None or metrics.stop_requested is not None:
            raise StopIteration
        if on_progress is not None:
            on_progress(done)

    return progress


class StoreSink(DynamicSink[TableRows]):
    def __init__(self, url: str | None, run_id: str, metrics: FlowMetrics | None = None) -> None:
        self.store = open_store(url)
        self.store.check()  # a store that cannot be used is an error before the flow starts
        self.url = self.store.url
        self.run_id = run_id
        self.metrics = metrics or FlowMetrics()
        self.retries = retries()
        self.backoff_s = backoff_s()
        self._lock = threading.Lock()
        self._committed: dict[str, int] = {}  # instrument -> last committed receive time, over the workers

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StorePartition:
        return _StorePartition(self, worker_index)

    def committed(self, items: list[TableRows]) -> None:
        with self._lock:
            for item in items:
                for table in PER_INSTRUMENT:
                    rows = item.tables.get(table)
                    if rows:  # an item's rows are one instrument's, in time order
                        instrument, ts = rows[-1][0], rows[-1][1]
                        self._committed[instrument] = max(ts, self._committed.get(instrument, ts))

    def stop(self, cause: StoreError) -> None:
        with self._lock:
            if self.metrics.store_failure is None:
                failure = StoreStopped(self.url, cause, self.retries + 1, self.metrics.events_in, self._committed)
                self.metrics.store_failure = failure
                log.error("%s", failure)


class _StorePartition(StatelessSinkPartition[TableRows]):
    def __init__(self, sink: StoreSink, worker: int) -> None:
        self._sink = sink
        self._writer: Writer | None = None  # opened by the first write, and again after a failed one
        self._run_metrics = sink.metrics  # the whole run's, in this process
        self._metrics = FlowMetrics()  # this worker's, for its run_metrics rows
        self._worker = worker
        self._last_report = time.monotonic()

    def write_batch(self, items: list[TableRows]) -> None:
        if self._run_metrics.store_failure is not None:
            return  # stopping: the source ends at its next batch
        tables: dict[str, list[tuple]] = defaultdict(list)
        for item in items:
            for table, rows in item.tables.items():
                tables[table] += rows
        if not self._commit(tables):
            return
        done = time.perf_counter_ns()
        self._sink.committed(items)
        for item in items:
            counts = {table: len(rows) for table, rows in item.tables.items()}
            self._metrics.record(item.events, counts, done - item.read_ns, item.decoder_errors)
            self._run_metrics.record(item.events, counts, done - item.read_ns, item.decoder_errors)
        if time.monotonic() - self._last_report >= METRICS_INTERVAL_S:
            self._report()

    def close(self) -> None:
        if self._run_metrics.store_failure is None:
            self._report()
        if self._writer is not None:
            self._writer.discard()
            try:
                self._writer.close()
            except Exception:  # raising here would abort the flow's Rust side; the log keeps it
                log.warning("closing the store writer failed", exc_info=True)

    def _report(self) -> None:
        m = self._metrics
        row = (
            self._sink.run_id,
            time.time_ns(),
            self._worker,
            m.events_in,
            m.rows_out,
            m.dead_letters,
            m.events_per_s(),
            m.latency_ms(0.5),
            m.latency_ms(0.99),
            m.decoder_errors,
            self._run_metrics.kafka_errors,
            self._run_metrics.reconnects,
            self._run_metrics.venue_resyncs,
        )
        self._commit({"run_metrics": [row]})
        self._last_report = time.monotonic()

    def _commit(self, tables: dict[str, list[tuple]]) -> bool:
        """Write the rows in one flush, retried with backoff; False (and the sink stopped) when the
        store still refuses them after the last retry."""
        queued = False
        for attempt in range(self._sink.retries + 1):
            try:
                if self._writer is None:
                    self._writer = self._sink.store.writer()
            except StoreError as error:
                if self._give_up(attempt, error):
                    return False
                continue
            if not queued:  # outside the retries: a malformed row is a bug, not a store failure
                for table, rows in tables.items():
                    self._writer.queue(table, rows)
                queued = True
            try:
                self._writer.flush()  # what a failed flush did not send stays queued for the next try
                return True
            except StoreError as error:
                if self._give_up(attempt, error):
                    return False
        return False

    def _give_up(self, attempt: int, error: StoreError) -> bool:
        if attempt >= self._sink.retries:
            self._sink.stop(error)
            return True
        wait = self._sink.backoff_s * 2**attempt
        log.warning(
            "store %s: %s; retry %d of %d in %.3g s", self._sink.url, error, attempt + 1, self._sink.retries, wait
        )
        time.sleep(wait)
        return False


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
