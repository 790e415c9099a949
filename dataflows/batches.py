"""Raw batches parsed and grouped by instrument, then each instrument's keyed state: the one path
from raw messages to books, shared by the Bytewax flow (``split_by_instrument`` before its keyed
step) and by everything that runs it in this process (``InstrumentStates``: replays, training,
fitting, the benchmark, the tests), so what they measure is what the flow does."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from dataflows.raw_log import located
from dataflows.recordings import open_recording
from dataflows.rows import TableRows, dead_letter_rows
from dataflows.sources import BATCH_MESSAGES, merged, recording_paths
from operators.book import OrderBook
from operators.features.micro_price import MicroPriceTable
from operators.feeds import fast_decoder, is_decoder_error, parse
from operators.instrument import Derived, InstrumentState, Observer
from quantumflow.events import DeadLetter, MarketEvent, RawMessage

_FEED, _INSTRUMENT = attrgetter("feed"), attrgetter("instrument")


class InstrumentBatch(NamedTuple):
    instrument: str
    feed: str
    read_ns: int
    events: list[tuple[MarketEvent, RawMessage]]


class Parsed(NamedTuple):
    batches: list[InstrumentBatch]  # events grouped by instrument, in stream order
    dead_letters: list[DeadLetter]  # lines and messages that could not be parsed
    quiet: int  # messages without market data (heartbeats, subscription answers)


def parse_batch(
    messages: Sequence[RawMessage | DeadLetter], read_ns: int = 0, places: Sequence[str] | None = None
) -> Parsed:
    """Parse messages (a recording's bad lines come as dead letters already); a message that does
    not parse is a dead letter whose reason ends with its place in ``places``, if given."""
    decoded = _fast_events(messages)
    if decoded is not None and all(decoded):  # events are never empty tuples
        instruments = set(map(_INSTRUMENT, decoded))
        if len(instruments) == 1:  # the common batch: no Python step per message
            events = list(zip(decoded, messages, strict=True))
            return Parsed([InstrumentBatch(instruments.pop(), messages[0].feed, read_ns, events)], [], 0)
    by_instrument: dict[str, InstrumentBatch] = {}
    dead: list[DeadLetter] = []
    quiet = 0
    feed = fast = instrument = add = None  # the last message's feed and its fast decoder, the last event's group
    for index, raw in enumerate(messages):
        if type(raw) is DeadLetter:
            dead.append(raw)
            continue
        if raw.feed != feed:
            feed = raw.feed
            fast = fast_decoder(feed)
        event = decoded[index] if decoded is not None else None if fast is None else fast(raw)
        if event is not None:  # most messages: one event, as parse would give it
            if event.instrument != instrument:
                instrument = event.instrument
                add = _group(by_instrument, instrument, feed, read_ns).events.append
            add((event, raw))
            continue
        events = parse(raw)
        if not events:
            quiet += 1
        for event in events:
            if type(event) is DeadLetter:
                dead.append(event if places is None else located(event, places[index]))
                continue
            if event.instrument != instrument:
                instrument = event.instrument
                add = _group(by_instrument, instrument, feed, read_ns).events.append
            add((event, raw))
    return Parsed(list(by_instrument.values()), dead, quiet)


def _fast_events(messages: Sequence[RawMessage | DeadLetter]) -> list[MarketEvent | None] | None:
    """Each message's event from its feed's fast decoder (None where ``parse`` must be asked), in one
    pass without a Python step per message, when the messages are all ``RawMessage``s of one feed
    that has a fast decoder; else None."""
    if not messages or type(messages[0]) is not RawMessage:
        return None
    fast = fast_decoder(messages[0].feed)
    if fast is None or len(set(map(type, messages))) != 1 or len(set(map(_FEED, messages))) != 1:
        return None
    return list(map(fast, messages))


def _group(by_instrument: dict[str, InstrumentBatch], instrument: str, feed: str, read_ns: int) -> InstrumentBatch:
    group = by_instrument.get(instrument)
    if group is None:
        group = by_instrument[instrument] = InstrumentBatch(instrument, feed, read_ns, [])
    return group


def split_by_instrument(
    messages: Sequence[RawMessage | DeadLetter], read_ns: int = 0, places: Sequence[str] | None = None
) -> list[InstrumentBatch | TableRows]:
    """The flow's parse step: each instrument's batch, and the messages that could not be parsed
    as dead-letter rows (naming their ``places``, if given)."""
    batches, dead, _ = parse_batch(messages, read_ns, places)
    out: list[InstrumentBatch | TableRows] = list(batches)
    if dead:
        out.append(dead_letter_table(dead, read_ns))
    return out


def dead_letter_table(letters: list[DeadLetter], read_ns: int = 0) -> TableRows:
    """Dead letters as rows, with how many are decoder errors (bugs, counted apart)."""
    decoder_errors = sum(map(is_decoder_error, letters))
    return TableRows(read_ns, len(letters), {"dead_letters": dead_letter_rows(letters)}, decoder_errors)


def new_state(batch: InstrumentBatch, micro_prices: dict[str, MicroPriceTable]) -> InstrumentState:
    """The keyed state of the instrument ``batch`` is the first of."""
    return InstrumentState(batch.instrument, batch.feed, micro_prices.get(batch.instrument))


class Step(NamedTuple):
    """What one batch of messages gave."""

    messages: int  # raw messages, without the lines that were dead letters already
    events: int  # market events parsed from them
    derived: list[Derived]
    dead_letters: list[DeadLetter]  # lines and messages that could not be parsed
    quiet: int


class InstrumentStates:
    """The flow's parse -> key by instrument -> keyed state, in this process: one
    ``InstrumentState`` per instrument (``states``), fed batches as the flow feeds them.
    ``observe`` is called after each event with the sync's outputs (see ``Observer``)."""

    def __init__(self, micro_prices: dict[str, MicroPriceTable] | None = None, observe: Observer | None = None) -> None:
        self.states: dict[str, InstrumentState] = {}
        self.micro_prices = micro_prices or {}
        self.observe = observe

    def book(self, instrument: str) -> OrderBook:
        return self.states[instrument].sync.book

    def on_messages(self, messages: Sequence[RawMessage | DeadLetter], read_ns: int = 0) -> Step:
        batches, dead, quiet = parse_batch(messages, read_ns)
        derived = []
        events = 0
        for batch in batches:
            events += len(batch.events)
            state = self.states.get(batch.instrument)
            if state is None:
                state = self.states[batch.instrument] = new_state(batch, self.micro_prices)
            derived.append(state.on_batch(batch.events, self.observe))
        lines = sum(type(raw) is DeadLetter for raw in messages)
        return Step(len(messages) - lines, events, derived, dead, quiet)

    def replay(
        self, messages: Iterable[RawMessage | DeadLetter], batch_messages: int = BATCH_MESSAGES
    ) -> Iterator[Step]:
        """``messages`` in batches of ``batch_messages``, as the replay source cuts them."""
        messages = iter(messages)
        while chunk := list(islice(messages, batch_messages)):
            yield self.on_messages(chunk)


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
    for step in InstrumentStates(micro_prices).replay(merged(recordings), batch_messages):
        yield from step.derived
        if step.dead_letters:
            yield dead_letter_table(step.dead_letters)
        if on_progress is not None:
            on_progress(sum(recording.bytes_read for recording in recordings))
