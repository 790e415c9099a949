"""``OrderBook`` against ``ReferenceOrderBook`` (the first, ``SortedDict`` implementation), bit for
bit: on hypothesis-generated streams of snapshots, deltas, best bids/offers and resets, and on every
real recording, event by event through the sync."""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.recordings import open_recording
from operators.book import BookSide, OrderBook
from operators.book_reference import ReferenceOrderBook
from operators.feeds import FEEDS, parse
from operators.sync import BookSync
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, DeadLetter

INSTRUMENT = "x:Y"
GRID = [round(100.0 + 0.5 * i, 1) for i in range(24)]  # one grid for both sides: collisions and crossings
prices = st.sampled_from(GRID) | st.floats(1e-3, 1e6)
sizes = st.sampled_from([0.0, -0.0, 0.0, 0.5, 1.0, 2.0]) | st.floats(1e-6, 1e6)
side = st.lists(st.tuples(prices, sizes), max_size=12)  # repeats apply in order
sequences = st.none() | st.integers(0, 40)
snapshots = st.builds(
    lambda bids, asks, seq, depth: BookSnapshot(INSTRUMENT, None, 0, seq, bids, asks, depth),
    side,
    side,
    sequences,
    st.none() | st.none() | st.integers(1, 6),
)
deltas = st.builds(
    lambda bids, asks, seq: BookDelta(INSTRUMENT, None, 0, seq, seq, None, bids, asks), side, side, sequences
)
bbos = st.builds(
    lambda seq, bid, bid_size, ask, ask_size: BestBidOffer(INSTRUMENT, None, 0, seq, bid, bid_size, ask, ask_size),
    sequences,
    prices,
    sizes,
    prices,
    sizes,
)
events = st.lists(snapshots | deltas | deltas | deltas | bbos | bbos | st.just("invalidate"), max_size=30)


def flat_levels(book, n: int) -> tuple[float, ...]:
    """``top_level_lists`` as ``OrderBook.top_levels_flat`` gives it: bids then asks, (NaN, 0) where missing."""
    flat: list[float] = []
    for side in book.top_level_lists(n):
        flat.extend(chain.from_iterable(side))
        flat.extend((math.nan, 0.0) * (n - len(side)))
    return tuple(flat)


def view(book) -> tuple:
    """Everything a book shows, in a form that compares floats bit for bit (``repr``: -0.0, NaN)."""
    shown = (
        list(book.bids.items()),
        list(book.asks.items()),
        list(book.bids),
        list(reversed(book.asks)),
        dict(book.bids),
        dict(book.asks),
        bool(book.bids),
        len(book.asks),
        book.sequence,
        book.status,
        book.describe(),
        book.ready,
        book.crossed(),
        book.depth_top(),
        book.top_of_book(),
        book.top_update_id,
        [book.top_level_lists(n) for n in (1, 3, 10)],
        [tuple(map(list, book.top_levels(n))) for n in (1, 4)],
    )
    return repr(shown), shown


def apply(book, event) -> None:
    if event == "invalidate":
        book.invalidate("a test reset")
    elif type(event) is BookSnapshot:
        book.apply_snapshot(event)
    elif type(event) is BookDelta:
        book.apply_delta(event)
    else:
        book.apply_bbo(event)


@settings(max_examples=300, deadline=None)
@given(stream=events)
def test_the_book_equals_the_reference_on_generated_streams(stream):
    book, reference = OrderBook(), ReferenceOrderBook()
    assert view(book)[0] == view(reference)[0]
    for event in stream:
        apply(book, event)
        apply(reference, event)
        assert view(book)[0] == view(reference)[0]
        for n in (1, 3, 10):
            assert repr(book.top_levels_flat(n)) == repr(flat_levels(reference, n))
    assert view(pickle.loads(pickle.dumps(book)))[0] == view(book)[0]


def top_view(book) -> str:
    """What a book shows from the top of its sides alone, as ``view`` compares it."""
    shown = (
        book.crossed(),
        book.depth_top(),
        book.top_of_book(),
        book.top_update_id,
        [book.top_level_lists(n) for n in (1, 2, 4)],
        len(book.bids),
        bool(book.asks),
    )
    return repr(shown)


@contextmanager
def ranked_top(**sizes: int) -> Iterator[None]:
    saved = {name: getattr(BookSide, name) for name in sizes}
    for name, size in sizes.items():
        setattr(BookSide, name, size)
    try:
        yield
    finally:
        for name, size in saved.items():
            setattr(BookSide, name, size)


@settings(max_examples=300, deadline=None)
@given(stream=events)
def test_the_book_equals_the_reference_when_only_the_top_of_its_sides_is_ranked(stream):
    """Sides of a few levels cut back to their best 3 and ranked anew all the time: reads of the top
    alone after each event, and of whole sides at the end."""
    with ranked_top(TOP=3, MAX_RANKED=5, MIN_RANKED=2):
        book, reference = OrderBook(), ReferenceOrderBook()
        for event in stream:
            apply(book, event)
            apply(reference, event)
            assert top_view(book) == top_view(reference)
        assert view(book)[0] == view(reference)[0]


def recordings(shared_data) -> list:
    found = sorted(path for path in shared_data.rglob("*") if path.is_file() and not path.name.endswith(".md"))
    return [path for path in found if "LICENSE" not in path.name and "_orderbook_" not in path.name]


def test_the_book_equals_the_reference_on_every_real_recording(shared_data):
    checked = 0
    for path in recordings(shared_data):
        try:
            recording = open_recording(path)
        except ValueError:
            continue
        syncs: dict[str, tuple[BookSync, BookSync]] = {}
        for index, raw in enumerate(recording):
            if type(raw) is DeadLetter:
                continue
            for event in parse(raw):
                if type(event) is DeadLetter:
                    continue
                pair = syncs.get(event.instrument)
                if pair is None:
                    rule = FEEDS[raw.feed].rule
                    pair = syncs[event.instrument] = (
                        BookSync(event.instrument, raw.feed, rule()),
                        BookSync(event.instrument, raw.feed, rule()),
                    )
                    pair[1].book = ReferenceOrderBook()
                fast, reference = pair
                assert fast.on_event(event, raw) == reference.on_event(event, raw)
                book, ref = fast.book, reference.book
                assert book.top_level_lists(10) == ref.top_level_lists(10), (path, index)
                assert repr(book.top_levels_flat(10)) == repr(flat_levels(ref, 10)), (path, index)
                assert book.top_update_id == ref.top_update_id and book.status == ref.status
                if index % 2000 == 0:
                    assert view(book)[0] == view(ref)[0], (path, index)
                checked += 1
        for fast, reference in syncs.values():
            assert view(fast.book)[0] == view(reference.book)[0], path
    if not checked:
        pytest.skip("no recordings with books in the shared data")
