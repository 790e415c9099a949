"""The reference L2 order book: the first implementation, which ``operators.book.OrderBook`` is held to,
bit for bit, by property tests on generated streams and on the real recordings. Same interface.

Levels live in two ``SortedDict``s (price -> absolute quantity), so a change is O(log n) and
the best price is an O(log n) index into the sorted keys. The book only ever holds what the
venue told it: a snapshot resets it, a delta sets absolute quantities (0 removes a level), and
when it can no longer be trusted (gap, bad checksum, crossed) it is emptied and marked stale
until the next snapshot, because a wrong book is worse than none.

Venues with a finer best-bid/offer stream than their depth stream (Binance ``bookTicker``)
share one update-id space between the two; the book's top then comes from whichever of the
two is newer by update id (``top_of_book``), while ``depth_top`` is the depth stream's alone.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
from sortedcontainers import SortedDict

from operators.book import LIVE, STALE, WAITING, TopLevels, TopOfBook
from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, Level


class ReferenceOrderBook:
    __slots__ = (
        "_depth_levels",
        "asks",
        "bbo",
        "bids",
        "max_depth",
        "precision",
        "sequence",
        "stale_reason",
        "status",
    )

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.sequence: int | None = None
        self.status = WAITING
        self.stale_reason: str | None = None
        self.max_depth: int | None = None
        self.precision: tuple[int, int] | None = None
        self.bbo: BestBidOffer | None = None
        self._depth_levels: tuple[int, list[Level], list[Level]] | None = None  # top levels until the depth changes

    @property
    def ready(self) -> bool:
        """True when the book mirrors the venue's: synced and not stale."""
        return self.status == LIVE

    def describe(self) -> str:
        return f"{self.status}: {self.stale_reason}" if self.status == STALE else self.status

    # -- changes -------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        self._depth_levels = None
        self.bids = SortedDict((p, q) for p, q in snapshot.bids if q)
        self.asks = SortedDict((p, q) for p, q in snapshot.asks if q)
        self.sequence = snapshot.sequence
        self.max_depth = snapshot.max_depth
        if snapshot.precision is not None:
            self.precision = snapshot.precision
        self.status = LIVE
        self.stale_reason = None
        self._truncate()

    def apply_delta(self, delta: BookDelta) -> None:
        self._depth_levels = None
        _set_levels(self.bids, delta.bids)
        _set_levels(self.asks, delta.asks)
        if delta.sequence is not None:
            self.sequence = delta.sequence
        self._truncate()

    def apply_bbo(self, bbo: BestBidOffer) -> None:
        if self.bbo is None or _newer(bbo.sequence, self.bbo.sequence):
            self.bbo = bbo

    def invalidate(self, reason: str) -> None:
        """Forget every level: the book is stale until the next snapshot."""
        self._depth_levels = None
        self.bids = SortedDict()
        self.asks = SortedDict()
        self.status = STALE
        self.stale_reason = reason

    def _truncate(self) -> None:
        depth = self.max_depth
        if depth is None:
            return
        while len(self.bids) > depth:
            self.bids.popitem(0)
        while len(self.asks) > depth:
            self.asks.popitem(-1)

    # -- reads ---------------------------------------------------------------------------

    def crossed(self) -> bool:
        """True when the depth book's best bid is at or above its best ask."""
        return bool(self.bids) and bool(self.asks) and self.bids.peekitem(-1)[0] >= self.asks.peekitem(0)[0]

    def depth_top(self) -> TopOfBook | None:
        """Best bid and ask of the depth stream alone, or None while a side is empty."""
        if not self.bids or not self.asks:
            return None
        bid_price, bid_size = self.bids.peekitem(-1)
        ask_price, ask_size = self.asks.peekitem(0)
        return TopOfBook(bid_price, bid_size, ask_price, ask_size)

    def top_of_book(self) -> TopOfBook | None:
        """The freshest best bid and ask the venue has given: the best-bid/offer stream's when it
        is newer by update id than the last depth update applied, else the depth book's."""
        bbo = self._fresher_bbo()
        if bbo is not None:
            return TopOfBook(bbo.bid_price, bbo.bid_size, bbo.ask_price, bbo.ask_size)
        return self.depth_top()

    @property
    def top_update_id(self) -> int | None:
        """The venue update id of what ``top_of_book`` shows: the best-bid/offer's when it is fresher."""
        bbo = self._fresher_bbo()
        return self.sequence if bbo is None else bbo.sequence

    def top_level_lists(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        """The best ``n`` (price, size) levels per side, best first, with the fresher
        best-bid/offer on top as in ``top_of_book``."""
        cached = self._depth_levels
        if cached is not None and cached[0] == n:
            _, bids, asks = cached
        else:
            bid_side, ask_side = self.bids, self.asks
            bids = [(p, bid_side[p]) for p in islice(reversed(bid_side), n)]
            asks = [(p, ask_side[p]) for p in islice(ask_side, n)]
            self._depth_levels = (n, bids, asks)
        bbo = self._fresher_bbo()
        if bbo is not None:
            bids = [(bbo.bid_price, bbo.bid_size), *[lv for lv in bids if lv[0] < bbo.bid_price][: n - 1]]
            asks = [(bbo.ask_price, bbo.ask_size), *[lv for lv in asks if lv[0] > bbo.ask_price][: n - 1]]
        return bids, asks

    def top_levels(self, n: int = 10) -> TopLevels:
        bids, asks = self.top_level_lists(n)
        bid_prices, bid_sizes = _side_arrays(bids, n)
        ask_prices, ask_sizes = _side_arrays(asks, n)
        return TopLevels(bid_prices, bid_sizes, ask_prices, ask_sizes)

    def _fresher_bbo(self) -> BestBidOffer | None:
        bbo = self.bbo
        if bbo is not None and self.status == LIVE and _newer(bbo.sequence, self.sequence):
            return bbo
        return None


def _set_levels(side: SortedDict, levels: list[Level]) -> None:
    for price, quantity in levels:
        if quantity:
            if price in side:  # a known price keeps its place: skip SortedDict's index update
                dict.__setitem__(side, price, quantity)
            else:
                side[price] = quantity
        elif price in side:
            del side[price]


def _newer(sequence: int | None, than: int | None) -> bool:
    return sequence is not None and (than is None or sequence > than)


def _side_arrays(levels: list[Level], n: int) -> tuple[np.ndarray, np.ndarray]:
    prices = np.full(n, np.nan)
    sizes = np.zeros(n)
    if levels:
        filled = np.asarray(levels, dtype=float)
        prices[: len(levels)] = filled[:, 0]
        sizes[: len(levels)] = filled[:, 1]
    return prices, sizes
