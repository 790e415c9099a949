"""Throughput on a recording, beside the cost of merely decoding it.

Every pass reads the file from disk (gzip included, ``open_recording``); parse, book and the keyed
steps take it in the replay source's batches (``BATCH_MESSAGES``), as the flow does. From parse on,
each pass adds a stage to the one before:

- **decode only**: each message's JSON parsed, nothing more;
- **parse**: the flow's parse step (``parse_batch``): each message decoded into market events,
  grouped by instrument;
- **book**: parse, then each instrument's sync state machine and its book (``BookSync``), no
  features (``SyncedBooks``, the path ``bench.hft_books`` sets beside hftbacktest);
- **keyed steps**: the flow's keyed steps in this process, parse -> key by instrument -> sync +
  book + features (``InstrumentStates``);
- **flow**: the predict flow up to the features on one Bytewax worker, parse -> book -> features
  -> a fresh SQLite store (the models' cost is measured apart, by ``bench_models``), with each
  event's latency from the source reading it to its feature row being committed;
- **store only**: the rows the flow writes (features, book, trades...), built beforehand, written
  to a fresh SQLite store by the store's writer, a batch per commit as the flow's sink writes them:
  what the store alone costs. A flow that decoded at decode-only's speed and stored these rows,
  doing nothing else, would reach ``flow_ceiling_ratio``; no flow into SQLite does better. Both of
  this pass's ratios set each store pass beside a decode-only pass run just before it: a
  machine's speed can drift during a run.

Ratios to decode-only, measured in the same run, say what each stage costs beyond what any
consumer of the file pays.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson

from bench.hft_books import compiled_passes, quantumflow_books
from dataflows.batches import InstrumentStates, derive_offline, parse_batch
from dataflows.collector import fewer_collections
from dataflows.recordings import open_recording
from dataflows.rows import TableRows, derived_rows
from dataflows.run import RunSummary, run_flow
from dataflows.run_settings import RunSettings
from dataflows.sources import BATCH_MESSAGES
from operators.instrument import Derived
from quantumflow.events import RawMessage
from store import open_store


@dataclass
class BenchResult:
    recording: str
    messages: int
    events: int
    repeats: int
    decode_only_msgs_per_s: float
    parse_msgs_per_s: float
    parse_events_per_s: float
    sync_book_msgs_per_s: float  # parse + sync + book, no features
    sync_book_events_per_s: float
    book_msgs_per_s: float  # the keyed steps: parse + sync + book + features
    book_events_per_s: float
    flow_events_per_s: float  # one worker, into SQLite
    flow_latency_p50_ms: float
    flow_latency_p99_ms: float
    feature_rows: int
    store_events_per_s: float  # the flow's rows alone, built beforehand, written to SQLite
    # the two below are medians over the repeats of the store pass beside the decode-only pass run just before it
    store_ratio: float
    flow_ceiling_ratio: float  # a flow that only decoded and stored (``ceiling_ratio``)
    compiled: bool = True  # bench.hft_books.compiled_passes()

    @property
    def parse_ratio(self) -> float:
        return self.parse_msgs_per_s / self.decode_only_msgs_per_s

    @property
    def sync_book_ratio(self) -> float:
        return self.sync_book_msgs_per_s / self.decode_only_msgs_per_s

    @property
    def ratio(self) -> float:
        """The keyed steps' (with features)."""
        return self.book_msgs_per_s / self.decode_only_msgs_per_s

    @property
    def flow_ratio(self) -> float:
        return self.flow_events_per_s / self.decode_only_msgs_per_s

    def to_dict(self) -> dict:
        return {
            **vars(self),
            "parse_ratio": self.parse_ratio,
            "sync_book_ratio": self.sync_book_ratio,
            "ratio": self.ratio,
            "flow_ratio": self.flow_ratio,
        }


