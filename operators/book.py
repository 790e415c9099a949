"""The L2 order book of one instrument.

Each side is a ``BookSide``: a dict (price -> absolute quantity) that also keeps its prices in a
sorted list, so that a change to a known price is a dict write, a new or removed price one bisect
and one move of the list's tail (books hold a few thousand levels at most), and the best levels a
slice. The book only ever holds what the venue told it: a snapshot resets it, a delta sets
absolute quantities (0 removes a level), and when it can no longer be trusted (gap, bad checksum,
crossed) it is emptied and marked stale until the next snapshot, because a wrong book is worse
than none.

Venues with a finer best-bid/offer stream than their depth stream (Binance ``bookTicker``)
share one update-id space between the two; the book's top then comes from whichever of the
two is newer by update id (``top_of_book``), while ``depth_top`` is the depth stream's alone.

``operators.book_reference`` keeps the first implementation (two ``SortedDict``s), which the
property tests hold this one to, bit for bit.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from quantumflow.events import BestBidOffer, BookDelta, BookSnapshot, Level

WAITING = "waiting for snapshot"
LIVE = "live"
STALE = "stale"


class TopOfBook(NamedTuple):
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class TopLevels(NamedTuple):
    """The best ``n`` levels per side, best first; missing levels have price NaN, size 0."""

    bid_prices: np.ndarray
    bid_sizes: np.ndarray
    ask_prices: np.ndarray
    ask_sizes: np.ndarray


_dict_set = dict.__setitem__
_dict_del = dict.__delitem__


class BookSide(dict):
    """One side of a book: price -> quantity, read in ascending price order (as a sorted dict is);
    ``prices`` is the sorted list of its keys."""

    __slots__ = ("prices",)

    def __init__(self, levels: Iterable[Level] = ()) -> None:
        super().__init__(levels)
        self.prices: list[float] = sorted(dict.keys(self))

    def __setitem__(self, price: float, quantity: float) -> None:
        if price not in self:
            insort(self.prices, price)
        _dict_set(self, price, quantity)

    def __delitem__(self, price: float) -> None:
        _dict_del(self, price)
        del self.prices[bisect_left(self.prices, price)]

    def __iter__(self) -> Iterator[float]:
        return iter(self.prices)

    def __reversed__(self) -> Iterator[float]:
        return reversed(self.prices)

    def __reduce__(self):
        return BookSide, (list(self.items()),)

    def keys(self) -> list[float]:  # type: ignore[override]
        return list(self.prices)

    def values(self) -> list[float]:  # type: ignore[override]
        return [self[p] for p in self.prices]

    def items(self) -> list[Level]:  # type: ignore[override]
        """(price, quantity) in ascending price order."""
        return [(p, self[p]) for p in self.prices]

    def peekitem(self, index: int = -1) -> Level:
        price = self.prices[index]
        return price, dict.__getitem__(self, price)

    def popitem(self, index: int = -1) -> Level:  # type: ignore[override]
        price = self.prices.pop(index)
        return price, dict.pop(self, price)


class OrderBook:
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
        self.bids = BookSide()
        self.asks = BookSide()
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
        self.bids = BookSide({p: q for p, q in snapshot.bids if q}.items())
        self.asks = BookSide({p: q for p, q in snapshot.asks if q}.items())
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
        if self.max_depth is not None:
            self._truncate()

    def apply_bbo(self, bbo: BestBidOffer) -> None:
        if self.bbo is None or _newer(bbo.sequence, self.bbo.sequence):
            self.bbo = bbo

    def invalidate(self, reason: str) -> None:
        """Forget every level: the book is stale until the next snapshot."""
        self._depth_levels = None
        self.bids = BookSide()
        self.asks = BookSide()
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
        bids, asks = self.bids.prices, self.asks.prices
        return bool(bids) and bool(asks) and bids[-1] >= asks[0]

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
        best-bid/offer on top as in ``top_of_book``: the depth levels it has overtaken are gone."""
        cached = self._depth_levels
        if cached is not None and cached[0] == n:
            _, bids, asks = cached
        else:
            bid_prices = self.bids.prices[: -n - 1 : -1]
            ask_prices = self.asks.prices[:n]
            bids = list(zip(bid_prices, map(self.bids.__getitem__, bid_prices), strict=True))
            asks = list(zip(ask_prices, map(self.asks.__getitem__, ask_prices), strict=True))
            self._depth_levels = (n, bids, asks)
        bbo = self._fresher_bbo()
        if bbo is not None:
            bid, ask = bbo.bid_price, bbo.ask_price
            first_bid = first_ask = 0  # the depth levels below the best bid, above the best ask
            while first_bid < len(bids) and bids[first_bid][0] >= bid:
                first_bid += 1
            while first_ask < len(asks) and asks[first_ask][0] <= ask:
                first_ask += 1
            bids = [(bid, bbo.bid_size), *bids[first_bid : first_bid + n - 1]]
            asks = [(ask, bbo.ask_size), *asks[first_ask : first_ask + n - 1]]
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


def _set_levels(side: BookSide, levels: list[Level]) -> None:
    prices = side.prices
    for price, quantity in levels:
        if quantity:
            if price not in side:
                insort(prices, price)
            _dict_set(side, price, quantity)
        elif price in side:
            _dict_del(side, price)
            del prices[bisect_left(prices, price)]


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
