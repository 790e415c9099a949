"""Everything the predict flow keeps per instrument, and what it derives from a batch of events.

``InstrumentState`` is the keyed state of the flow (and of training and the backtester, which
call it directly): the sync state machine with its book, the rows of book states gathered for
features, the features' windows, and the event counter that numbers the instrument's stream.

Every event of the instrument gets the next number ``seq``; with the local receive time it is
the natural key of the rows derived from the event. A *book event* is an event after which the
book is live and has both sides: it makes one feature row (a snapshot that replays buffered
deltas makes one row, for the state after all of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from operators.book import LIVE
from operators.features.compute import FeatureState, compute_features
from operators.features.frame import BookFrame, FrameBuilder
from operators.features.micro_price import MicroPriceTable
from operators.feeds import FEEDS
from operators.sync import BookSync, Output
from quantumflow.events import (
    BestBidOffer,
    BookDelta,
    BookSnapshot,
    DeadLetter,
    MarketEvent,
    RawMessage,
    Resync,
    Trade,
)

BOOK_ROW_INTERVAL_NS = 100_000_000  # top-10 book rows are kept at most every 100 ms per instrument

# Called after each event with what the sync made of it, the book then as it left it (tests, replay summaries).
Observer = Callable[[MarketEvent, RawMessage, list[Output]], None]


class Derived(NamedTuple):
    """What one batch of an instrument's events gives: feature rows (one per book event, in
    ``frame`` order), which of those rows to keep as book rows, trades, resyncs, dead letters."""

    instrument: str
    frame: BookFrame
    features: np.ndarray
    book_rows: np.ndarray  # indices into frame
    trades: list[tuple[int, Trade]]  # (seq, trade)
    resyncs: list[tuple[int, Resync]]
    dead_letters: list[DeadLetter]


class InstrumentState:
    __slots__ = ("features", "frame", "last_book_bucket", "reset", "seq", "sync")

    def __init__(self, instrument: str, feed: str, micro_price: MicroPriceTable | None = None) -> None:
        self.sync = BookSync(instrument, feed, FEEDS[feed].rule())
        self.features = FeatureState(micro_price)
        self.frame = FrameBuilder()  # empty between batches but for trades since the last book event
        self.seq = 0
        self.last_book_bucket = -1
        self.reset = False  # a snapshot or resync came after the last row: the next row starts afresh

    def on_batch(self, batch: list[tuple[MarketEvent, RawMessage]], observe: Observer | None = None) -> Derived:
        frame = self.frame
        trades: list[tuple[int, Trade]] = []
        resyncs: list[tuple[int, Resync]] = []
        dead: list[DeadLetter] = []
        sync = self.sync
        book, on_event, add_book = sync.book, sync.on_event, frame.add_book
        seq, reset = self.seq, self.reset
        for event, raw in batch:
            seq += 1
            changed = False
            outputs = on_event(event, raw)
            if observe is not None:
                self.seq, self.reset = seq, reset
                observe(event, raw, outputs)
            for out in outputs:
                kind = type(out)
                if kind is BookDelta or kind is BestBidOffer:
                    changed = True
                elif kind is BookSnapshot:
                    changed = reset = True
                elif kind is Trade:
                    trades.append((seq, out))
                    frame.add_trade(out.size, out.side)
                elif kind is Resync:
                    resyncs.append((seq, out))
                    reset = True
                else:
                    dead.append(out)
            if changed and book.status == LIVE and book.bids and book.asks:
                add_book(book, event.receive_ts, seq, event.exchange_ts, book.top_update_id, reset)
                reset = False
        self.seq, self.reset = seq, reset
        built = frame.build()
        return Derived(
            self.sync.instrument,
            built,
            compute_features(self.features, built),
            self._book_rows(built.ts),
            trades,
            resyncs,
            dead,
        )

    def _book_rows(self, ts: np.ndarray) -> np.ndarray:
        if len(ts) == 0:
            return np.empty(0, dtype=np.int64)
        buckets = ts // BOOK_ROW_INTERVAL_NS
        first = np.concatenate([[buckets[0] != self.last_book_bucket], buckets[1:] != buckets[:-1]])
        self.last_book_bucket = int(buckets[-1])
        return np.flatnonzero(first)