@contextlib.contextmanager
def each_warning_once(logger: str = "dataflows.recordings") -> Iterator[None]:
    """A bench reads its recording again for every pass: what the reading warns of (a cut file) is said
    the first time only."""
    said: set[str] = set()

    def first_time(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in said:
            return False
        said.add(message)
        return True

    log = logging.getLogger(logger)
    log.addFilter(first_time)
    try:
        yield
    finally:
        log.removeFilter(first_time)


def bench_books(path: str | Path, feed: str | None = None, repeats: int = 3) -> BenchResult:
    def decode_only() -> tuple[int, int]:
        messages = 0
        for raw in open_recording(path, feed):
            if type(raw) is RawMessage:  # not a bad line's dead letter
                with contextlib.suppress(orjson.JSONDecodeError):  # a dead letter in the flow, not the bench's end
                    orjson.loads(raw.payload)
                messages += 1
        return messages, 0

    def parse() -> tuple[int, int]:
        messages = events = 0
        raws = iter(open_recording(path, feed))
        while chunk := list(islice(raws, BATCH_MESSAGES)):
            events += sum(len(batch.events) for batch in parse_batch(chunk).batches)
            messages += sum(type(raw) is RawMessage for raw in chunk)
        return messages, events

    def sync_book() -> tuple[int, int]:
        books = quantumflow_books(path, feed)
        return books.messages, books.events

    def full() -> tuple[int, int]:
        messages = events = 0
        for step in InstrumentStates().replay(open_recording(path, feed)):
            messages += step.messages
            events += step.events
        return messages, events

    decode_s, (messages, _) = _median_seconds(decode_only, repeats)
    parse_s, (_, parse_events) = _median_seconds(parse, repeats)
    sync_book_s, (_, sync_book_events) = _median_seconds(sync_book, repeats)
    full_s, (_, events) = _median_seconds(full, repeats)
    flow = _median_flow(path, feed, repeats)
    tables = [batch.tables for batch in _flow_rows(path, feed)]
    pairs = [(_median_seconds(decode_only, 1)[0], written_s(tables)) for _ in range(repeats)]
    store_s = statistics.median(store for _, store in pairs)
    return BenchResult(
        recording=str(path),
        messages=messages,
        events=events,
        repeats=repeats,
        decode_only_msgs_per_s=messages / decode_s,
        parse_msgs_per_s=messages / parse_s,
        parse_events_per_s=parse_events / parse_s,
        sync_book_msgs_per_s=messages / sync_book_s,
        sync_book_events_per_s=sync_book_events / sync_book_s,
        book_msgs_per_s=messages / full_s,
        book_events_per_s=events / full_s,
        flow_events_per_s=flow.events_per_s,
        flow_latency_p50_ms=flow.latency_p50_ms,
        flow_latency_p99_ms=flow.latency_p99_ms,
        feature_rows=flow.rows.get("features", 0),
        store_events_per_s=events / store_s,
        store_ratio=statistics.median(events / store / (messages / decode) for decode, store in pairs),
        flow_ceiling_ratio=statistics.median(ceiling_ratio(*pair, messages, events) for pair in pairs),
        compiled=compiled_passes(),
    )


def ceiling_ratio(decode_s: float, store_s: float, messages: int, events: int) -> float:
    """The ratio to decode-only of a flow that decoded the messages in ``decode_s`` and wrote the rows of
    their ``events`` in ``store_s``, doing nothing else."""
    return events / (decode_s + store_s) / (messages / decode_s)


def _flow_rows(path: str | Path, feed: str | None) -> list[TableRows]:
    """The rows the flow writes of ``path``, a ``TableRows`` per instrument batch (dead letters' too)."""
    return [
        derived_rows(item, 0, len(item.frame)) if type(item) is Derived else item
        for item in derive_offline([path], feed)
    ]


def written_s(batches: Sequence[Mapping[str, Sequence]]) -> float:
    """Seconds to write each batch's rows (table -> rows) to a fresh SQLite store in one commit, as the
    flow's sink writes them."""
    with tempfile.TemporaryDirectory(prefix="qf-bench-store-") as folder, fewer_collections():
        writer = open_store(f"sqlite:///{folder}/bench.db").writer()
        try:
            started = time.perf_counter()
            for tables in batches:
                for table, rows in tables.items():
                    if rows:
                        writer.queue(table, rows)
                writer.flush()
            return time.perf_counter() - started
        finally:
            writer.close()


def _median_flow(path: str | Path, feed: str | None, repeats: int) -> RunSummary:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="qf-bench-") as folder:
            runs.append(
                run_flow(RunSettings((path,), store=f"sqlite:///{folder}/bench.db", feed=feed, predictions=False))
            )
    return sorted(runs, key=lambda run: run.events_per_s)[len(runs) // 2]


def _median_seconds(run: Callable[[], tuple[int, int]], repeats: int) -> tuple[float, tuple[int, int]]:
    times = []
    for _ in range(repeats):
        with fewer_collections():  # every in-process pass as a flow run sets the collector
            start = time.perf_counter()
            counts = run()
            times.append(time.perf_counter() - start)
    return statistics.median(times), counts
