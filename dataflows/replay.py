"""Replay recordings through the flow's parse, sync and book steps, and summarise what came out.

The books are kept by the flow's own path (``dataflows.batches.InstrumentStates``: parse, key by
instrument, each instrument's ``InstrumentState``), fed the merged recordings in the flow's
batches; it backs ``quantumflow replay``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dataflows.batches import InstrumentStates
from dataflows.recordings import Recording
from dataflows.sources import merged
from operators.feeds import DECODER_ERROR, is_decoder_error
from operators.sync import Output
from quantumflow.events import DeadLetter, MarketEvent, RawMessage, Resync

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
    dead_letters: Counter = field(default_factory=Counter)  # by reason, decoder errors included
    decoder_errors: int = 0  # dead letters that are a decoder's bug, not bad input
    instruments: list[InstrumentSummary] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "messages": self.messages,
            "quiet_messages": self.quiet_messages,
            "skipped_lines": self.skipped_lines,
            "events": dict(self.events),
            "resyncs": {"total": sum(self.resyncs.values()), "reasons": dict(self.resyncs)},
            "dead_letters": {"total": sum(self.dead_letters.values()), "reasons": dict(self.dead_letters)},
            "decoder_errors": self.decoder_errors,
            "instruments": [vars(i) for i in self.instruments],
        }

    def observe(self, event: MarketEvent, raw: RawMessage, outputs: list[Output]) -> None:
        """What the sync made of one event (an ``Observer``)."""
        for output in outputs:
            kind = type(output)
            if kind is DeadLetter:
                self.add_dead_letter(output)
            elif kind is Resync:
                self.resyncs[_reason_kind(output.reason)] += 1
            self.events[kind.__name__] += 1

    def add_dead_letter(self, letter: DeadLetter) -> None:
        if is_decoder_error(letter):
            self.decoder_errors += 1
            self.dead_letters[DECODER_ERROR] += 1
        else:
            self.dead_letters[_reason_kind(letter.reason)] += 1


def replay(recordings: Sequence[Recording], on_progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Replay the recordings merged by receive time, as the flow reads them. ``on_progress`` gets
    the bytes read since its last call."""
    summary = ReplaySummary()
    states = InstrumentStates(observe=summary.observe)
    reported = 0
    for step in states.replay(merged(recordings)):
        summary.messages += step.messages
        summary.quiet_messages += step.quiet
        for letter in step.dead_letters:
            summary.add_dead_letter(letter)
            summary.events[DeadLetter.__name__] += 1
        if on_progress is not None:
            position = sum(recording.bytes_read for recording in recordings)
            on_progress(position - reported)
            reported = position
    if on_progress is not None:
        on_progress(sum(recording.size for recording in recordings) - reported)
    summary.skipped_lines = sum(recording.skipped_lines for recording in recordings)
    summary.instruments = [_instrument_summary(state.sync) for state in states.states.values()]
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
