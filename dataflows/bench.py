"""Throughput of the book stages on a recording, beside the cost of merely decoding it.

Both passes read the file from disk (gzip included): the decode-only pass then just parses
each message's JSON; the full pass runs parse + sync + book (``BookBuilder``). Their ratio says
how much of the flow's budget the book stages take beyond what any consumer of the file pays.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from dataflows.recordings import open_recording
from operators.pipeline import BookBuilder


@dataclass
class BenchResult:
    recording: str
    messages: int
    events: int
    repeats: int
    decode_only_msgs_per_s: float
    book_msgs_per_s: float
    book_events_per_s: float

    @property
    def ratio(self) -> float:
        return self.book_msgs_per_s / self.decode_only_msgs_per_s

    def to_dict(self) -> dict:
        return {**vars(self), "ratio": self.ratio}


def bench_books(path: str | Path, feed: str | None = None, repeats: int = 3) -> BenchResult:
    def decode_only() -> tuple[int, int]:
        messages = 0
        for raw in open_recording(path, feed):
            orjson.loads(raw.payload)
            messages += 1
        return messages, 0

    def full() -> tuple[int, int]:
        builder = BookBuilder()
        messages = events = 0
        for raw in open_recording(path, feed):
            events += len(builder.process(raw))
            messages += 1
        return messages, events

    decode_s, (messages, _) = _median_seconds(decode_only, repeats)
    full_s, (_, events) = _median_seconds(full, repeats)
    return BenchResult(
        recording=str(path),
        messages=messages,
        events=events,
        repeats=repeats,
        decode_only_msgs_per_s=messages / decode_s,
        book_msgs_per_s=messages / full_s,
        book_events_per_s=events / full_s,
    )


def _median_seconds(run: Callable[[], tuple[int, int]], repeats: int) -> tuple[float, tuple[int, int]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        counts = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), counts
