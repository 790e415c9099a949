"""Keeping one instrument's book in step with its venue: the sync state machine.

Every venue follows the same shape: the book starts from a snapshot, then deltas apply in
sequence. What differs is how sequence ids relate, which a ``SequenceRule`` says (each feed
module defines its own). ``BookSync`` is the per-instrument state the flow keys by instrument:

* waiting for a snapshot, deltas are buffered (the snapshot may arrive after them, as with
  Binance's REST snapshot); once it is applied, deltas it already covers are dropped, buffered
  or not, the first one after them must bridge it, and the rest must follow in sequence;
* live, a delta that does not follow the last one is a gap: the book is emptied and marked
  stale, a ``Resync`` is emitted, and the sync waits for the next snapshot;
* a delta the book has already seen (out-of-order ids), a book left crossed by a delta, or a
  checksum mismatch are bad input: they become dead letters (a crossed book or bad checksum
  also forces a resync, since the book is then known to be wrong).
"""

from __future__ import annotations

from collections import deque

from operators.book import LIVE, OrderBook
from quantumflow.events import (
    BestBidOffer,
    BookDelta,
    BookSnapshot,
    DeadLetter,
    Event,
    MarketEvent,
    RawMessage,
    Resync,
)

Output = Event | DeadLetter

MAX_BUFFERED_DELTAS = 10_000


class SequenceRule:
    """How a venue's sequence ids chain. This base rule is for venues without ids (Coinbase
    Exchange ``level2``, Kraken): every delta follows the previous one, and deltas seen before
    the snapshot are older than it by the protocol's order, so they are dropped."""

    sequenced = False
    checks_books = False  # whether ``check`` is overridden (set for each subclass): if not, no call a delta

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.checks_books = cls.check is not SequenceRule.check

    def superseded(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        """True when a buffered ``delta`` is already in a snapshot at ``snapshot_sequence``."""
        return False

    def bridges(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        """True when ``delta`` is a valid first delta on a snapshot at ``snapshot_sequence``."""
        return True

    def follows(self, delta: BookDelta, last: int | None) -> bool:
        """True when ``delta`` is the next delta after one ending at ``last``."""
        return True

    def check(self, book: OrderBook, delta: BookDelta) -> str | None:
        """After applying ``delta``: a reason the book is wrong, or None."""
        return None


class ConsecutiveRule(SequenceRule):
    """Every message is numbered, one more than the last (Coinbase Advanced ``sequence_num``,
    LOBSTER rows)."""

    sequenced = True

    def superseded(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        return delta.sequence <= snapshot_sequence

    def bridges(self, delta: BookDelta, snapshot_sequence: int | None) -> bool:
        return self.follows(delta, snapshot_sequence)

    def follows(self, delta: BookDelta, last: int | None) -> bool:
        return last is not None and delta.first_sequence == last + 1


class BookSync:
    """The keyed state of one instrument: its sync state machine and its book."""

    __slots__ = ("book", "bridged", "buffer", "discarded", "feed", "instrument", "rule")

    def __init__(self, instrument: str, feed: str, rule: SequenceRule) -> None:
        self.instrument = instrument
        self.feed = feed
        self.rule = rule
        self.book = OrderBook()
        self.buffer: deque[tuple[BookDelta, RawMessage]] = deque(maxlen=MAX_BUFFERED_DELTAS)
        self.bridged = False  # whether a delta has been applied on the current snapshot
        self.discarded = 0  # deltas never applied: made moot by a snapshot, or buffer overflow

    def on_event(self, event: MarketEvent, raw: RawMessage) -> list[Output]:
        kind = type(event)
        if kind is BestBidOffer:  # the most frequent, first
            return self._on_bbo(event, raw)
        if kind is BookDelta:
            if self.book.status == LIVE:
                return self._on_live_delta(event, raw)
            if len(self.buffer) == self.buffer.maxlen:
                self.discarded += 1
            self.buffer.append((event, raw))
            return []
        if kind is BookSnapshot:
            return self._on_snapshot(event)
        return [event]

    def _on_snapshot(self, snapshot: BookSnapshot) -> list[Output]:
        self.book.apply_snapshot(snapshot)
        self.bridged = not self.rule.sequenced
        out: list[Output] = [snapshot]
        buffered, self.buffer = self.buffer, deque(maxlen=MAX_BUFFERED_DELTAS)
        if not self.rule.sequenced:
            self.discarded += len(buffered)
            return out
        for delta, raw in buffered:
            out.extend(self.on_event(delta, raw))  # after a gap among them, the rest is buffered again
        return out

    def _on_live_delta(self, delta: BookDelta, raw: RawMessage) -> list[Output]:
        book, rule = self.book, self.rule
        last = book.sequence
        if not self.bridged:  # the first delta on a snapshot, buffered or not
            if rule.superseded(delta, last):
                self.discarded += 1
                return []
            if not rule.bridges(delta, last):
                resync = self._resync(delta, f"snapshot too old: {last} does not reach update {_ids(delta)}")
                self.buffer.append((delta, raw))
                return [resync]
            self.bridged = True
        else:
            if rule.sequenced and delta.sequence <= last:
                return [self._dead(raw, f"out-of-order update: {delta.sequence} when the book is at {last}")]
            if not rule.follows(delta, last):
                resync = self._resync(delta, f"sequence gap: after {last} came {_ids(delta)}")
                self.buffer.append((delta, raw))
                return [resync]
        if book.apply_delta(delta):  # the book is crossed
            top = book.depth_top()
            reason = f"crossed book after delta: bid {top.bid_price} >= ask {top.ask_price}"
            return [self._dead(raw, reason), self._resync(delta, reason)]
        if rule.checks_books:
            problem = rule.check(book, delta)
            if problem is not None:
                return [self._dead(raw, problem), self._resync(delta, problem)]
        return [delta]

    def _on_bbo(self, bbo: BestBidOffer, raw: RawMessage) -> list[Output]:
        if bbo.bid_price >= bbo.ask_price:
            return [self._dead(raw, f"crossed best bid/offer: bid {bbo.bid_price} >= ask {bbo.ask_price}")]
        book = self.book
        last = book.bbo
        if last is not None:
            sequence, last_sequence = bbo.sequence, last.sequence
            if sequence is not None and last_sequence is not None and sequence < last_sequence:
                return [self._dead(raw, f"out-of-order best bid/offer: {sequence} after {last_sequence}")]
        book.apply_bbo(bbo)
        return [bbo]

    def _resync(self, delta: BookDelta, reason: str) -> Resync:
        last = self.book.sequence
        self.book.invalidate(reason)
        return Resync(self.instrument, delta.exchange_ts, delta.receive_ts, last, reason)

    def _dead(self, raw: RawMessage, reason: str) -> DeadLetter:
        return DeadLetter(self.feed, self.instrument, raw.receive_ts, raw.payload, reason)


def _ids(delta: BookDelta) -> str:
    if delta.first_sequence is None or delta.first_sequence == delta.sequence:
        return str(delta.sequence)
    return f"{delta.first_sequence}..{delta.sequence}"
