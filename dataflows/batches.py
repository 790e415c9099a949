"""Raw batches parsed and grouped by instrument: the step before the keyed state, shared by the
Bytewax flow and by offline replays (training, fitting, tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from dataflows.recordings import open_recording
from dataflows.rows import TableRows, dead_letter_rows
from dataflows.sources import BATCH_MESSAGES, merged, recording_paths
from operators.features.micro_price import MicroPriceTable
from operators.feeds import parse
from operators.instrument import Derived, InstrumentState
from quantumflow.events import DeadLetter, MarketEvent, RawMessage


class InstrumentBatch(NamedTuple):
    instrument: str
    feed: str
    read_ns: int
    events: list[tuple[MarketEvent, RawMessage]]


def split_by_instrument(messages: list[RawMessage], read_ns: int = 0) -> list[InstrumentBatch | TableRows]:
    """Parse messages; their events grouped by instrument in stream order, and the messages that
    could not be parsed as dead-letter rows."""
    by_instrument: dict[str, InstrumentBatch] = {}
    dead: list[DeadLetter] = []
    for raw in messages:
        for event in parse(raw):
            if type(event) is DeadLetter:
                dead.append(event)
                continue
            group = by_instrument.get(event.instrument)
            if group is None:
                group = by_instrument[event.instrument] = InstrumentBatch(event.instrument, raw.feed, read_ns, [])
            group.events.append((event, raw))
    out: list[InstrumentBatch | TableRows] = list(by_instrument.values())
    if dead:
        out.append(TableRows(read_ns, len(dead), {"dead_letters": dead_letter_rows(dead)}))
    return out


def new_state(batch: InstrumentBatch, micro_prices: dict[str, MicroPriceTable]) -> InstrumentState:
    """The keyed state of the instrument ``batch`` is the first of."""
    return InstrumentState(batch.instrument, batch.feed, micro_prices.get(batch.instrument))


def derive_offline(
    paths: Sequence[str | Path],
    feed: str | None = None,
    micro_prices: dict[str, MicroPriceTable] | None = None,
    batch_messages: int = BATCH_MESSAGES,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Derived | TableRows]:
    """The flow's keyed steps run in this process over recordings: each instrument batch's
    ``Derived``, and dead-letter rows, in stream order. ``on_progress`` gets the bytes read."""
    recordings = [open_recording(path, feed) for path in recording_paths(paths)]
    states: dict[str, InstrumentState] = {}
    messages = merged(recordings)
    while chunk := list(islice(messages, batch_messages)):
        for item in split_by_instrument(chunk):
            if type(item) is TableRows:
                yield item
                continue
            state = states.get(item.instrument)
            if state is None:
                state = states[item.instrument] = new_state(item, micro_prices or {})
            yield state.on_batch(item.events)
        if on_progress is not None:
            on_progress(sum(recording.bytes_read for recording in recordings))
