"""Throughput on a recording, beside the cost of merely decoding it.

Every pass reads the file from disk (gzip included): the decode-only pass then just parses
each message's JSON; the book pass runs the flow's keyed steps in this process, parse -> key by
instrument -> sync + book + features (``InstrumentStates``, in the flow's batches); the flow pass
runs the predict flow up to the features on one Bytewax worker, parse -> book -> features -> a
fresh SQLite store (the models' cost is measured apart, by ``bench_models``), and measures each
event's latency from the source reading it to its feature row being committed. Ratios to
decode-only say what each stage costs beyond what any consumer of the file pays.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from dataflows.batches import InstrumentStates
from dataflows.recordings import open_recording
from dataflows.run import RunSummary, run_flow
from dataflows.run_settings import RunSettings
from quantumflow.events import RawMessage


@dataclass
class BenchResult:
    recording: str
    messages: int
    events: int
    repeats: int
    decode_only_msgs_per_s: float
    book_msgs_per_s: float
    book_events_per_s: float
    flow_events_per_s: float  # one worker, into SQLite
    flow_latency_p50_ms: float
    flow_latency_p99_ms: float
    feature_rows: int

    @property
    def ratio(self) -> float:
        return self.book_msgs_per_s / self.decode_only_msgs_per_s

    @property
    def flow_ratio(self) -> float:
        return self.flow_events_per_s / self.decode_only_msgs_per_s

    def to_dict(self) -> dict:
        return {**vars(self), "ratio": self.ratio, "flow_ratio": self.flow_ratio}


def bench_books(path: str | Path, feed: str | None = None, repeats: int = 3) -> BenchResult:
    def decode_only() -> tuple[int, int]:
        messages = 0
        for raw in open_recording(path, feed):
            if type(raw) is RawMessage:  # not a bad line's dead letter
                orjson.loads(raw.payload)
                messages += 1
        return messages, 0

    def full() -> tuple[int, int]:
        messages = events = 0
        for step in InstrumentStates().replay(open_recording(path, feed)):
            messages += step.messages
            events += step.events
        return messages, events

    decode_s, (messages, _) = _median_seconds(decode_only, repeats)
    full_s, (_, events) = _median_seconds(full, repeats)
    flow = _median_flow(path, feed, repeats)
    return BenchResult(
        recording=str(path),
        messages=messages,
        events=events,
        repeats=repeats,
        decode_only_msgs_per_s=messages / decode_s,
        book_msgs_per_s=messages / full_s,
        book_events_per_s=events / full_s,
        flow_events_per_s=flow.events_per_s,
        flow_latency_p50_ms=flow.latency_p50_ms,
        flow_latency_p99_ms=flow.latency_p99_ms,
        feature_rows=flow.rows.get("features", 0),
    )


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
        start = time.perf_counter()
        counts = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), counts
