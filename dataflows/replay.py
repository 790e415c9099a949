"""Replay recordings through parse, sync and book, and summarise what came out.

This is the plain-Python driver of the book stages (the Bytewax predict flow runs the same
``operators`` code); it backs ``quantumflow replay``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dataflows.recordings import Recording
from operators.pipeline import BookBuilder
from quantumflow.events import DeadLetter, Resync

TOP_LEVELS = 10


@dataclass
class InstrumentSummary:
    instrument: str
    state: str
    sequence: int | None
    buffered: int
    discarded_before_sync: int
    top_of_book: dict | None
    levels: dict | None


@dataclass
class ReplaySummary:
    messages: int = 0
    quiet_messages: int = 0  # valid messages with no market data (heartbeats, acks)
    skipped_lines: int = 0
    events: Counter = field(default_factory=Counter)
    resyncs: Counter = field(default_factory=Counter)
    dead_letters: Counter = field(default_factory=Counter)
    instruments: list[InstrumentSummary] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "messages": self.messages,
            "quiet_messages": self.quiet_messages,
            "skipped_lines": self.skipped_lines,
            "events": dict(self.events),
            "resyncs": {"total": sum(self.resyncs.values()), "reasons": dict(self.resyncs)},
            "dead_letters": {"total": sum(self.dead_letters.values()), "reasons": dict(self.dead_letters)},
            "instruments": [vars(i) for i in self.instruments],
        }


def replay(
    recordings: Iterable[Recording],
    builder: BookBuilder | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Replay each recording in turn. ``on_progress`` gets the bytes read since its last call."""
    builder = builder or BookBuilder()
    summary = ReplaySummary()
    for recording in recordings:
        reported = 0
        for raw in recording:
            summary.messages += 1
            for output in builder.process(raw):
                kind = type(output)
                if kind is DeadLetter:
                    summary.dead_letters[_reason_kind(output.reason)] += 1
                elif kind is Resync:
                    summary.resyncs[_reason_kind(output.reason)] += 1
                summary.events[kind.__name__] += 1
            if on_progress is not None and summary.messages % 1024 == 0:
                position = recording.bytes_read
                on_progress(position - reported)
                reported = position
        if on_progress is not None:
            on_progress(recording.size - reported)
        summary.skipped_lines += recording.skipped_lines
    summary.quiet_messages = builder.quiet_messages
    summary.instruments = [_instrument_summary(sync) for sync in builder.syncs.values()]
    return summary


def _reason_kind(reason: str) -> str:
    """Group reasons by their kind: the text before the first colon."""
    return reason.split(":", 1)[0]


def _instrument_summary(sync) -> InstrumentSummary:
    book = sync.book
    top = book.top_of_book() if book.ready else None
    levels = book.top_levels(TOP_LEVELS) if book.ready else None
    return InstrumentSummary(
        instrument=sync.instrument,
        state=book.describe(),
        sequence=book.sequence,
        buffered=len(sync.buffer),
        discarded_before_sync=sync.discarded,
        top_of_book=top._asdict() if top else None,
        levels={name: [None if v != v else float(v) for v in values] for name, values in levels._asdict().items()}
        if levels
        else None,
    )
